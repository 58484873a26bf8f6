"""Run the README's demo search end to end and judge it against the seed baselines.

It runs ``tinynas search`` exactly as ``make run`` does (``DEMO`` below, the README's main
command) into a fresh runs directory, then reports:

* the wall time of the whole command (search, training, export, int8 evaluation);
* trials/s of the search phase, and of the estimate-only trials (the ones the estimators
  rejected before any proxy ran: sampling + lowering + flash/RAM/latency estimates);
* the side-by-side table of the trained top-k models and every seed baseline that fits the same
  budget, trained with the same recipe and time budget in the same run;
* the goal: every such baseline is Pareto-dominated by a searched model (higher float AP50 at
  lower or equal predicted latency, and within budget, measured on the export).

    .venv/bin/python scripts/bench_search.py [--out DIR] [--json FILE] [-- extra search flags]

``--versus-random`` instead judges the search against random search at equal training cost, at
a user's budget (default stm32h7 at 512 KiB flash / 256 KiB RAM), on each of ``--seeds``:

* the search: ``tinynas search`` with ``--trials`` trials and no training; its top ``--k`` are
  what ``--train-top K`` would train (``nas.search.finalize.pick``: each fitting baseline's
  best rival first, then by proxy);
* the random arm: the first ``--k`` feasible genomes drawn at random (seed + 1000) from the
  same fitted space the search sampled (the study's recorded space);
* every seed baseline that fits the budget;
* all trained with the same fixed recipe (the default: 12 epochs, one thread; fixed epochs
  rather than a time budget, so the box's load cannot favour one arm), on the same data.

Goal per seed: some searched model beats the random arm's best in AP50 at equal or lower
predicted latency, and beats every fitting baseline the same way. Resumable: the studies and
finished trainings in ``--out`` are reused; results go to ``--out/versus_random.json``.

    .venv/bin/python scripts/bench_search.py --versus-random --out /tmp/vs-random \
        --seeds 1,2 --k 4 --jobs 2 [-- extra search flags, e.g. --proxy composite]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# The README's main command (`make run`), minus the runs directory this script chooses.
DEMO = ("search", "--target", "stm32h7", "--trials", "20", "--workers", "2", "--train-top", "2",
        "--train-budget", "3m", "--export")


def run_demo(runs_dir: Path, extra: list[str]) -> tuple[dict[str, Any], float]:
    tinynas = Path(sys.executable).with_name("tinynas")
    cmd = [str(tinynas), *DEMO, "--runs-dir", str(runs_dir), "--json", *extra]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    started = time.monotonic()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"tinynas search exited {done.returncode}")
    return json.loads(done.stdout), seconds


def estimate_only_rate(runs_dir: Path, study_name: str) -> dict[str, Any]:
    """Trials/s of the trials that stopped at the estimators (rejected by a budget)."""
    import optuna

    from nas.search.storage import open_study

    study = open_study(study_name, None, runs_dir)
    rejected = [t for t in study.get_trials(deepcopy=False)
                if "rejected" in t.user_attrs and t.datetime_complete and t.datetime_start]
    seconds = [(t.datetime_complete - t.datetime_start).total_seconds() for t in rejected]
    feasible = [t for t in study.get_trials(deepcopy=False,
                                            states=(optuna.trial.TrialState.COMPLETE,))
                if "rejected" not in t.user_attrs and t.datetime_complete]
    scored = [(t.datetime_complete - t.datetime_start).total_seconds() for t in feasible]
    mean = sum(seconds) / len(seconds) if seconds else None
    mean_scored = sum(scored) / len(scored) if scored else None
    return {"rejected_trials": len(rejected),
            "estimate_only_trials_per_s": round(1 / mean, 2) if mean else None,
            "scored_trials": len(scored),
            "scored_trial_mean_s": round(mean_scored, 3) if mean_scored else None}


def judge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each fitting baseline: the searched models that dominate it (None if any AP50 or
    measured fit is missing: an unmeasured model proves nothing)."""
    searched = [r for r in rows if r["kind"] == "searched"]
    verdicts = []
    for base in (r for r in rows if r["kind"] == "baseline"):
        winners = [s["name"] for s in searched
                   if s["ap50"] is not None and base["ap50"] is not None
                   and s["ap50"] > base["ap50"] and s["latency_ms"] <= base["latency_ms"]
                   and s["fits_measured"] is True]
        verdicts.append({"baseline": base["name"], "dominated_by": winners,
                         "dominated": bool(winners)})
    return verdicts


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _kib(value: Any) -> str:
    return "-" if value is None else f"{value / 1024:.1f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| model | kind | predicted latency (ms, band) | AP50 float / int8 | mAP float / "
            "int8 | epochs | .tflite KiB | TFLM arena KiB | fits (measured) |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        band = f"{r['latency_ms']:.1f} ({r['latency_ms_low']:.1f}-{r['latency_ms_high']:.1f})"
        lines.append(
            f"| {r['name']} | {r['kind']} | {band} | {_pct(r['ap50'])} / {_pct(r['int8_ap50'])}"
            f" | {_pct(r['map'])} / {_pct(r['int8_map'])} | {r['epochs']} | "
            f"{_kib(r['tflite_bytes'])} | {_kib(r['tflm_arena_bytes'])} | "
            f"{r['fits_measured']} |")
    return head + "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs-bench"),
                        help="runs directory (replaced, except with --versus-random: reused)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--versus-random", action="store_true",
                        help="judge the search against random search at equal cost")
    parser.add_argument("--target", default="stm32h7", help="--versus-random: the board")
    parser.add_argument("--flash", default="512KiB", help="--versus-random: flash budget")
    parser.add_argument("--ram", default="256KiB", help="--versus-random: RAM budget")
    parser.add_argument("--trials", type=int, default=60, help="--versus-random: trials")
    parser.add_argument("--seeds", default="1,2", help="--versus-random: search seeds")
    parser.add_argument("--k", type=int, default=4, help="--versus-random: models per arm")
    parser.add_argument("--jobs", type=int, default=2, help="--versus-random: trainings at once")
    parser.add_argument("--epochs", type=int,
                        help="--versus-random: override the recipe's epochs (smoke runs)")
    parser.add_argument("--train-seeds", default="0",
                        help="--versus-random: training seeds per model (AP50 is their mean; "
                             "more than one measures how much of a margin is training noise)")
    parser.add_argument("--data", type=Path, help="--versus-random: dataset (default: demo)")
    parser.add_argument("extra", nargs="*", help="more `tinynas search` flags (after --)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.versus_random:
        from search_vs_random import versus_random

        return versus_random(args)
    if args.out.exists():
        shutil.rmtree(args.out)
    summary, seconds = run_demo(args.out, args.extra)
    rows = summary.get("train_top") or []
    result = {
        "date": datetime.date.today().isoformat(), "command": "tinynas " + " ".join(DEMO),
        "cores": os.cpu_count(), "wall_s": round(seconds, 1),
        "search_seconds": summary.get("seconds"), "trials": summary.get("trials"),
        "feasible": summary.get("feasible"), "search_trials_per_s": summary.get("trials_per_s"),
        **estimate_only_rate(args.out, summary["study"]),
        "rows": rows, "verdicts": judge(rows),
    }
    result["goal_met"] = bool(result["verdicts"]) and all(v["dominated"]
                                                          for v in result["verdicts"])
    if args.json:
        from artefacts.atomic import atomic_write_json

        atomic_write_json(args.json, result, indent=2)
    print(markdown(rows))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
