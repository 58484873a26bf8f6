"""One call that scores a lowered graph for a target: size, cost and whether it fits.

Memory comes in four figures, each with a band (``Figure``): activations RAM, weights (model)
flash, code flash and runtime RAM. For TFLite Micro runtimes they are the estimated TFLM arena
(activations planned greedily + persistent tail, 32- or 64-bit as the target), the estimated
.tflite file, and the runtime's fixed code and RAM. For X-CUBE-AI (``xcubeai``) they are
the X-CUBE-AI memory model's (:mod:`estimators.xcubeai`, fitted on ST's published runs).
Flash = weights + code and RAM = activations + runtime RAM, each at its band's **high** end,
are compared with the budgets (the target's defaults unless the user gives others): a model
that passes fits within the errors the model showed. Latency is the calibrated prediction for
the target's runtime and clock, with its band.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from estimators.budgets import format_bytes
from estimators.counting import macs, macs_seed, params
from estimators.deploy import DeployedGraph, deployed
from estimators.flash import tflite_bytes
from estimators.ir import Graph
from estimators.latency import Latency, predict_latency
from estimators.ram import TAIL_HOST64, TAIL_MCU32, arena_plan
from estimators.targets import Target
from estimators.xcubeai import FIGURES, Figure, figures_dict, xcubeai_memory

XCUBEAI_RUNTIME = "xcubeai"
TFLM_MEMORY_MODEL = "TFLite Micro arena plan"


@dataclass(frozen=True)
class Budgets:
    flash_bytes: int
    ram_bytes: int

    @classmethod
    def for_target(cls, target: Target, flash: int | None = None, ram: int | None = None
                   ) -> Budgets:
        return cls(target.default_flash_budget if flash is None else flash,
                   target.default_ram_budget if ram is None else ram)


@dataclass(frozen=True)
class Estimate:
    params: int
    macs: int
    macs_seed_convention: int
    backbone_params: int
    backbone_macs_seed_convention: int
    tflite_bytes_estimated: int
    arena_bytes_estimated: int
    flash_bytes: int
    ram_bytes: int
    target: str
    runtime: str
    flash_budget: int
    ram_budget: int
    violations: tuple[str, ...]
    latency: Latency
    memory: dict[str, Figure]
    memory_model: str

    @property
    def fits(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("latency", "memory"):
            data.pop(key)
        data["violations"] = list(self.violations)
        data["fits"] = self.fits
        return {**data, **figures_dict(self.memory), **self.latency.to_dict()}


def exact(value: int) -> Figure:
    return Figure(value, value, value)


def memory_figures(dep: DeployedGraph, target: Target, model_bytes: int, arena_bytes: int
                   ) -> tuple[dict[str, Figure], str]:
    """The four memory figures of ``dep`` on ``target`` and the name of the model behind them.
    ``model_bytes`` / ``arena_bytes`` are the .tflite size and TFLM arena (estimated or measured),
    used for TFLM runtimes."""
    if target.runtime.name == XCUBEAI_RUNTIME:
        mem = xcubeai_memory(dep)
        return {f: getattr(mem, f) for f in FIGURES}, f"X-CUBE-AI model ({mem.version})"
    return {"activation_ram": exact(arena_bytes), "weights_flash": exact(model_bytes),
            "code_flash": exact(target.runtime.code_flash_bytes),
            "runtime_ram": exact(target.runtime.ram_bytes)}, TFLM_MEMORY_MODEL


def totals(memory: dict[str, Figure]) -> tuple[int, int]:
    """(flash, RAM) a budget is checked against: the high ends of the bands."""
    return (memory["weights_flash"].high + memory["code_flash"].high,
            memory["activation_ram"].high + memory["runtime_ram"].high)


def violations(flash: int, ram: int, budgets: Budgets) -> tuple[str, ...]:
    found = []
    if flash > budgets.flash_bytes:
        found.append(f"flash {format_bytes(flash)} > budget {format_bytes(budgets.flash_bytes)}")
    if ram > budgets.ram_bytes:
        found.append(f"ram {format_bytes(ram)} > budget {format_bytes(budgets.ram_bytes)}")
    return tuple(found)


def estimate(graph: Graph, target: Target, budgets: Budgets | None = None,
             backbone_scope: str = "backbone") -> Estimate:
    budgets = budgets or Budgets.for_target(target)
    dep = deployed(graph)
    model_flash = tflite_bytes(dep)
    tail = TAIL_HOST64 if target.pointer_bytes == 8 else TAIL_MCU32
    arena = arena_plan(dep, tail=tail).total_bytes
    memory, memory_model = memory_figures(dep, target, model_flash, arena)
    flash, ram = totals(memory)
    return Estimate(
        params=params(graph), macs=macs(graph), macs_seed_convention=macs_seed(graph),
        backbone_params=params(graph, backbone_scope),
        backbone_macs_seed_convention=macs_seed(graph, backbone_scope),
        tflite_bytes_estimated=model_flash, arena_bytes_estimated=arena,
        flash_bytes=flash, ram_bytes=ram, target=target.label, runtime=target.runtime.name,
        flash_budget=budgets.flash_bytes, ram_budget=budgets.ram_bytes,
        violations=violations(flash, ram, budgets), latency=predict_latency(dep, target),
        memory=memory, memory_model=memory_model,
    )
