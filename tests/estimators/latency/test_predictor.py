"""The shipped latency predictor: it loads, covers every target and runtime, is fast, scales
with the clock, and ``estimate()`` reports it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from estimators.deploy import deployed
from estimators.estimate import estimate
from estimators.latency import Latency, models_for, predict_latency
from estimators.latency.features import FEATURES, graph_features, kernels
from estimators.latency.predictor import (
    GROUP_NAMES,
    HostModel,
    LatencyModel,
    LatencyModelError,
    band,
    shipped_board_models,
    shipped_host_models,
)
from estimators.targets import TargetError, get_target, list_targets
from search_space.baselines import get_baseline
from search_space.model import lower
from search_space.sampling import random_genomes

PAIRS = [(t.name, r) for t in list_targets() for r in t.runtime_names]
HOST_TARGETS = [t.name for t in list_targets() if t.name.startswith("host-")]


@pytest.fixture(scope="module")
def genome_graph():
    return deployed(lower(random_genomes(1, seed=3)[0], 20).graph)


@pytest.fixture(scope="module")
def seed_graph():
    return deployed(get_baseline("etn-w1.0-ssdlite").graph)


# -- the shipped files --------------------------------------------------------------------


def test_shipped_host_models_load():
    hosts = shipped_host_models()
    assert set(hosts) >= {"litert", "tflm"}
    for name, host in hosts.items():
        assert host.runtime == name
        assert len(host.coefficients) == len(FEATURES)
        assert all(c >= 0 for c in host.coefficients)
        assert -1 < host.error_range[0] <= host.error_range[1]
        assert host.environment.get("cpu")


def test_shipped_board_models_load_and_name_their_basis():
    boards = shipped_board_models()
    hosts = shipped_host_models()
    assert boards
    for (target, runtime), model in boards.items():
        assert (model.target, model.runtime) == (target, runtime)
        assert model.basis in hosts
        assert set(model.weights) == set(GROUP_NAMES)
        assert model.fixed_ms >= 0 and model.clock_mhz > 0
        assert -1 < model.error_range[0] <= model.error_range[1]
        assert model.method.strip()


def test_stm32h7_default_runtime_is_fitted_on_board_runs_and_esp32_is_thin():
    boards = shipped_board_models()
    h7 = boards[("stm32h7", get_target("stm32h7").runtime.name)]
    assert h7.rows >= 8 and not h7.thin and h7.clock_mhz == 400
    esp32 = boards[("esp32", get_target("esp32").runtime.name)]
    assert esp32.thin


@pytest.mark.parametrize(("name", "runtime"), PAIRS)
def test_every_target_and_runtime_predicts(name, runtime, genome_graph):
    target = get_target(name).with_runtime(runtime)
    host, model = models_for(target)
    assert isinstance(host, HostModel) and isinstance(model, LatencyModel)
    assert model.runtime == runtime and host.runtime == model.basis
    latency = predict_latency(genome_graph, target)
    assert isinstance(latency, Latency)
    assert latency.ms > 0 and np.isfinite(latency.ms)
    assert 0 < latency.low_ms <= latency.ms <= latency.high_ms
    assert (latency.target, latency.runtime) == (name, runtime)
    assert latency.clock_mhz == (target.clock_mhz if model.clock_scaling else model.clock_mhz)


def test_kernels_and_deployed_graph_predict_the_same(genome_graph):
    target = get_target("stm32h7")
    assert predict_latency(kernels(genome_graph), target) == predict_latency(genome_graph, target)


def test_a_bigger_network_is_slower(genome_graph):
    target = get_target("stm32h7")
    small = predict_latency(deployed(get_baseline("etn-w0.35-ssdlite").graph), target)
    big = predict_latency(deployed(get_baseline("etn-w1.0-ssdlite").graph), target)
    assert big.ms > 2 * small.ms


@pytest.mark.parametrize("name", ["stm32h7", "esp32s3", "host-tflm"])
def test_prediction_takes_well_under_5_ms(name, genome_graph, seed_graph):
    target = get_target(name)
    for graph in (genome_graph, seed_graph):
        predict_latency(graph, target)  # shipped files read once
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(50):
                predict_latency(graph, target)
            best = min(best, (time.perf_counter() - start) / 50 * 1e3)
        assert best < 5.0, f"{best:.2f} ms per prediction"


# -- clock ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["stm32h7", "esp32", "esp32s3"])
def test_doubling_the_clock_halves_a_board_prediction(name, genome_graph):
    target = get_target(name)
    base = predict_latency(genome_graph, target)
    fast = predict_latency(genome_graph, target.with_clock(2 * target.clock_mhz))
    assert fast.ms == pytest.approx(base.ms / 2)
    assert fast.low_ms == pytest.approx(base.low_ms / 2)
    assert fast.high_ms == pytest.approx(base.high_ms / 2)
    assert fast.clock_mhz == 2 * target.clock_mhz


def test_480_mhz_is_faster_than_400(genome_graph):
    h7 = get_target("stm32h7")
    assert predict_latency(genome_graph, h7.with_clock(480)).ms == pytest.approx(
        predict_latency(genome_graph, h7).ms * 400 / 480)


@pytest.mark.parametrize("name", HOST_TARGETS)
def test_host_targets_ignore_the_clock(name, genome_graph):
    target = get_target(name)
    base = predict_latency(genome_graph, target)
    for mhz in (100, 2 * target.clock_mhz):
        assert predict_latency(genome_graph, target.with_clock(mhz)) == base


def test_with_clock_rejects_a_bad_clock():
    for bad in (0, -400, 480.0, True):
        with pytest.raises(TargetError):
            get_target("stm32h7").with_clock(bad)


# -- model records -----------------------------------------------------------------------------


def test_band_turns_the_error_range_around():
    # prediction = truth x (1 + e): e = +25% means the truth is 100 / 1.25 = 80.
    assert band(100.0, (-0.2, 0.25)) == (pytest.approx(80.0), pytest.approx(125.0))
    assert band(100.0, (0.0, 0.0)) == (100.0, 100.0)


def test_latency_model_round_trips_through_its_dict():
    model = next(iter(shipped_board_models().values()))
    assert LatencyModel.from_dict(model.to_dict()) == model
    host = shipped_host_models()["tflm"]
    assert HostModel.from_dict(host.to_dict()) == host


def test_latency_model_rejects_bad_records():
    good = {"target": "stm32h7", "runtime": "xcubeai", "basis": "tflm",
            "weights": {"conv": 1.0, "depthwise": 1.0, "other": 1.0}, "fixed_ms": 0.0,
            "clock_mhz": 400, "error_range": [-0.1, 0.1], "rows": 3, "thin": True,
            "method": "m"}
    assert LatencyModel.from_dict(good).clock_scaling
    for change in ({"weights": {"conv": 1.0}}, {"error_range": [0.2, -0.2]},
                   {"error_range": [-1.0, 0.1]}, {"clock_mhz": 0},
                   {"weights": {"conv": -1.0, "depthwise": 1.0, "other": 1.0}}):
        with pytest.raises(LatencyModelError):
            LatencyModel.from_dict({**good, **change})
    with pytest.raises(LatencyModelError):
        LatencyModel.from_dict({k: v for k, v in good.items() if k != "basis"})


def test_host_model_needs_every_coefficient():
    with pytest.raises(LatencyModelError):
        HostModel("tflm", (1.0,) * (len(FEATURES) - 1), (-0.1, 0.1))
    data = shipped_host_models()["tflm"].to_dict()
    del data["coefficients"]["invoke"]
    with pytest.raises(LatencyModelError, match="invoke"):
        HostModel.from_dict(data)


# -- estimate() --------------------------------------------------------------------------------


def test_estimate_carries_the_latency():
    arch = lower(random_genomes(1, seed=4)[0], 3)
    target = get_target("stm32h7").with_clock(480)
    est = estimate(arch.graph, target)
    expected = predict_latency(deployed(arch.graph), target)
    assert est.latency == expected
    row = est.to_dict()
    assert row["latency_ms"] == expected.ms
    assert row["latency_ms_low"] <= row["latency_ms"] <= row["latency_ms_high"]
    assert row["latency_clock_mhz"] == 480
    assert "latency" not in row
    assert graph_features(deployed(arch.graph)).shape == (len(FEATURES),)
