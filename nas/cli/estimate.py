"""``tinynas estimate``: params, MACs, flash, RAM and latency of one model (a baseline, a
genome file, or a full-int8 ``.tflite``: :mod:`nas.cli.estimate_tflite`) against a target's
budget, optionally scored by an accuracy proxy (``--proxy``: :mod:`nas.cli.estimate_proxy`).
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table
from rich.text import Text

from estimators.budgets import format_bytes
from estimators.targets import Target
from nas.cli.command import (
    EXIT_DOES_NOT_FIT,
    EXIT_OK,
    Command,
    Output,
    resolve_target,
    target_arguments,
)
from nas.cli.estimate_proxy import proxy_arguments, proxy_request, scored_row
from nas.cli.estimate_row import model_row
from nas.cli.estimate_tflite import is_tflite_path, tflite_row
from nas.cli.formatting import component_lines, fits_text, latency_text, millions
from nas.cli.specs import resolve_model
from nas.errors import UsageError


class EstimateCommand(Command):
    name = "estimate"
    help = "estimate params, MACs, flash and RAM of one model and check it against a budget"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("baseline", nargs="?",
                            help="a baseline name (see `baselines`) or a full-int8 MODEL.tflite")
        parser.add_argument("--genome", help="a genome JSON file instead of a baseline")
        parser.add_argument("--num-classes", type=int,
                            help="foreground classes of a --genome detector (default 20; with "
                            "--proxy: the data's)")
        target_arguments(parser, required=True)
        proxy_arguments(parser)

    def run(self, args: argparse.Namespace, out: Output) -> int:
        scoring = proxy_request(args)  # --proxy and its data flags, before anything is read
        if scoring is not None:
            target, budgets = resolve_target(args, out)
            row = scored_row(args, out, scoring, target, budgets)
        elif is_tflite_path(args.baseline):
            if args.genome or args.num_classes is not None:
                raise UsageError("a .tflite file is estimated as it is: drop --genome and "
                                 "--num-classes")
            target, budgets = resolve_target(args, out)
            row = tflite_row(args.baseline, target, budgets)
        else:
            arch = resolve_model(args.baseline, args.genome, args.num_classes)
            target, budgets = resolve_target(args, out)
            row = model_row(arch, target, budgets)
        out.show(row, lambda found: estimate_panel(found, target))
        return EXIT_OK if row["fits"] else EXIT_DOES_NOT_FIT


_FIGURE_LABELS = (("activations RAM", "activation_ram"), ("weights flash", "weights_flash"),
                  ("code flash", "code_flash"), ("runtime RAM", "runtime_ram"))


def _figure(row: dict[str, Any], key: str) -> str:
    value, low, high = (row[f"{key}_bytes{s}"] for s in ("", "_low", "_high"))
    if low == high:
        return format_bytes(value)
    return f"{format_bytes(value)} ({format_bytes(low)}-{format_bytes(high)})"


def estimate_panel(row: dict[str, Any], target: Target) -> Table:
    table = Table(title=f"{row['name']} on {target.label} ({target.runtime.label})",
                  show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    c, h, w = row["input_shape"]
    from_file = row.get("model_file") is not None
    lines = [("input", f"{h}x{w}x{c}")]
    if from_file:
        lines += [("file", row["model_file"]), ("params", f"{row['params']:,}"),
                  ("MACs (conv/FC)", millions(row["macs"])),
                  ("model .tflite", format_bytes(row["tflite_bytes_estimated"])),
                  ("TFLM arena (measured, board tail)", format_bytes(row["arena_bytes_estimated"]))]
    else:
        lines += [
            ("classes", str(row["num_classes"])),
            ("priors", str(row["num_priors"])),
            ("params (backbone)", f"{row['params']:,} ({row['backbone_params']:,})"),
            ("MACs, deployed (conv/FC, BN folded)", millions(row["macs"])),
            ("MACs, seed convention (backbone)", f"{millions(row['macs_seed_convention'])} "
             f"({millions(row['backbone_macs_seed_convention'])})"),
            ("model .tflite (est.)", format_bytes(row["tflite_bytes_estimated"])),
            ("TFLM arena (est.)", format_bytes(row["arena_bytes_estimated"])),
        ]
    lines += [(f"{label} ({row['memory_model']})" if i == 0 else label, _figure(row, key))
              for i, (label, key) in enumerate(_FIGURE_LABELS)]
    lines += [
        ("flash total / budget", f"{format_bytes(row['flash_bytes'])} / "
         f"{format_bytes(row['flash_budget'])}"),
        ("RAM total / budget", f"{format_bytes(row['ram_bytes'])} / "
         f"{format_bytes(row['ram_budget'])}"),
        (f"latency at {row['latency_clock_mhz']} MHz (band)", latency_text(row)),
    ]
    if row["latency_thin_data"]:
        lines.append(("latency note", "thin calibration data: check on your board"))
    for what, value in lines:
        table.add_row(what, value)
    table.add_row("fits", fits_text(row["fits"]))
    for violation in row["violations"]:
        table.add_row(Text("violation", style="red"), Text(violation, style="red"))
    if "proxy" in row:  # estimate --proxy
        table.add_row(f"proxy {row['proxy_name']} ({row['proxy_seconds']:.2f} s)",
                      f"{row['proxy']:.6g}")
        for what, value in component_lines(row["proxy_components"]):
            table.add_row(what, value)
    return table
