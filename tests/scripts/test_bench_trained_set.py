"""The trained-set benchmark's plan order and bench_proxies.py's held-out rank statistics."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _module(name: str) -> ModuleType:
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


def test_van_der_corput_prefixes_spread_over_the_range():
    bench = _module("bench_trained_set")
    first = list(bench.van_der_corput(7))
    assert first == [0.5, 0.25, 0.75, 0.125, 0.625, 0.375, 0.875]
    # Each prefix of 2^k - 1 values is the evenly spaced grid: extending a plan keeps its spread.
    assert sorted(first[:3]) == [0.25, 0.5, 0.75]


def test_genome_ids_depend_on_the_genome_only():
    bench = _module("bench_trained_set")
    a = {"resolution": 96, "stages": [1, 2]}
    assert bench.genome_id(a) == bench.genome_id(dict(reversed(list(a.items()))))
    assert bench.genome_id(a) != bench.genome_id({**a, "resolution": 128})


def test_rank_stats_known_orderings():
    bench = _module("bench_proxies")
    ap = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    same = bench.rank_stats(ap, ap, resamples=100)
    assert same["kendall_tau"] == 1.0 and same["spearman"] == 1.0
    assert same["top5_recall"] == 1.0 and same["kendall_tau_90"][0] > 0.5
    reverse = bench.rank_stats(ap[::-1], ap, resamples=100)
    assert reverse["kendall_tau"] == -1.0 and reverse["top5_recall"] == 2 / 5
    assert bench.rank_stats([1.0, 2.0], [0.1, 0.2])["kendall_tau"] is None
    assert bench.rank_stats(ap[:5], ap[:5])["top5_recall"] is None
    assert reverse["kendall_tau_90"][1] < -0.5


@pytest.mark.slow
def test_the_plan_interleaves_splits_and_is_reproducible(tmp_path):
    command = [sys.executable, str(SCRIPTS / "bench_trained_set.py"), "--plan", "--json",
               "--pool", "80", "--fit-per-space", "2", "--heldout-per-space", "1",
               "--results", str(tmp_path / "set.json")]
    runs = [subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
            for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    plans = [json.loads(r.stdout)["plan"] for r in runs]
    assert plans[0] == plans[1]
    assert [p["split"] for p in plans[0]] == ["heldout", "fit", "fit"] * 2
    assert {p["space"] for p in plans[0]} == {"stm32h7-512k-256k", "esp32-default"}
    assert not (tmp_path / "set.json").exists()  # a plan trains and writes nothing


@pytest.mark.slow
def test_heldout_measurement_on_a_set_file(tmp_path):
    from objectives.data.demo import DemoConfig, write_demo
    from objectives.proxies.trained_set import TRAINED_SET_FORMAT
    from search_space.baselines import seed_genome
    from search_space.genome import genome_at_resolution

    data = write_demo(tmp_path / "demo", DemoConfig(num_train=8, num_val=4, image_size=128))
    widths = (0.25, 0.35, 0.5, 0.65, 0.8, 1.0)
    # AP50 rising with width, latency too: MACs must rank them perfectly.
    records = [{"id": f"w{w}", "split": "heldout", "target": "stm32h7", "num_classes": 3,
                "genome": genome_at_resolution(seed_genome(w), 96).to_dict(),
                "ap50": w / 2, "map": w / 4, "predicted": {"latency_ms": 10 * w}}
               for w in widths]
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"format": TRAINED_SET_FORMAT, "architectures": records}))
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_proxies.py"), "--heldout", "--trained-set",
         str(path), "--data", str(data), "--proxies", "macs,prior-iou", "--json"],
        capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    macs = next(p for p in report["proxies"] if p["proxy"] == "macs")
    assert report["heldout"] == 6 and macs["n"] == 6
    assert macs["kendall_tau"] == 1.0 and macs["top5_recall"] == 1.0
    assert [b["n"] for b in macs["bands"]] == [3, 3]
    assert macs["seconds_per_score"] is not None
    # Same head for every width: prior-iou cannot rank them (no statistic, not a number).
    iou = next(p for p in report["proxies"] if p["proxy"] == "prior-iou")
    assert iou["kendall_tau"] is None


def test_a_finished_architecture_is_stored_once(tmp_path):
    bench = _module("bench_trained_set")
    path = tmp_path / "set.json"
    assert bench.append(path, {"id": "g1", "ap50": 0.1}) == 1
    assert bench.append(path, {"id": "g2", "ap50": 0.2}) == 2
    assert bench.append(path, {"id": "g1", "ap50": 0.3}) == 2  # a rerun replaces, not adds
    stored = json.loads(path.read_text())["architectures"]
    assert [(a["id"], a["ap50"]) for a in stored] == [("g2", 0.2), ("g1", 0.3)]


@pytest.mark.slow
def test_a_smoke_recipe_cannot_write_the_shipped_set():
    result = subprocess.run([sys.executable, str(SCRIPTS / "bench_trained_set.py"),
                             "--epochs", "1", "--plan"],
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 2 and "--results" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_first_run_pins_the_plan_and_later_runs_train_from_it(tmp_path):
    results = tmp_path / "set.json"
    base = [sys.executable, str(SCRIPTS / "bench_trained_set.py"), "--pool", "80",
            "--fit-per-space", "2", "--heldout-per-space", "1", "--results", str(results)]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *extra], capture_output=True, text=True, check=False,
                              timeout=300)

    first = run("--limit", "0")  # pins, trains nothing
    assert first.returncode == 0, first.stderr
    pinned_path = tmp_path / "set_plan.json"
    pinned = json.loads(pinned_path.read_text())
    assert {s["label"] for s in pinned["spaces"]} == {"stm32h7-512k-256k", "esp32-default"}
    assert not results.exists()
    # A later run trains what the pinned file says, not what today's estimators would draw.
    pinned["architectures"] = pinned["architectures"][1:3]
    pinned_path.write_text(json.dumps(pinned))
    later = run("--plan", "--json")
    assert [p["id"] for p in json.loads(later.stdout)["plan"]] == \
        [a["id"] for a in pinned["architectures"]]
    other = run("--plan", "--fit-seed", "5")
    assert other.returncode == 2 and "--fit-seed 1 (asked 5)" in other.stderr
    assert "Traceback" not in other.stderr
    assert len(json.loads(run("--plan", "--json", "--replan").stdout)["plan"]) == 6


def test_a_proxy_list_keeps_each_proxys_options_together():
    bench = _module("bench_proxies")
    assert bench.proxy_list("macs, loss-area:epochs=2,window=1,composite,zen:images=4") == [
        "macs", "loss-area:epochs=2,window=1", "composite", "zen:images=4"]
