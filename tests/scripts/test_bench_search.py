from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

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
