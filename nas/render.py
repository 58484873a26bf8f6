"""Rich tables for the human-readable output of the CLI (JSON output bypasses this)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from estimators.budgets import format_bytes
from estimators.estimate import Budgets
from estimators.targets import Target


def millions(n: int) -> str:
    return f"{n / 1e6:,.3f} M"


def compact(n: int) -> str:
    """12.3M / 456.7k / 89: narrow enough for an 80-column table."""
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    return f"{n / 1e3:.1f}k" if n >= 10_000 else str(n)


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


def latency_text(row: dict[str, Any]) -> str:
    return (f"{row['latency_ms']:,.1f} ms ({row['latency_ms_low']:,.1f}-"
            f"{row['latency_ms_high']:,.1f})")


def _verdict(row: dict[str, Any]) -> Text:
    return Text("yes", style="green") if row["fits"] else Text("no", style="bold red")


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
                      format_bytes(r["ram_bytes"]), latency_text(r), _verdict(r))
    return table


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
    table.add_row("fits", _verdict(row))
    for violation in row["violations"]:
        table.add_row(Text("violation", style="red"), Text(violation, style="red"))
    if "proxy" in row:  # estimate --proxy
        table.add_row(f"proxy {row['proxy_name']} ({row['proxy_seconds']:.2f} s)",
                      f"{row['proxy']:.6g}")
        for what, value in component_lines(row["proxy_components"]):
            table.add_row(what, value)
    return table


def component_lines(components: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A proxy's parts as table rows under its score (``estimate --proxy``, ``show``); the
    score itself is the row above them."""
    return [(f"  {key}", _component(value)) for key, value in (components or {}).items()
            if key != "score"]


def _component(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.4g}" if isinstance(value, float) else "-"
