"""``tinynas pareto`` and ``tinynas show``: read a search study, never change it.

``pareto`` prints the feasible Pareto front (and the seed baselines that fit, for comparison)
and writes ``pareto.png`` and ``pareto.html``; ``show`` prints one trial in full. Both open
the study with :func:`nas.search.storage.open_study`, so ``--storage`` takes any Optuna URL and
defaults to the SQLite file under ``--runs-dir``. The same storage opens in optuna-dashboard
(``optuna-dashboard sqlite:///runs/tinynas.db``), a separate install.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from rich import box
from rich.table import Table
from rich.text import Text

from estimators.budgets import format_bytes
from nas.cli.command import EXIT_OK, Command, Output, study_arguments
from nas.cli.formatting import ap, component_lines, fits_text, size
from nas.cli.formatting import latency_band as band
from nas.errors import UsageError
from nas.search import plots, trials
from nas.search.driver import BASELINES_SUFFIX
from nas.search.trials import TrialRow


def open_study(name: str, args: argparse.Namespace) -> optuna.Study:
    from nas.search.storage import open_study as open_named  # helper S: one way to open

    return open_named(name, args.storage, Path(args.runs_dir))


def baselines_study(args: argparse.Namespace) -> optuna.Study | None:
    """The sibling study of the seed baselines; None when the search recorded none."""
    try:
        return open_study(args.study + BASELINES_SUFFIX, args)
    except UsageError:
        return None


def latency_band(r: TrialRow) -> str:
    return band(r.latency_ms, r.latency_ms_low, r.latency_ms_high)


def _measured(r: TrialRow) -> tuple[str, str]:
    """(float AP50 after training, int8 AP50 of the exported file) or dashes."""
    trained, exported = r.trained or {}, r.exported or {}
    int8 = ap(exported.get("int8_ap50")) if exported else ("failed" if r.export_error else "-")
    return ("failed" if r.train_error else ap(trained.get("ap50"))), int8


def front_table(rows: Sequence[TrialRow], title: str, caption: str | None = None) -> Table:
    """The front (or the baselines): one line per trial, estimates and measured AP50."""
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD)
    for col in ("trial", "proxy", "latency ms (band)", "flash", "RAM", "MACs", "input", "head",
                "blocks", "fits", "AP50", "int8 AP50"):
        # Only the block mix may wrap: it is the one long free-text cell.
        table.add_column(col, justify="left" if col in ("trial", "head", "blocks") else "right",
                         no_wrap=col != "blocks")
    for r in rows:
        ap50, int8 = _measured(r)
        table.add_row(r.name, _proxy(r), latency_band(r), size(r.flash_bytes),
                      size(r.ram_bytes), "-" if r.macs is None else f"{r.macs / 1e6:.2f}M",
                      "-" if r.input_size is None else str(r.input_size), r.head or "-",
                      r.block_mix or "-", _fits_cell(r), ap50, int8)
    return table


def _fits_cell(r: TrialRow) -> Text:
    """Measured beats estimated: an exported model over budget is a violation, whatever the
    estimators said."""
    measured = (r.exported or {}).get("fits_measured")
    if measured is False:
        return Text("NO (measured)", style="bold red")
    if measured is True:
        return Text("yes (measured)", style="green")
    return fits_text(r.fits)


def trials_table(rows: Sequence[TrialRow]) -> Table:
    """Every trial with its state and why it failed, was pruned or was rejected."""
    table = Table(title="every trial", box=box.SIMPLE_HEAD)
    for col in ("trial", "state", "proxy", "latency ms (band)", "flash", "RAM", "fits",
                "reason"):
        table.add_column(col, justify="left" if col in ("trial", "state", "reason")
                         else "right", no_wrap=col != "reason")
    for r in rows:
        reason = r.fail_reason or r.rejected or r.train_error or r.export_error or ""
        table.add_row(r.name, r.state.lower(), _proxy(r), latency_band(r), size(r.flash_bytes),
                      size(r.ram_bytes), fits_text(r.fits), reason)
    return table


def _proxy(r: TrialRow) -> str:
    return "-" if r.proxy is None else f"{r.proxy:.4g}"


def _budget_text(every: Sequence[TrialRow]) -> str:
    """'flash 512.0 KiB, RAM 256.0 KiB' from the constraints (figure - budget)."""
    parts = []
    for key, label in (("flash", "flash"), ("ram", "RAM"), ("latency", "latency")):
        budget = next((b for b in (r.budget(key) for r in every) if b is not None), None)
        if budget is not None:
            parts.append(f"{label} {budget:.1f} ms" if key == "latency"
                         else f"{label} {format_bytes(round(budget))}")
    return ", ".join(parts) or "no budgets recorded"


def _counts(every: Sequence[TrialRow], front: Sequence[TrialRow]) -> str:
    states = [r.state for r in every]
    return (f"{len(every)} trials: {sum(r.feasible for r in every)} feasible, "
            f"{sum(r.fits is False for r in every)} rejected, {states.count('PRUNED')} pruned, "
            f"{states.count('FAIL')} failed; front {len(front)}")


class ParetoCommand(Command):
    name = "pareto"
    help = "the feasible Pareto front of a search study: a table, pareto.png and pareto.html"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        study_arguments(parser, default_study="search")
        parser.add_argument("--out", metavar="DIR",
                            help="where the plots go (default: RUNS_DIR/STUDY)")
        parser.add_argument("--all", action="store_true",
                            help="also list every trial with its state and reason")

    def run(self, args: argparse.Namespace, out: Output) -> int:
        study = open_study(args.study, args)
        front, every = trials.front(study), trials.rows(study)
        other = baselines_study(args)
        baselines = trials.rows(other) if other is not None else []
        title = f"study '{args.study}' ({_budget_text(every)})"
        out_dir = Path(args.out) if args.out else Path(args.runs_dir) / args.study
        data = plots.plot_data(f"{title}: {_counts(every, front)}", front, every, baselines)
        try:
            files = plots.write_plots(data, out_dir)
        except OSError as exc:
            raise UsageError(f"--out '{out_dir}': cannot write the plots ({exc.strerror})"
                             ) from None
        for key in ("png_error", "html_error"):
            if key in files:
                out.note(str(files[key]))
        result = {"study": args.study, "front": [r.to_dict() for r in front],
                  "baselines": [r.to_dict() for r in baselines],
                  "png": files["png"], "html": files["html"]}
        if args.all:
            result["trials"] = [r.to_dict() for r in every]
        out.show(result, lambda _: self._print(out, title, every, front, baselines, files,
                                               args.all))
        return EXIT_OK

    @staticmethod
    def _print(out: Output, title: str, every: Sequence[TrialRow], front: Sequence[TrialRow],
               baselines: Sequence[TrialRow], files: dict[str, str | None],
               detail: bool) -> None:
        console = out.console
        caption = ("latency predicted on the target with its band; flash/RAM estimated; "
                   "AP50 = trained float, int8 AP50 = exported file (in %)")
        console.print(front_table(front, f"Pareto front of {title}", caption))
        if not front:
            console.print("no feasible trial yet: every finished trial broke a budget or "
                          "failed (see --all)")
        if baselines:
            console.print(front_table(baselines, "seed baselines that fit (same proxy and "
                                      "budget)"))
        if detail:
            console.print(trials_table(every))
        console.print(_counts(every, front))
        written = [p for p in (files.get("png"), files.get("html")) if p]
        if written:
            console.print("wrote " + ", ".join(written))


class ShowCommand(Command):
    name = "show"
    help = "one trial of a search study: genome, estimates, constraints, results, files"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--trial", type=int, metavar="N", help="a trial number")
        which.add_argument("--baseline", metavar="NAME",
                           help="a seed baseline of the study (its STUDY:baselines trial)")
        study_arguments(parser, default_study="search")

    def run(self, args: argparse.Namespace, out: Output) -> int:
        study, trial = self._find(args)
        row = trials.row_of(study, trial)
        data = {"study": study.study_name, **row.to_dict(),
                "estimate": trials.json_safe(trial.user_attrs.get(trials.ESTIMATE)),
                "values": trials.json_safe(trial.values),
                "started": trial.datetime_start.isoformat() if trial.datetime_start else None,
                "duration_s": trial.duration.total_seconds() if trial.duration else None,
                "artefacts": artefacts(row)}
        out.show(data, lambda found: show_table(found, row))
        return EXIT_OK

    @staticmethod
    def _find(args: argparse.Namespace) -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
        if args.baseline is not None:
            name = args.study + BASELINES_SUFFIX
            study = baselines_study(args)
            found = trials.find_baseline(study, args.baseline) if study else None
            if study is None or found is None:
                names = trials.baseline_names(study) if study else []
                raise UsageError(f"--baseline {args.baseline}: study '{name}' records "
                                 + (f"only {', '.join(names)}" if names else "no baselines"))
            return study, found
        study = open_study(args.study, args)
        found = trials.find_trial(study, args.trial)
        if found is None:
            numbers = [t.number for t in study.get_trials(deepcopy=False)]
            raise UsageError(f"--trial {args.trial}: study '{args.study}' has no such trial; "
                             f"its trials are {trials.number_ranges(numbers)}")
        return study, found


def artefacts(row: TrialRow) -> dict[str, Any]:
    """The files the trial produced, each with whether it is still there."""
    paths = {"checkpoint": (row.trained or {}).get("checkpoint"),
             "export_dir": (row.exported or {}).get("out_dir")}
    return {k: {"path": p, "exists": Path(p).exists()} for k, p in paths.items()
            if isinstance(p, str)}


def _genome_text(genome: dict[str, Any] | None) -> str:
    return json.dumps(genome, separators=(",", ":")) if genome else "-"


def show_table(data: dict[str, Any], row: TrialRow) -> Table:
    table = Table(title=f"{row.name} of study '{data['study']}'", show_header=False,
                  box=box.SIMPLE_HEAD)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    est = data.get("estimate") or {}
    lines: list[tuple[str, Any]] = [
        ("state", row.state.lower()),
        ("proxy", "-" if row.proxy is None else f"{row.proxy:.6g}"),
        *component_lines(row.proxy_components),
        ("model", (row.spec or {}).get("baseline") or (row.spec or {}).get("name") or "-"),
        ("genome", _genome_text(row.genome)),
        ("input / head / blocks", f"{row.input_size or '-'} px / {row.head or '-'} / "
                                  f"{row.block_mix or '-'}"),
        ("params / MACs", f"{row.params or 0:,} / {(row.macs or 0) / 1e6:.2f} M"),
        ("latency ms (band)", latency_band(row)),
        ("flash (est.) / budget", _with_budget(row.flash_bytes, row.budget("flash"))),
        ("RAM (est.) / budget", _with_budget(row.ram_bytes, row.budget("ram"))),
        (".tflite / arena (est.)", f"{size(est.get('tflite_bytes_estimated'))} / "
                                   f"{size(est.get('arena_bytes_estimated'))}"),
        *_memory_lines(est),
        ("constraints", ", ".join(_margin(k, v) for k, v in row.constraints.items()) or "-"),
        ("fits", fits_text(row.fits)),
    ]
    lines += _reasons(row) + _results(row) + [
        (k, f"{a['path']}" + ("" if a["exists"] else " (gone)"))
        for k, a in data["artefacts"].items()]
    for what, value in lines:
        table.add_row(what, value)
    return table


_MEMORY_FIGURES = (("activations", "activation_ram"), ("runtime RAM", "runtime_ram"),
                   ("weights", "weights_flash"), ("code flash", "code_flash"))


def _memory_lines(est: dict[str, Any]) -> list[tuple[str, Any]]:
    """The runtime's four memory figures (point and band) the flash / RAM totals add at the
    high end; trials recorded before they were stored have none."""
    if "activation_ram_bytes" not in est:
        return []
    return [(f"{label} (band)", f"{size(est[f'{key}_bytes'])} "
             f"({size(est[f'{key}_bytes_low'])} - {size(est[f'{key}_bytes_high'])})")
            for label, key in _MEMORY_FIGURES] + [("memory model", est.get("memory_model"))]


def _margin(key: str, value: float) -> str:
    """A constraint (figure - budget) as the margin it leaves: '219.0 KiB under'."""
    amount = f"{abs(value):.1f} ms" if key == "latency" else format_bytes(round(abs(value)))
    return f"{key} {amount} {'under' if value <= 0 else 'OVER'}"


def _with_budget(figure: int | None, budget: float | None) -> str:
    if budget is None:
        return size(figure)
    return f"{size(figure)} / {format_bytes(round(budget))}"


def _reasons(row: TrialRow) -> list[tuple[str, Any]]:
    red = "bold red"
    found = [("rejected", row.rejected), ("fail reason", row.fail_reason),
             ("train error", row.train_error), ("export error", row.export_error)]
    return [(k, Text(v, style=red)) for k, v in found if v]


def _results(row: TrialRow) -> list[tuple[str, Any]]:
    lines: list[tuple[str, Any]] = []
    if row.trained:
        t = row.trained
        lines.append(("trained AP50 / mAP", f"{ap(t.get('ap50'))} / {ap(t.get('map'))} "
                      f"({t.get('epochs')} epochs, {t.get('wall_s', 0):.0f} s, stopped by "
                      f"{t.get('stopped_by')})"))
    if row.exported:
        e = row.exported
        lines += [
            ("int8 AP50 / mAP", f"{ap(e.get('int8_ap50'))} / {ap(e.get('int8_map'))}"),
            ("measured flash / RAM", f"{size(e.get('flash_bytes_measured'))} / "
                                     f"{size(e.get('ram_bytes_measured'))} (.tflite "
                                     f"{size(e.get('tflite_bytes'))}, TFLM arena "
                                     f"{size(e.get('tflm_arena_bytes'))})"),
            ("fits (measured)", fits_text(e.get("fits_measured"))),
        ]
        lines += [("violation", Text(v, style="bold red"))
                  for v in e.get("violations_measured") or ()]
    return lines
