from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from objectives.data.demo import DemoConfig, write_demo

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_training.py"


@pytest.mark.slow
def test_training_benchmark_quick_run(tmp_path):
    # A smoke run on a tiny dataset: the figures belong in BENCHMARKS.md, not in a test.
    data = write_demo(tmp_path / "demo", DemoConfig(num_train=8, num_val=4, image_size=96))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--data", str(data), "--json"],
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
