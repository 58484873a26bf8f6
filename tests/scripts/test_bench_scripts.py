from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


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
