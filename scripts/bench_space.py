"""How well the search searches at the budgets users have (issue 14): feasible share, front.

For each of the five budgets below and each seed, runs ``tinynas search --trials 40`` with a
training-free proxy (``prior-iou`` by default, so a run takes seconds) on the demo data, and
records the feasible share, the Pareto front's size, trials/s and the best proxy. Goal: at
least 80% of the trials feasible on every run and every front non-empty.

``--tinynas PATH`` runs another build (e.g. ``/work/main/.venv/bin/tinynas`` for "before").
Results are kept in ``--json`` as they come, and a rerun skips the runs already there.

    .venv/bin/python scripts/bench_space.py --json runs-bench/space.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUDGETS = {
    "esp32 defaults": ("--target", "esp32"),
    "esp32s3 defaults": ("--target", "esp32s3"),
    "stm32h7 512KiB/256KiB": ("--target", "stm32h7", "--flash", "512KiB", "--ram", "256KiB"),
    "stm32h7 384KiB/160KiB": ("--target", "stm32h7", "--flash", "384KiB", "--ram", "160KiB"),
    "esp32 --ram 80KiB": ("--target", "esp32", "--ram", "80KiB"),
}
GOAL = 0.8


def run_one(tinynas: str, budget: tuple[str, ...], seed: int, trials: int, proxy: str
            ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-space-") as runs:
        cmd = [tinynas, "search", *budget, "--trials", str(trials), "--seed", str(seed),
               "--proxy", proxy, "--runs-dir", runs, "--json", "--quiet"]
        print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
        started = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = round(time.monotonic() - started, 1)
    if done.returncode != 0:
        return {"exit_code": done.returncode, "error": done.stderr.strip().splitlines()[-1:]}
    row = json.loads(done.stdout)
    space = row.get("space") or {}
    fit = space.get("fit") or {}
    return {"exit_code": 0, "trials": row["trials"], "feasible": row["feasible"],
            "feasible_share": round(row["feasible"] / row["trials"], 3),
            "front": len(row["front"]), "trials_per_s": row["trials_per_s"],
            "seconds": row["seconds"], "wall_s": wall, "best_proxy": row["best_proxy"],
            "fit_samples": fit.get("samples"),
            "space_fitted_share": fit.get("fitted_feasible_share"),
            "space_kept_share": fit.get("feasible_kept_share"),
            "space": _describe(space) if space else None}


def _describe(record: dict[str, Any]) -> dict[str, str]:
    from search_space.space import SearchSpace

    return dict(SearchSpace.from_dict(record).describe())


def markdown(results: dict[str, Any]) -> str:
    lines = ["| budget | seed | feasible | front | trials/s | best proxy |",
             "|---|---|---|---|---|---|"]
    for key, row in results["runs"].items():
        budget, seed = key.rsplit(" seed ", 1)
        if row["exit_code"] != 0:
            lines.append(f"| {budget} | {seed} | exit {row['exit_code']}: "
                         f"{' '.join(row['error'])} | | | |")
            continue
        proxy = "-" if row["best_proxy"] is None else f"{row['best_proxy']:.4f}"
        lines.append(f"| {budget} | {seed} | {row['feasible']}/{row['trials']} | "
                     f"{row['front']} | {row['trials_per_s']} | {proxy} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tinynas", default=str(Path(sys.executable).with_name("tinynas")))
    parser.add_argument("--json", type=Path, required=True, help="results (kept, resumed)")
    parser.add_argument("--seeds", default="23,24")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--proxy", default="prior-iou")
    args = parser.parse_args()
    results: dict[str, Any] = (json.loads(args.json.read_text()) if args.json.exists() else
                               {"runs": {}})
    results.update({"date": datetime.date.today().isoformat(), "tinynas": args.tinynas,
                    "cores": os.cpu_count(), "trials": args.trials, "proxy": args.proxy})
    for name, budget in BUDGETS.items():
        for seed in (int(s) for s in args.seeds.split(",")):
            key = f"{name} seed {seed}"
            if key not in results["runs"]:
                results["runs"][key] = run_one(args.tinynas, budget, seed, args.trials,
                                               args.proxy)
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results, indent=2))
    runs = results["runs"].values()
    results["goal_met"] = all(r["exit_code"] == 0 and r["feasible_share"] >= GOAL
                              and r["front"] > 0 for r in runs)
    args.json.write_text(json.dumps(results, indent=2))
    print(markdown(results))
    print(f"goal (>= {GOAL:.0%} feasible, front non-empty, every run): "
          f"{'met' if results['goal_met'] else 'NOT met'}")
    return 0 if results["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
