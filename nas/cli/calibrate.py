"""``tinynas calibrate``: fit a target's latency to your own runs, or measure this machine.

* ``--target T --measurements runs.csv --profile NAME``: the CSV lists exported models and
  the milliseconds measured on the board (format: ``nas.calibrate.user``). The target's
  latency model for its runtime is refitted (all weights with 8+ runs, one scale below) and
  saved as the profile ``T@NAME``, which ``--target T@NAME`` then uses everywhere.
* ``--measure host [--profile local]``: exports sampled genomes (and the baselines), times them
  in LiteRT and TFLite Micro on this machine, refits the host models and saves them as the
  profiles ``host-litert@NAME`` and ``host-tflm@NAME``.

Both print the error before (shipped coefficients) and after (the profile).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from estimators.latency import feature_vector, models_for
from estimators.latency.fit import ErrorSummary, fit_host, host_identity, refit
from estimators.latency.kinds import kind_matrix
from estimators.latency.profiles import (
    Profile,
    check_name,
    profile_dir,
    save_profile,
    saved_profiles,
)
from estimators.targets import Target
from nas.cli.command import EXIT_OK, Command, Output, target_arguments, target_from_args
from nas.errors import UsageError

HOST_METHOD = "measured on this machine by `tinynas calibrate --measure host`; band = " \
              "leave-one-out error range"
QUICK_METHOD = ("the shipped host model scaled to {rows} runs on this machine by `tinynas "
                "calibrate --measure host --quick` (x{scale:.3f}); band = the shipped model's "
                "range joined with the scale's leave-one-out range")
QUICK_GENOMES, FULL_GENOMES, FULL_ROUNDS = 6, 12, 2


class CalibrateCommand(Command):
    name = "calibrate"
    help = "refit a target's latency from your own board runs, or measure this machine"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        target_arguments(parser, required=False)
        parser.add_argument("--measurements", type=Path, metavar="CSV",
                            help="model,latency_ms rows measured on the board")
        parser.add_argument("--measure", choices=("host",),
                            help="measure this machine instead (LiteRT and TFLite Micro)")
        parser.add_argument("--profile", help="name to save the calibration under")
        parser.add_argument("--storage", metavar="URL", help="study storage for "
                            "study:NAME/trial:N rows (default sqlite:///RUNS_DIR/tinynas.db)")
        parser.add_argument("--runs-dir", default="runs", metavar="DIR",
                            help="the search's runs directory (default ./runs)")
        parser.add_argument("--quick", action="store_true",
                            help="--measure host: a few genomes, minutes: refit only the "
                                 "machine's speed (one scale) on the shipped host models")
        parser.add_argument("--genomes", type=int, default=None,
                            help="--measure host: sampled genomes to fit on (default 12; "
                                 f"{QUICK_GENOMES} with --quick)")
        parser.add_argument("--holdout", type=int, default=6,
                            help="--measure host: held-out genomes to judge on (default 6)")
        parser.add_argument("--no-baselines", action="store_true",
                            help="--measure host: skip the 25 baselines (faster, less data)")
        parser.add_argument("--runs", type=int, default=20,
                            help="--measure host: timed invocations per model and round (>= 20)")
        parser.add_argument("--rounds", type=int, default=None,
                            help="--measure host: passes over all models, pooled (default 2; "
                                 "1 with --quick)")
        parser.add_argument("--out", type=Path,
                            help="--measure host: where to keep the measured CSV")

    def run(self, args: argparse.Namespace, out: Output) -> int:
        if (args.measurements is None) == (args.measure is None):
            raise UsageError("give either --measurements CSV (board runs) or --measure host")
        if args.measure:
            return _measure_host(args, out)
        return _from_measurements(args, out)


def _profile_name(args: argparse.Namespace, default: str | None) -> str:
    name = args.profile or default
    if name is None:
        raise UsageError("--profile NAME: name the calibration to save (e.g. --profile lab)")
    return check_name(name)


def _start(args: argparse.Namespace) -> tuple[Target, str]:
    """The target to refit from and the profile to save: ``T@NAME`` refits that profile if
    it exists, else starts from the shipped coefficients and creates it."""
    target = target_from_args(args)
    name = _profile_name(args, target.profile or None)
    if target.profile and target.profile not in saved_profiles(target.name):
        target = replace(target, profile="")
    return target, name


def _trial_exports(args: argparse.Namespace) -> Any:
    """Resolves ``study:NAME/trial:N`` rows in the study storage ``--storage``/``--runs-dir``
    name (Optuna loads only when a row needs it)."""

    def export_dir(study_name: str, number: int) -> Path:
        from nas.search.storage import open_study
        from nas.search.trials import export_dir_of

        return export_dir_of(open_study(study_name, args.storage, Path(args.runs_dir)), number)

    return export_dir


def _from_measurements(args: argparse.Namespace, out: Output) -> int:
    from nas.calibrate.user import MeasurementsError, read_measurements

    target, name = _start(args)
    try:
        rows = read_measurements(args.measurements, _trial_exports(args))
    except MeasurementsError as exc:  # imported here: it loads LiteRT's flatbuffer schema
        raise UsageError(str(exc)) from None
    host, model = models_for(target)
    # Refitting a saved profile without --clock keeps the clock its runs were measured at.
    clock = (model.clock_mhz if args.clock is None and target.profile and model.clock_scaling
             else target.clock_mhz)
    x = np.array([feature_vector(list(r.kernels)) for r in rows])
    kinds = np.array([kind_matrix(list(r.kernels)) for r in rows])
    ms = np.array([r.latency_ms for r in rows])
    result = refit(model, host, x, ms, clock, kinds)
    path = save_profile(Profile(target.name, name, {model.runtime: result.model},
                                notes={model.runtime: {"measurements": str(args.measurements),
                                                       "rows": len(rows)}}))
    report = {
        "target": target.name, "runtime": model.runtime, "profile": f"{target.name}@{name}",
        "profile_path": str(path), "clock_mhz": clock, "rows": len(rows),
        "method": result.method, "before": result.before.to_dict(),
        "after": result.after.to_dict(),
        "leave_one_out": result.loo.to_dict() if result.loo else None,
        "band": list(result.model.error_range),
        "per_row": _per_row(rows, model, result.model, host, x, kinds, clock),
    }
    _report(out, report, f"use it with --target {target.name}@{name}")
    return EXIT_OK


def _per_row(rows: list[Any], old: Any, new: Any, host: Any, x: np.ndarray,
             kinds: np.ndarray, clock: int) -> list[dict[str, Any]]:
    return [{"line": r.line, "model": r.model, "measured_ms": r.latency_ms,
             "before_ms": old.predict(host, xi, clock, ki).ms,
             "after_ms": new.predict(host, xi, clock, ki).ms}
            for r, xi, ki in zip(rows, x, kinds, strict=True)]


def _report(out: Output, report: dict[str, Any], hint: str) -> None:
    out.show(report, lambda found: _print_refit(out, found, hint))


def _print_refit(out: Output, report: dict[str, Any], hint: str) -> None:
    for key in ("before", "after", "leave_one_out"):
        s = report.get(key)
        if s:
            out.console.print(f"{key:>13}: {s['count']} runs, within 10% {s['within_10']:.0%}, "
                              f"MAPE {s['mape']:.1%}, errors {s['min_error']:+.1%}.."
                              f"{s['max_error']:+.1%}", highlight=False)
    out.console.print(f"{report['method']}; saved {report['profile_path']}; {hint}",
                      highlight=False)


def _measure_host(args: argparse.Namespace, out: Output) -> int:
    from nas.calibrate import measure

    name = _profile_name(args, "local")
    quick = args.quick
    genomes = args.genomes if args.genomes is not None else (
        QUICK_GENOMES if quick else FULL_GENOMES)
    rounds = args.rounds if args.rounds is not None else (1 if quick else FULL_ROUNDS)
    holdout = 0 if quick else args.holdout
    if args.runs < 20 or rounds < 1 or genomes < (3 if quick else 2) or (
            not quick and holdout < 1):
        raise UsageError(f"--runs {args.runs} / --rounds {rounds} / --genomes {genomes} / "
                         f"--holdout {holdout}: need at least 20 runs, 1 round, "
                         + ("3 genomes (--quick)" if quick else "2 genomes and 1 held out"))
    # --quick: no baselines (they are the slow conversions) and nothing held out: the scale's
    # own leave-one-out over the few genomes is its error.
    models = measure.plan(genomes, holdout, baselines=not (args.no_baselines or quick))
    runs = _timed(models, args.runs, rounds, out)
    csv_path = args.out or profile_dir() / f"host@{name}-runs.csv"
    measure.write_runs(runs, csv_path)
    report: dict[str, Any] = {"profile": name, "runs_csv": str(csv_path), "models": len(runs),
                              "mode": "quick" if quick else "full", "runtimes": {}}
    refit_one = _scale_host if quick else _refit_host
    for runtime in ("litert", "tflm"):
        report["runtimes"][runtime] = refit_one(runtime, runs, name)
    out.show(report, lambda found: _print_measured(out, found, quick))
    return EXIT_OK


def _print_measured(out: Output, report: dict[str, Any], quick: bool) -> None:
    judged = "leave-one-out" if quick else "held-out"
    name = report["profile"]
    for runtime, r in report["runtimes"].items():
        out.console.print(f"host-{runtime}: {judged} within 10% before "
                          f"{r['before']['within_10']:.0%} (MAPE {r['before']['mape']:.1%})"
                          f", after {r['after']['within_10']:.0%} (MAPE "
                          f"{r['after']['mape']:.1%}); use --target host-{runtime}@{name}",
                          highlight=False)


def _timed(models: list[Any], runs: int, rounds: int, out: Output) -> list[Any]:
    """Export every model (into a temporary cache), then time them ``rounds`` times over."""
    import tempfile

    from nas.calibrate import measure

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
               "{task.total}"), TimeElapsedColumn())
    with tempfile.TemporaryDirectory() as tmp, \
            Progress(*columns, console=out.notes, transient=True) as progress:
        cache = Path(tmp)
        task = progress.add_task("export", total=len(models))
        for model in models:
            progress.update(task, description=f"export {model.name}")
            measure.export_file(model, cache)
            progress.advance(task)
        task = progress.add_task("time (LiteRT + TFLite Micro)", total=len(models) * rounds)
        return measure.measure(models, runs, cache, rounds,
                               done=lambda *_: progress.advance(task))


def _refit_host(runtime: str, runs: list[Any], name: str) -> dict[str, Any]:
    from estimators.latency import shipped_host_models
    from estimators.latency.fit import relative_errors
    from estimators.latency.predictor import HostModel
    from nas.calibrate import measure

    split = {s: [r for r in runs if r.split == s] for s in (measure.FIT, measure.HOLDOUT)}
    x = {s: measure.feature_matrix(rs) for s, rs in split.items()}
    y = {s: np.array([getattr(r, f"{runtime}_ms") for r in rs]) for s, rs in split.items()}
    host: HostModel = fit_host(runtime, x[measure.FIT], y[measure.FIT], runs[0].environment())
    shipped = shipped_host_models()[runtime]
    hold_x, hold_y = x[measure.HOLDOUT], y[measure.HOLDOUT]
    before = relative_errors(np.array([shipped.predict(r) for r in hold_x]), hold_y)
    after = relative_errors(np.array([host.predict(r) for r in hold_x]), hold_y)
    target = f"host-{runtime}"
    path = save_profile(Profile(target, name, {runtime: host_identity(host, HOST_METHOD)},
                                {runtime: host}))
    return {"profile": f"{target}@{name}", "profile_path": str(path),
            "before": ErrorSummary.of(before).to_dict(), "after": ErrorSummary.of(after).to_dict()}


def _scale_host(runtime: str, runs: list[Any], name: str) -> dict[str, Any]:
    """--quick: the shipped host model times one factor fitted on this machine's runs.
    ``before`` is the shipped model on them, ``after`` the factor's leave-one-out.

    It fits the median thread CPU time, not the wall time: the two agree on a quiet machine,
    but a user's desktop is rarely quiet, and a handful of models leaves no room for a median
    inflated by preemption (on a 2-core VM shared with four busy jobs, wall medians came out
    up to 2.9x the CPU time; the CPU medians held)."""
    from estimators.latency import shipped_host_models
    from estimators.latency.fit import relative_errors, scale_host
    from nas.calibrate import measure

    x = measure.feature_matrix(runs)
    y = np.array([getattr(r, f"{runtime}_cpu_ms") for r in runs])
    shipped = shipped_host_models()[runtime]
    host, loo = scale_host(shipped, x, y, runs[0].environment())
    before = relative_errors(x @ np.asarray(shipped.coefficients), y)
    method = QUICK_METHOD.format(rows=len(y), scale=host.accuracy["scale"])
    target = f"host-{runtime}"
    path = save_profile(Profile(target, name, {runtime: host_identity(host, method)},
                                {runtime: host}))
    return {"profile": f"{target}@{name}", "profile_path": str(path),
            "scale": host.accuracy["scale"], "band": list(host.error_range), "timed": "thread cpu",
            "before": ErrorSummary.of(before).to_dict(), "after": ErrorSummary.of(loo).to_dict()}
