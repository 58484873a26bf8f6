"""``tinynas baselines``: the baseline networks with their size and cost on a target."""

from __future__ import annotations

import argparse
from typing import Any

from rich import box
from rich.table import Table

from estimators.budgets import format_bytes
from estimators.estimate import Budgets
from estimators.targets import Target
from nas.cli.command import EXIT_OK, Command, Output, resolve_target, target_arguments
from nas.cli.estimate_row import model_row
from nas.cli.formatting import compact, fits_text, latency_text
from search_space.baselines import get_baseline, list_baselines


class BaselinesCommand(Command):
    name = "baselines"
    help = "list the baseline networks with their size and cost on a target"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        target_arguments(parser, required=False)

    def run(self, args: argparse.Namespace, out: Output) -> int:
        target, budgets = resolve_target(args, out)
        rows = [model_row(get_baseline(b.name), target, budgets) for b in list_baselines()]
        out.show(rows, lambda found: models_table(found, target, budgets))
        return EXIT_OK


def models_table(rows: list[dict[str, Any]], target: Target, budgets: Budgets) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"Baselines on {target.label} ({target.runtime.label}); budget flash "
              f"{format_bytes(budgets.flash_bytes)}, RAM {format_bytes(budgets.ram_bytes)}",
        caption="flash = weights + code, RAM = activations + runtime RAM, each at its band's "
                "high end (TFLM: .tflite file and arena plan; xcubeai: the X-CUBE-AI model); "
                f"latency predicted at {target.clock_mhz} MHz with its band; all estimated. "
                "Priors '-' = classifier.",
    )
    for col in ("name", "input", "priors", "params", "MACs", "flash", "RAM", "latency",
                "fits"):
        table.add_column(col, justify="left" if col == "name" else "right", no_wrap=True)
    for r in rows:
        c, h, w = r["input_shape"]
        table.add_row(r["name"], f"{h}x{w}x{c}", str(r["num_priors"] or "-"),
                      compact(r["params"]), compact(r["macs"]), format_bytes(r["flash_bytes"]),
                      format_bytes(r["ram_bytes"]), latency_text(r), fits_text(r["fits"]))
    return table
