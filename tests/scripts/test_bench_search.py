from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_search.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_search", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(name: str, kind: str, ap50: float | None, latency: float,
         fits: bool | None = True) -> dict[str, Any]:
    return {"name": name, "kind": kind, "ap50": ap50, "latency_ms": latency,
            "latency_ms_low": latency * 0.9, "latency_ms_high": latency * 1.1,
            "fits_measured": fits, "int8_ap50": None, "map": None, "int8_map": None,
            "epochs": 3, "tflite_bytes": 1024, "tflm_arena_bytes": None}


def test_a_baseline_is_dominated_only_by_a_better_faster_fitting_model():
    bench = _module()
    rows = [_row("base", "baseline", 0.40, 150.0),
            _row("slow", "searched", 0.60, 160.0),           # more accurate but slower
            _row("weak", "searched", 0.30, 90.0),            # faster but less accurate
            _row("over", "searched", 0.50, 100.0, False),    # breaks the budget measured
            _row("good", "searched", 0.45, 150.0)]           # equal latency counts
    assert bench.judge(rows) == [{"baseline": "base", "dominated_by": ["good"],
                                  "dominated": True}]
    assert bench.judge(rows[:4])[0]["dominated"] is False


def test_the_benchmarked_demo_is_the_makefiles_run():
    makefile = (SCRIPT.parents[1] / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nrun:", 1)[1].splitlines()[1].split()
    assert recipe[0].endswith("tinynas") and tuple(recipe[1:]) == _module().DEMO


def test_an_unmeasured_model_proves_nothing():
    bench = _module()
    rows = [_row("base", "baseline", None, 150.0), _row("s", "searched", 0.9, 10.0)]
    assert bench.judge(rows)[0]["dominated"] is False


def test_markdown_has_one_line_per_model():
    bench = _module()
    table = bench.markdown([_row("base", "baseline", 0.40, 150.0),
                            _row("s", "searched", None, 90.0)])
    lines = table.splitlines()
    assert len(lines) == 4 and "| base | baseline | 150.0 (135.0-165.0) | 40.0 / - |" in lines[2]


def _vs_module() -> ModuleType:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec = importlib.util.spec_from_file_location("search_vs_random",
                                                      SCRIPT.parent / "search_vs_random.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["search_vs_random"] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPT.parent))


def _entry(name: str, arm: str, ap50: float | None, latency: float) -> dict[str, Any]:
    return {"name": name, "arm": arm, "ap50": ap50, "latency_ms": latency, "proxy": None,
            "map": None}


def test_the_search_must_beat_the_random_best_and_every_baseline_at_no_more_latency():
    vs = _vs_module()
    rows = [_entry("r1", "random", 0.40, 50.0), _entry("r2", "random", 0.30, 20.0),
            _entry("b", "baseline", 0.20, 150.0),
            _entry("s1", "search", 0.45, 60.0),   # better than r1 but slower: no
            _entry("s2", "search", 0.41, 50.0)]   # better at equal latency: yes
    found = vs.verdict(rows)
    assert found["best_random"] == "r1" and found["best_search"] == "s1"
    assert found["beats_random_best"] == ["s2"]
    assert found["beats_baselines"] == {"b": ["s1", "s2"]} and found["goal_met"]
    assert not vs.verdict(rows[:4])["goal_met"]
    untrained = [*rows[:3], _entry("s3", "search", None, 10.0)]
    assert vs.verdict(untrained)["beats_baselines"] == {"b": []}


def test_a_model_trained_with_several_seeds_scores_their_mean_once_all_are_done():
    from search_space.spec import ModelSpec

    vs = _vs_module()
    entrant = vs.Entrant("s1-random-0", "random", ModelSpec(3, baseline="ssd-mbv1-0.25-192"),
                         80.0)
    runs = [{"ap50": 0.5, "map": 0.3, "wall_s": 60.0}, {"ap50": 0.4, "map": 0.2, "wall_s": 180.0}]
    row = entrant.row(runs)
    assert row["ap50"] == pytest.approx(0.45) and row["map"] == pytest.approx(0.25)
    assert row["ap50_per_train_seed"] == [0.5, 0.4] and row["train_min"] == 2.0
    assert "| 45.0 (50.0 / 40.0) |" in vs.markdown(1, [row])
    unfinished = entrant.row([runs[0], None])
    assert unfinished["ap50"] is None and unfinished["ap50_per_train_seed"] is None
    assert [vs.run_name("m", t) for t in (0, 2)] == ["m", "m@t2"]


@pytest.mark.parametrize("text", ["", "0,x", "1,1"])
def test_a_bad_seed_list_is_refused_with_exit_2(text, capsys):
    with pytest.raises(SystemExit) as stop:
        _vs_module().seed_list(text, "--train-seeds")
    assert stop.value.code == 2 and "--train-seeds" in capsys.readouterr().err


@pytest.mark.slow
def test_versus_random_runs_both_arms_end_to_end(tmp_path):
    from objectives.data.demo import DemoConfig, write_demo

    data = write_demo(tmp_path / "demo", DemoConfig(num_train=16, num_val=8, image_size=128))
    out = tmp_path / "vs"
    command = [sys.executable, str(SCRIPT), "--versus-random", "--out", str(out),
               "--seeds", "1", "--k", "1", "--trials", "6", "--epochs", "1", "--jobs", "1",
               "--train-seeds", "0,1",
               "--data", str(data), "--", "--proxy", "params"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode in (0, 1), done.stderr
    result = json.loads((out / "versus_random.json").read_text())
    rows = result["seeds"]["1"]["rows"]
    assert {r["arm"] for r in rows} >= {"search", "random"}
    assert all(r["ap50"] is not None for r in rows)  # every entrant trained and evaluated
    assert all(r["train_min"] >= 0 for r in rows)
    assert all(len(r["ap50_per_train_seed"]) == 2 for r in rows)
    assert result["seeds"]["1"]["search_trial_s"] > 0
    assert result["goal_met"] == (done.returncode == 0)
    # A rerun reuses the study and the finished trainings.
    again = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert "train s1-" in done.stderr and "train s1-" not in again.stderr
    assert json.loads((out / "versus_random.json").read_text())["seeds"]["1"]["rows"] == rows
