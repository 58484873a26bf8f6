"""Measure real int8 latency on this machine: the dataset the latency predictor is fitted on.

Every baseline plus ``--fit-genomes`` genomes (seed ``--fit-seed``) are the fitting set;
``--holdout-genomes`` genomes drawn with another seed (``--holdout-seed``) are only ever used
to judge the predictor. Each model is exported to full-int8 TFLite and timed in LiteRT
(1 thread) and TFLite Micro (reference kernels): median and 10th/90th percentiles of
``--runs`` invocations after a warm-up. The CSV records the environment on every row.

    .venv/bin/python scripts/measure_latency.py --out runs.csv [--cache DIR] [--runs 20]
        [--rounds 3] [--fit-genomes 45] [--holdout-genomes 30] [--export-only]
        [--only NAME ...]

``--export-only`` converts into ``--cache`` and times nothing (conversion can run on a busy
machine; timing wants a quiet one). ``tinynas calibrate --measure host`` runs the same
harness and refits the host predictor from it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="CSV to write (required unless --export-only)")
    parser.add_argument("--cache", type=Path, help="keep / reuse converted .tflite files here")
    parser.add_argument("--runs", type=int, default=20, help="timed invocations per round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="passes over all models, pooled (default 3)")
    parser.add_argument("--fit-genomes", type=int, default=45)
    parser.add_argument("--holdout-genomes", type=int, default=30)
    parser.add_argument("--fit-seed", type=int, default=0)
    parser.add_argument("--holdout-seed", type=int, default=1)
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--export-only", action="store_true")
    parser.add_argument("--only", nargs="*", help="model names to run (default: all)")
    args = parser.parse_args()
    if not args.export_only and args.out is None:
        parser.error("--out is required unless --export-only")
    if args.export_only and args.cache is None:
        parser.error("--export-only needs --cache")
    if args.runs < 20:
        parser.error(f"--runs {args.runs}: use at least 20 for a stable median")
    import nas.export  # noqa: F401  (quiets TensorFlow before anything imports it)
    from nas.calibrate import measure

    models = measure.plan(args.fit_genomes, args.holdout_genomes, args.fit_seed,
                          args.holdout_seed, baselines=not args.no_baselines)
    if args.only:
        models = [m for m in models if m.name in args.only]
    if args.export_only:
        for i, model in enumerate(models, 1):
            measure.export_file(model, args.cache)
            print(f"[{i}/{len(models)}] {model.name}: exported", file=sys.stderr, flush=True)
        return 0
    steps = iter(range(1, len(models) * args.rounds + 1))

    def done(run: measure.Run, rows: list[measure.Run]) -> None:
        measure.write_runs(rows, args.out)  # rewritten every step: a crash keeps the rest
        print(f"[{next(steps)}/{len(models) * args.rounds}] {run.name}: LiteRT "
              f"{run.litert_ms:.3f} ms, TFLM {run.tflm_ms:.1f} ms ({run.runs} runs)",
              file=sys.stderr, flush=True)

    rows = measure.measure(models, args.runs, args.cache, args.rounds, done=done)
    print(f"wrote {len(rows)} runs to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
