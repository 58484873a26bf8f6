"""``tinynas targets``: the boards, their memory, default budgets and runtimes, and how far
each runtime's latency and memory figures can be trusted."""

from __future__ import annotations

import argparse
from typing import Any

from rich import box
from rich.table import Table

from estimators.budgets import format_bytes
from estimators.targets import Target, list_targets
from nas.cli.command import EXIT_OK, Command, Output


class TargetsCommand(Command):
    name = "targets"
    help = "list the boards, their memory, default budgets and runtimes"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace, out: Output) -> int:
        out.show([target_row(t) for t in list_targets()], targets_table)
        return EXIT_OK


def latency_calibration(target: Target) -> list[dict[str, Any]]:
    """How each runtime's latency prediction was obtained and how far to trust it."""
    from estimators.latency import LatencyModelError, environment_check, models_for

    found = []
    for runtime in target.runtimes:
        chosen = target.with_runtime(runtime.name)
        try:
            host, model = models_for(chosen)
        except LatencyModelError as exc:
            found.append({"runtime": runtime.name, "error": str(exc)})
            continue
        machine = environment_check(chosen)  # host targets: is this the fitted machine?
        found.append({"runtime": runtime.name, "rows": model.rows, "thin_data": model.thin,
                      "error_low": model.error_range[0], "error_high": model.error_range[1],
                      "clock_mhz": model.clock_mhz, "method": model.method,
                      "kind_ranges": None if model.kind_ranges is None else
                      {k: list(r) for k, r in model.kind_ranges.items()},
                      "environment": host.environment,
                      "environment_match": True if machine is None else machine.match})
    return found


_TFLM_MEMORY = {
    "activation_ram": ("estimated", "TFLM arena plan (greedy planner + persistent tail at the "
                       "target's pointer size); measured by the real interpreter for a .tflite"),
    "weights_flash": ("estimated", "the .tflite file (within 0.15% of 45 real exports); "
                      "measured (the file's size) for a .tflite"),
    "code_flash": ("derived", "the runtime's code size from published builds"),
    "runtime_ram": ("derived", "the runtime's fixed RAM from published builds"),
}


def memory_provenance(target: Target) -> list[dict[str, Any]]:
    """Per runtime: how each memory figure is obtained and, where modelled, its error range."""
    from estimators.estimate import XCUBEAI_RUNTIME
    from estimators.xcubeai import FIGURES, model_for

    found = []
    for runtime in target.runtimes:
        if runtime.name == XCUBEAI_RUNTIME:
            model = model_for()
            figures = {f: {"how": "exact" if f == "weights_flash" else "modelled",
                           "method": f"X-CUBE-AI model ({model.version}), "
                                     f"{model.rows} published runs",
                           "error_low": model.errors[f][0], "error_high": model.errors[f][1]}
                       for f in FIGURES}
        else:
            figures = {f: {"how": how, "method": method} for f, (how, method)
                       in _TFLM_MEMORY.items()}
        found.append({"runtime": runtime.name, **figures})
    return found


def target_row(target: Target) -> dict[str, Any]:
    return {
        "name": target.name,
        "board": target.board,
        "core": target.core,
        "clock_mhz": target.clock_mhz,
        "sram_bytes": target.sram_bytes,
        "flash_bytes": target.flash_bytes,
        "default_ram_budget": target.default_ram_budget,
        "default_flash_budget": target.default_flash_budget,
        "runtime": target.runtime.name,
        "runtimes": [r.name for r in target.runtimes],
        "runtime_code_flash_bytes": target.runtime.code_flash_bytes,
        "runtime_ram_bytes": target.runtime.ram_bytes,
        "budget_reasoning": target.budget_reasoning,
        "notes": target.notes,
        "latency": latency_calibration(target),
        "memory": memory_provenance(target),
    }


def _trust(calibrations: list[dict[str, Any]]) -> str:
    """The default runtime's latency trust in a few words: runs behind it and its band."""
    first = calibrations[0]
    if "error" in first:
        return "none"
    count = first["rows"]
    rows = f"{count} run{'s' if count != 1 else ''}" if count else "derived"
    thin = ", THIN" if first["thin_data"] else ""
    other = "" if first.get("environment_match", True) else ", OTHER MACHINE"
    return f"{rows}, {first['error_low']:+.0%}/{first['error_high']:+.0%}{thin}{other}"


def targets_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Targets", box=box.SIMPLE_HEAD,
                  caption="budgets cover model + runtime; --json gives the board, runtime "
                  "overheads and the reasoning behind each default")
    for col in ("target", "clock", "SRAM", "flash", "RAM budget", "flash budget", "runtimes",
                "latency calibration", "memory (default runtime)"):
        table.add_column(col, justify="right" if col in ("clock", "SRAM", "flash") or
                         col.endswith("budget") else "left", no_wrap=col == "target")
    for r in rows:
        runtimes = ", ".join(r["runtimes"])  # the default runtime is listed first
        table.add_row(r["name"], f"{r['clock_mhz']} MHz", format_bytes(r["sram_bytes"]),
                      format_bytes(r["flash_bytes"]), format_bytes(r["default_ram_budget"]),
                      format_bytes(r["default_flash_budget"]), runtimes, _trust(r["latency"]),
                      _memory_trust(r["memory"][0]))
    return table


def _memory_trust(memory: dict[str, Any]) -> str:
    act = memory["activation_ram"]
    if act["how"] != "modelled":
        return "TFLM arena plan"
    return (f"X-CUBE-AI model, activations {act['error_low']:+.0%}/{act['error_high']:+.0%}, "
            "weights exact")

