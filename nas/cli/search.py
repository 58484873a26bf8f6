"""``tinynas search``: the multi-objective architecture search (thin over ``nas.search``).

Checks everything the user typed before a study is touched (target, budgets, proxy, data,
storage), then creates or continues the study, runs the trials (in this process or in
``--workers`` processes), prints a summary and, with ``--train-top K``, trains (and exports)
the best feasible trials and the fitting baselines.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
from rich import box
from rich.table import Table
from rich.text import Text

from estimators.budgets import format_bytes
from estimators.estimate import Budgets
from estimators.targets import Target
from nas.cli.command import (
    EXIT_DOES_NOT_FIT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Command,
    Output,
    check_new_dir,
    parse_duration,
    proxy_help,
    resolve_proxy,
    resolve_target,
    study_arguments,
    target_arguments,
)
from nas.cli.data_args import (
    class_subset,
    data_arguments,
    data_root,
    open_split,
    subset_arguments,
)
from nas.cli.formatting import ap, latency_band, size
from nas.errors import UsageError
from nas.search.config import (
    CONFIG_ATTR,
    DEMO_DATA,
    SAMPLERS,
    SearchConfig,
    parse_objectives,
    population_for,
)
from nas.search.display import Tally, make_progress
from nas.search.driver import (
    RunResult,
    SearchPlan,
    prepare,
    quiet_optuna,
    run_search,
)
from nas.search.objective import assess
from nas.search.space_fit import fit_space
from nas.search.storage import check_url, display_url, resolve_storage
from search_space.sampling import sample_genome
from search_space.space import FULL_SPACE, SearchSpace
from search_space.spec import ModelSpec

DEFAULT_TRIALS = 50
DEFAULT_TRAIN_BUDGET = "5m"
SPACE_MODES = ("fitted", "full")


class SearchCommand(Command):
    name = "search"
    help = "search detectors that fit a board: accuracy proxy vs latency under hard budgets"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        target_arguments(parser, required=True)
        parser.add_argument("--latency-ms", type=float, metavar="Z",
                            help="latency budget in ms on the target (the prediction band's "
                            "high end must be within it)")
        length = parser.add_argument_group("how long")
        length.add_argument("--trials", type=int, metavar="N",
                            help=f"total trials in the study (default {DEFAULT_TRIALS} unless "
                            "--timeout is given); a rerun continues the study up to N")
        length.add_argument("--timeout", metavar="T",
                            help="start no trial after this long, e.g. 10m, 1h30m")
        study_arguments(parser, default_study="search")
        data_arguments(parser)
        subset_arguments(parser)
        how = parser.add_argument_group("how to search")
        how.add_argument("--proxy", metavar="NAME[:KEY=VALUE,...]", help=proxy_help(
            "accuracy proxy (default: the measured best; README, Accuracy proxies)"))
        how.add_argument("--objectives", default="proxy,latency",
                         help="proxy,latency plus optionally flash and/or ram "
                         "(default proxy,latency)")
        how.add_argument("--sampler", choices=SAMPLERS, default="nsga2",
                         help="nsga2 (default), tpe or gp")
        how.add_argument("--population", type=int, metavar="P",
                         help="NSGA-II generation size (default: N/4, between 4 and 50; 20 "
                         "with --timeout only); fixed when the study is created")
        how.add_argument("--trial-budget", metavar="T",
                         help="time a training proxy may spend on one trial, e.g. 30s; a "
                         "trial that runs out is PRUNED with the reason (default: no limit)")
        how.add_argument("--space", choices=SPACE_MODES, default="fitted",
                         help="fitted (default): the space narrowed to the budget before the "
                         "search (see README, Search space); full: every choice, unfitted. "
                         "Fixed when the study is created")
        how.add_argument("--workers", type=int, default=1, metavar="K",
                         help="worker processes on this machine (default 1)")
        how.add_argument("--seed", type=int, default=0, help="sampler and proxy seed (default 0)")
        after = parser.add_argument_group("afterwards")
        after.add_argument("--train-top", type=int, metavar="K",
                           help="fully train the K best feasible Pareto trials and the fitting "
                           "baselines")
        after.add_argument("--train-budget", metavar="T",
                           help=f"training time per model (default {DEFAULT_TRAIN_BUDGET})")
        after.add_argument("--export", action="store_true",
                           help="export the trained models to int8 TFLite and check them "
                           "against the budget")
        parser.add_argument("--quiet", action="store_true", help="no progress display")

    def run(self, args: argparse.Namespace, out: Output) -> int:
        quiet_optuna()
        _check_numbers(args)
        target, budgets = resolve_target(args, out)
        proxy, trains = resolve_proxy(args.proxy)
        trial_budget = _trial_budget(args.trial_budget, proxy, trains)
        objectives = parse_objectives(args.objectives)
        n_trials, timeout = _length(args)
        runs_dir = _runs_dir(args.runs_dir)
        check_url(args.storage, runs_dir)  # a typo fails before the data is read
        # One class is the smallest head: if that cannot fit, no dataset's can, and the
        # refusal comes before the demo data is drawn.
        _check_space_fits(target, budgets, args.latency_ms, 1)
        subset = class_subset(args)  # a bad --classes fails before the demo data is drawn
        root = data_root(args, out)
        train_set = open_split(root, "train", args, subset, out, drop_empty=args.drop_empty)
        _check_space_fits(target, budgets, args.latency_ms, train_set.num_classes)
        storage = resolve_storage(args.storage, runs_dir)
        space = _space(args, out, storage, target, budgets, train_set.num_classes)
        config = SearchConfig(
            target=target.label, runtime=target.runtime.name, clock_mhz=target.clock_mhz,
            flash_budget=budgets.flash_bytes, ram_budget=budgets.ram_bytes,
            latency_budget_ms=args.latency_ms, proxy=proxy, objectives=objectives,
            data=DEMO_DATA if not args.data else str(root.resolve()),
            data_format=args.format, on_error=args.bad_annotations,
            num_classes=train_set.num_classes, class_names=tuple(train_set.class_names),
            drop_empty=args.drop_empty,
            seed=args.seed, sampler=args.sampler,
            population=_population(args, storage, n_trials), trial_budget_s=trial_budget,
            space=space)
        # The clock starts now: reading (or first drawing) the data is not search time.
        deadline = time.time() + timeout if timeout is not None else None
        plan = SearchPlan(args.study, args.storage, runs_dir, config, n_trials, deadline,
                          args.workers)
        studies = prepare(plan, storage, target, budgets, needs_prune=trains)
        if not args.quiet:
            out.notes.print(space_table(config.search_space()))
        title = f"tinynas search: study {plan.name!r}, {target.label}, proxy {proxy}"
        with _sigterm_as_interrupt(), make_progress(out.notes, args.quiet, title) as progress:
            result = run_search(plan, storage, studies, progress)
        return self._report(args, out, plan, result)

    def _report(self, args: argparse.Namespace, out: Output, plan: SearchPlan,
                result: RunResult) -> int:
        tally = _final_tally(plan, result)
        row = summary(plan, result, tally)
        for line in result.worker_errors:
            out.note(line)
        if result.interrupted:
            out.note(f"interrupted ({tally.done} finished trials kept): rerun the same "
                     "command to continue")
        elif plan.deadline is not None and plan.n_trials and tally.done < plan.n_trials:
            out.note(f"stopped at --timeout with {tally.done} of {plan.n_trials} trials: rerun "
                     "to continue")
        violations: list[str] = []
        if args.train_top and not result.interrupted:
            from nas.search import finalize

            row["train_top"] = _train_top(args, out, plan, result)
            violations = finalize.budget_violations(row["train_top"])
        out.show(row, lambda found: _print_summary(out, found))
        for line in violations:
            out.note(f"budget violation (measured on the export): {line}")
        if result.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_DOES_NOT_FIT if result.worker_errors or violations else EXIT_OK


def _check_numbers(args: argparse.Namespace) -> None:
    checks = (("--trials", args.trials, 1), ("--workers", args.workers, 1),
              ("--population", args.population, 2), ("--train-top", args.train_top, 1))
    for flag, value, least in checks:
        if value is not None and value < least:
            raise UsageError(f"{flag} {value}: must be at least {least}")
    if args.latency_ms is not None and not (math.isfinite(args.latency_ms)
                                            and args.latency_ms > 0):
        raise UsageError(f"--latency-ms {args.latency_ms:g}: must be a positive number of ms")
    if args.export and not args.train_top:
        raise UsageError("--export exports the trained top-k models: give --train-top K too")
    if args.train_budget and not args.train_top:
        raise UsageError("--train-budget applies to --train-top K: give --train-top K too")


def _duration(flag: str, text: str) -> float:
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise UsageError(str(exc).replace("--time-budget", flag, 1)) from None


def _length(args: argparse.Namespace) -> tuple[int | None, float | None]:
    """(trial count, seconds): --trials, --timeout, both (whichever ends first) or neither
    (the default count)."""
    timeout = _duration("--timeout", args.timeout) if args.timeout else None
    n_trials = args.trials if args.trials is not None else (
        None if timeout is not None else DEFAULT_TRIALS)
    return n_trials, timeout


def _runs_dir(text: str) -> Path:
    """Trials' trainings and exports (and the default storage) go there: refuse a path that
    cannot become a directory before anything is read."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--runs-dir '{path}' is a file, not a directory; choose a directory")
    check_new_dir("--runs-dir", path)
    return path


def _trial_budget(text: str | None, proxy: str, trains: bool) -> float | None:
    if text is None:
        return None
    seconds = _duration("--trial-budget", text)
    if not trains:
        raise UsageError(f"--trial-budget {text!r} bounds a training proxy; proxy {proxy!r} "
                         "trains nothing (use e.g. --proxy short-train)")
    return seconds


def _stored_config(storage: optuna.storages.BaseStorage, name: str) -> dict[str, Any] | None:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id).get(CONFIG_ATTR)


def _space(args: argparse.Namespace, out: Output, storage: optuna.storages.BaseStorage,
           target: Target, budgets: Budgets, num_classes: int) -> dict[str, Any] | None:
    """The study's recorded space when it exists (a rerun, a second worker: the same space,
    not refitted), else the full space or one fitted to this budget now."""
    stored = _stored_config(storage, args.study)
    if stored is not None:
        return stored.get("space")
    if args.space == "full":
        return FULL_SPACE.to_dict()
    if not args.quiet:
        out.note("fitting the search space to the budget (estimator-only draws) ...")
    started = time.monotonic()
    # Not seeded by --seed: the space is a function of the budget, the same for every search
    # at it (the seed drives the sampler).
    space = fit_space(target, budgets, args.latency_ms, num_classes).to_dict()
    if not args.quiet:
        out.note(f"fitted in {time.monotonic() - started:.1f} s")
    return space


def space_table(space: SearchSpace) -> Table:
    """The space the sampler draws from, and how it was fitted."""
    fit = space.fit
    title = "search space: full (not fitted)" if fit is None else (
        f"search space fitted to {fit.fitted_for}")
    table = Table(title=title, show_header=False, box=box.SIMPLE_HEAD)
    table.add_column("parameter")
    table.add_column("values")
    for name, values in space.describe():
        table.add_row(name, values)
    if fit is not None:
        table.add_row("fit", f"{fit.samples} draws: "
                      f"{100 * fit.full_feasible_share:.1f}% of full-space draws fit, "
                      f"{100 * fit.fitted_feasible_share:.1f}% of fitted-space draws")
        table.add_row("excluded", f"{100 * (1 - fit.feasible_kept_share):.0f}% of the "
                      f"full space's fitting draws (largest fitting draw "
                      f"{fit.full_max_feasible_macs / 1e6:.1f} M MACs, inside "
                      f"{fit.fitted_max_feasible_macs / 1e6:.1f} M); {len(fit.excluded)} "
                      "values dropped (`--json` space.fit.excluded); --space full searches "
                      "them all")
    return table


def _population(args: argparse.Namespace, storage: optuna.storages.BaseStorage,
                n_trials: int | None) -> int:
    """--population, else what the study was created with, else the rule."""
    if args.population is not None:
        return args.population
    stored = _stored_config(storage, args.study) or {}
    return int(stored.get("population", population_for(n_trials)))


# The smallest corner of the full space: one narrowest block per stage at the smallest
# grayscale input, one map, no extras.
_SMALLEST = {"resolution": FULL_SPACE.resolution[0], "input_channels": 1, "n_extras": 0,
             "anchor_smin": 0.05, "anchor_smax": 0.6, "map0_ratios": "",
             **{f"s{i}_tap": "none" for i in (1, 2, 3)},
             **{f"s{i}_{k}": v for i in (1, 2, 3, 4)
                for k, v in (("width", FULL_SPACE.widths[i - 1][0]), ("depth", 1),
                             ("kernel", 3))}}


def _check_space_fits(target: Target, budgets: Budgets, latency_ms: float | None,
                      num_classes: int) -> None:
    """Refuse a budget no genome can meet, naming what the smallest genomes need."""
    found = []
    for head in ("ssdlite", "ssd"):
        for block in ("lb", "dlb", "dlb_skip"):
            params = {**_SMALLEST, "head": head, **{f"s{i}_block": block for i in range(1, 5)}}
            genome = sample_genome(optuna.trial.FixedTrial(params))
            found.append(assess(ModelSpec(num_classes, genome=genome), target, budgets,
                                latency_ms))
    if any(a.fits for a in found):
        return
    flash = min(a.estimate.flash_bytes for a in found)
    ram = min(a.estimate.ram_bytes for a in found)
    fast = min(a.estimate.latency.high_ms for a in found)
    wanted = f"flash {format_bytes(budgets.flash_bytes)}, RAM {format_bytes(budgets.ram_bytes)}"
    if latency_ms is not None:
        wanted += f", latency {latency_ms:g} ms"
    raise UsageError(f"no genome in the search space fits {wanted} on {target.label}: the "
                     f"smallest need about flash {format_bytes(flash)}, RAM "
                     f"{format_bytes(ram)}, latency {fast:.1f} ms (band high)")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """``kill PID`` ends a search like Ctrl-C: the running trial is marked, the rest kept."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (e.g. embedded): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _final_tally(plan: SearchPlan, result: RunResult) -> Tally:
    studies = result.studies
    return Tally.of(studies.main, studies.baselines,
                    n_trials=plan.n_trials, deadline=None, elapsed=result.seconds,
                    done_before=0)


def summary(plan: SearchPlan, result: RunResult, tally: Tally) -> dict[str, Any]:
    return {
        "study": plan.name, "storage": display_url(plan.storage_url), "trials": tally.done,
        "complete": tally.complete, "feasible": tally.feasible, "rejected": tally.rejected,
        "pruned": tally.pruned, "failed": tally.failed, "front": list(tally.front),
        "best_proxy": tally.best_proxy, "best_latency_ms": tally.best_latency_ms,
        "baselines": tally.baselines_done, "seconds": round(result.seconds, 2),
        "trials_per_s": round(result.ran / result.seconds, 3) if result.seconds > 0 else None,
        "interrupted": result.interrupted, "space": plan.config.space,
    }


def summary_table(row: dict[str, Any]) -> Table:
    table = Table(title=f"search {row['study']} ({row['storage']})", show_header=False,
                  box=box.SIMPLE_HEAD)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("trials", f"{row['trials']} ({row['complete']} complete, {row['pruned']} "
                  f"pruned, {row['failed']} failed)")
    table.add_row("feasible", f"{row['feasible']} ({row['rejected']} rejected by the budget)")
    table.add_row("Pareto front", ", ".join(str(n) for n in row["front"]) or "-")
    if row["best_proxy"] is not None:
        table.add_row("best proxy / latency", f"{row['best_proxy']:.4g} / "
                      f"{row['best_latency_ms']:.1f} ms")
    table.add_row("baselines evaluated", str(row["baselines"]))
    rate = f", {row['trials_per_s']:.2f} trials/s" if row["trials_per_s"] else ""
    table.add_row("time", f"{row['seconds']:.1f} s{rate}")
    return table


def _print_summary(out: Output, row: dict[str, Any]) -> None:
    out.console.print(summary_table(row))
    if row.get("train_top"):
        out.console.print(results_table(row["train_top"]))


def _verdict(row: dict[str, Any]) -> Text:
    if row["train_error"]:
        return Text("train failed", style="bold red")
    if row["export_error"]:
        return Text("export failed", style="bold red")
    if row["fits_measured"] is None:
        return Text("not exported", style="dim")
    return (Text("yes", style="green") if row["fits_measured"]
            else Text("VIOLATION", style="bold red"))


def results_table(rows: Sequence[dict[str, Any]]) -> Table:
    """Measured accuracy (float and int8), measured flash and TFLM arena, predicted latency
    and whether each model really fits."""
    table = Table(title="top-k: trained with the same recipe and time budget",
                  box=box.SIMPLE_HEAD,
                  caption="AP in %, on the val split; measured on the exported file: flash = "
                  ".tflite + runtime code, arena = TFLM arena, RAM = arena + runtime RAM, fits "
                  "= within the budgets; latency predicted on the board with its band")
    # Searched trials are "#N", baselines go by their names: no column needed to tell them.
    for col in ("model", "latency ms (band)", "AP50", "mAP", "int8 AP50", "int8 mAP", "flash",
                "arena", "RAM", "fits", "note"):
        table.add_column(col, justify="left" if col in ("model", "note") else "right",
                         no_wrap=col != "note")
    for r in rows:
        note = "; ".join(x for x in (r["train_error"], r["export_error"],
                                     *r["violations_measured"]) if x)
        table.add_row(r["name"], _band(r), ap(r["ap50"]), ap(r["map"]),
                      ap(r["int8_ap50"]), ap(r["int8_map"]), size(r["flash_bytes_measured"]),
                      size(r["tflm_arena_bytes"]), size(r["ram_bytes_measured"]), _verdict(r),
                      Text(note, style="red"))
    return table


def _band(r: dict[str, Any]) -> str:
    return latency_band(r["latency_ms"], r["latency_ms_low"], r["latency_ms_high"])


def _train_top(args: argparse.Namespace, out: Output, plan: SearchPlan,
               result: RunResult) -> list[dict[str, Any]]:
    # Imported here: the top-k step pulls in training and export, which a search without
    # --train-top never needs.
    from nas.search import finalize

    budget = _duration("--train-budget", args.train_budget or DEFAULT_TRAIN_BUDGET)
    return finalize.run_top_k(result.studies.main, result.studies.baselines, plan.config,
                              k=args.train_top, export=args.export, time_budget_s=budget,
                              runs_dir=plan.runs_dir,
                              console=None if args.quiet else out.notes)
