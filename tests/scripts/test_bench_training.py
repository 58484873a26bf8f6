from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from objectives.checkpoint import load_checkpoint
from objectives.data.demo import DemoConfig, write_demo

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_training.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_training", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_refused_int8_export_is_a_result_not_a_crash(tmp_path, monkeypatch):
    # Exit code 3: the export's parity check refused the file. The benchmark must report it
    # (no int8 AP) and go on with the other models.
    bench = _bench_module()
    calls = []

    def refuse(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 3, "", "parity check failed")

    monkeypatch.setattr(bench.subprocess, "run", refuse)
    assert bench.int8_ap50(tmp_path / "last.pt", tmp_path, tmp_path) is None
    assert len(calls) == 1 and "export" in calls[0]


@pytest.mark.slow
def test_training_benchmark_quick_run(tmp_path):
    # A smoke run on a tiny dataset: the figures belong in BENCHMARKS.md, not in a test.
    data = write_demo(tmp_path / "demo", DemoConfig(num_train=8, num_val=4, image_size=96))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--data", str(data), "--out",
         str(tmp_path / "runs"), "--json"],
        capture_output=True, text=True, check=False, timeout=600,
        env={"TINYNAS_CACHE": str(tmp_path / "cache"), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    names = [r["model"] for r in report["rows"]]
    assert names == ["etn-w0.35-ssdlite@128", "etn-w0.35-ssdlite", "ssd-mbv1-0.25-192",
                     "chance (random boxes)"]
    assert [r["input_size"] for r in report["rows"][:3]] == [128, 256, 192]
    for row in report["rows"][:3]:
        assert row["epochs"] == 1 and row["images_per_s"] > 0 and 0 <= row["ap50"] <= 1
    assert report["context"]["recipe"]["epochs"] == 1

    # The checkpoint names its training data, so that the int8 export calibrates on it.
    ckpt = load_checkpoint(tmp_path / "runs" / "etn-w0.35-ssdlite@128" / "last.pt")
    assert ckpt.data["root"] == str(data.resolve())
