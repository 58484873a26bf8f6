"""The X-CUBE-AI / STEdgeAI memory model against ST's published runs."""

from __future__ import annotations

import csv
import dataclasses

import pytest

from estimators.deploy import deployed
from estimators.estimate import Budgets, estimate
from estimators.ir import GraphBuilder
from estimators.ram import arena_plan
from estimators.targets import get_target
from estimators.xcubeai import (
    DATA_PATH,
    DEFAULT_VERSION,
    FIGURES,
    VERSIONS,
    Features,
    XCubeAIModelError,
    activation_peak,
    layers,
    model_for,
    weights_bytes,
    xcubeai_memory,
)
from estimators.xcubeai_fit import Run, fit
from search_space.baselines import baseline_for_row, get_baseline

KIB = 1024
COLUMNS = {"activation_ram": "activation_ram_kib", "weights_flash": "weights_flash_kib",
           "code_flash": "code_flash_kib", "runtime_ram": "runtime_ram_kib"}


def published(version: str) -> list[tuple[str, dict[str, float]]]:
    with (DATA_PATH.parent / "published_device_runs.csv").open(newline="") as handle:
        return [(baseline_for_row(r), {f: float(r[c]) * KIB for f, c in COLUMNS.items()})
                for r in csv.DictReader(handle)
                if r["toolchain"] == version and r["activation_ram_kib"]]


def test_weights_are_exact_on_every_published_row():
    for version in VERSIONS:
        for name, figures in published(version):
            graph = deployed(get_baseline(name).graph)
            assert abs(weights_bytes(graph) - figures["weights_flash"]) <= 0.01 * KIB, name


@pytest.mark.parametrize("version", VERSIONS)
def test_every_published_row_lies_in_its_band(version):
    """The band is the leave-one-out error range, so the fitted model's own prediction of
    every row it was fitted on must fall inside it too (the truth inside [low, high])."""
    for name, figures in published(version):
        mem = xcubeai_memory(deployed(get_baseline(name).graph), version)
        for f in FIGURES:
            fig = getattr(mem, f)
            assert fig.low <= figures[f] * 1.0001 and figures[f] <= fig.high * 1.0001, (name, f)


def test_default_version_activations_far_below_tflm_arena():
    # The example: TFLM's greedy arena was 35-50% above ST's activations figure;
    # the offline plan narrows the gap, but X-CUBE-AI's overlapping buffers stay below it.
    graph = deployed(get_baseline("mbv1-0.25-224-c5").graph)
    mem = xcubeai_memory(graph)
    assert mem.version == DEFAULT_VERSION
    assert mem.activation_ram.high < 0.8 * arena_plan(graph, offline=False).total_bytes
    assert mem.activation_ram.high < arena_plan(graph).total_bytes
    assert mem.activation_ram.bytes == pytest.approx(271.04 * KIB, rel=0.05)


def test_shipped_coefficients_are_what_the_fit_gives():
    """The JSON is the fit of the published rows (scripts/bench_xcubeai.py --write)."""
    version = DEFAULT_VERSION
    runs = [Run(n, Features.of(deployed(get_baseline(n).graph)), f) for n, f in published(version)]
    fitted, predictions = fit(version, runs)
    shipped = model_for(version)
    for field in ("overlap_depthwise", "overlap_pointwise", "activation_scale",
                  "activation_offset", "code_base", "runtime_ram_base"):
        assert getattr(shipped, field) == pytest.approx(getattr(fitted, field), rel=1e-6,
                                                        abs=1e-6), field
    for f in FIGURES:
        assert shipped.errors[f] == pytest.approx(fitted.errors[f]), f
    assert len(predictions) == len(runs) * len(FIGURES)


def test_pad_and_reshape_own_no_buffer():
    """X-CUBE-AI folds a PAD into the conv that reads it: the plan is the same with or without
    the explicit PAD (what issue 15's PAD-free export changes)."""
    def net(explicit_pad: bool):
        b = GraphBuilder()
        x = b.input((1, 8, 33, 33))  # odd: the plain conv needs no PAD (TF SAME)
        if explicit_pad:
            x = b.pad(x, (1, 1, 1, 1))
            x = b.conv(x, 16, 3, stride=2, padding=0)
        else:
            x = b.conv(x, 16, 3, stride=2, padding=1)
        x = b.act(b.bn(x))
        return deployed(b.finish([x]))

    padded, plain = net(True), net(False)
    assert "PAD" in padded.kinds and "PAD" not in plain.kinds
    assert activation_peak(layers(padded), 1, 1) == activation_peak(layers(plain), 1, 1)


def test_overlap_lowers_the_peak_of_a_dying_input():
    graph = deployed(get_baseline("mbv1-0.25-96-c5").graph)
    plan = layers(graph)
    assert activation_peak(plan, 1, 1) < activation_peak(plan, 0, 0)
    # The input is a buffer of the plan (allocated in the activations).
    assert activation_peak(plan, 1, 1) >= graph.nbytes(graph.inputs[0])


def test_estimate_checks_budgets_at_the_high_end_for_xcubeai_only():
    arch = get_baseline("mbv1-0.25-224-c5")
    h7 = estimate(arch.graph, get_target("stm32h7"))
    assert h7.memory_model.startswith("X-CUBE-AI")
    m = h7.memory
    assert h7.ram_bytes == m["activation_ram"].high + m["runtime_ram"].high
    assert h7.flash_bytes == m["weights_flash"].high + m["code_flash"].high
    row = h7.to_dict()
    for f in FIGURES:
        assert row[f"{f}_bytes_low"] <= row[f"{f}_bytes"] <= row[f"{f}_bytes_high"]
    # TFLM runtimes keep the arena plan: the figures are the old totals' parts, exactly.
    cmsis = estimate(arch.graph, get_target("stm32h7").with_runtime("tflm-cmsis-nn"))
    runtime = get_target("stm32h7").with_runtime("tflm-cmsis-nn").runtime
    assert cmsis.ram_bytes == cmsis.arena_bytes_estimated + runtime.ram_bytes
    assert cmsis.flash_bytes == cmsis.tflite_bytes_estimated + runtime.code_flash_bytes
    assert cmsis.memory["activation_ram"].low == cmsis.memory["activation_ram"].high
    # A budget between the point estimate and the high end is refused: "fits for sure".
    tight = Budgets(10 << 20, m["activation_ram"].bytes + m["runtime_ram"].high)
    assert not estimate(arch.graph, get_target("stm32h7"), tight).fits


def test_unknown_version_and_bad_record_are_refused():
    with pytest.raises(XCubeAIModelError, match="fitted versions"):
        model_for("STM32Cube.AI 7.3.0")
    bad = dataclasses.asdict(model_for())
    bad["errors"] = {"activation_ram": (0.1, -0.1)}
    with pytest.raises(XCubeAIModelError):
        type(model_for()).from_dict(bad)
