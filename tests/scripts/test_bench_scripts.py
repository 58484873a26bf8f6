from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.mark.slow
def test_speed_benchmark_runs_and_reports_its_keys():
    # A smoke run: the figures themselves belong in BENCHMARKS.md, not in a timed test.
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_estimators_speed.py"), "--genomes", "5",
         "--repeats", "1", "--json"],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("sampled_genomes_per_s", "etn_w1_0_per_s", "largest_genome_per_s"):
        assert data[key] > 0


@pytest.mark.slow
def test_estimator_and_memory_benchmarks_run_on_one_model(tmp_path):
    # A smoke run (one real export, one Keras file): the full runs are in BENCHMARKS.md.
    results = tmp_path / "rows.jsonl"
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_estimators.py"), "--genomes", "0", "--only",
         "person-det-mbv1-0.25-96x1", "--results", str(results), "--json"],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(result.stdout)
    (row,) = data["rows"]
    assert row["name"] == "person-det-mbv1-0.25-96x1" and row["ops_match"]
    assert row["tflite_bytes"] > 0 and row["tflm_arena_bytes"] > 0
    assert data["summary"]["models"] == 1 and data["summary"]["export_failures"] == []
    assert row["plan_ok"] and row["tflm_arena_head_bytes"] <= row["tflm_head_default"]
    assert len(results.read_text().splitlines()) == 1  # kept for a resumed run
    memory = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_memory.py"), "--estimator-results", str(results),
         "--cache", str(tmp_path / "keras"), "--only", "person-det-mbv1-0.25-96x1", "--json"],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert memory.returncode in (0, 1), memory.stderr
    report = json.loads(memory.stdout)
    (keras,) = report["keras"]
    # TFLM's person-detection network: our file's head is the Keras-built file's
    assert keras["our_head"] <= keras["keras_head_default"]
    assert keras["keras_plan_outputs_identical"] and keras["keras_floor"] > 0
    assert report["ours"]["models"] == 1 and report["goals"]["near_floor"]


@pytest.mark.slow
def test_xcubeai_benchmark_reports_every_published_row():
    # Deterministic (no timing): the figures are in BENCHMARKS.md; exit 1 = the 5% goal missed.
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_xcubeai.py"), "--json"],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(result.stdout)
    assert [v["version"] for v in data["versions"]] == ["STEdgeAI Core 3.0.0",
                                                        "STM32Cube.AI 10.0.0"]
    for version in data["versions"]:
        rows = version["rows"]
        assert len(rows) == 13 * 4
        assert version["summary"]["weights_flash"]["max_abs"] < 1e-4
        low, high = version["model"]["errors"]["activation_ram"]
        assert all(low <= r["error"] <= high for r in rows if r["figure"] == "activation_ram")
    assert {d["name"] for d in data["detectors"]} == {"ssd-mbv1-0.25-192", "ssd-mbv1-0.25-224",
                                                     "ssd-mbv1-0.25-256"}


def _script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_latency_benchmark_judges_both_kernel_aware_esp_boards():
    """Issue 19's ESP part of bench_latency.py, refitted from the data: both boards meet the
    goals, the band holds every row left out, and the strict check (a band that never saw
    the row) is reported apart, not folded in."""
    report = _script("bench_latency").esp_kernel_aware(genomes=4)
    assert set(report) == {"esp32s3", "esp32"}
    for board in report.values():
        assert board["goal_kernels_fit"] and board["goal_runs_loo"]
        assert board["band_holds"] == board["rows_count"] == 11
        assert board["band_holds_strict"] < board["band_holds"]
        (run,) = [r for r in board["rows"] if r["whole"]]
        assert run["loo_inside_strict_band"] and abs(run["loo_error"]) <= 0.15
        low, median, high = board["genomes"]["kernel_aware_over_one_factor"]
        assert low < median < high and board["genomes"]["count"] == 4
