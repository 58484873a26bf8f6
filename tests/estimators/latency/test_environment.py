"""Host latency on another machine: the fitted machine against this one, with a faked
environment (match, mismatch, a saved profile of this machine)."""

from __future__ import annotations

import pytest

from estimators.deploy import deployed
from estimators.latency import (
    OTHER_MACHINE_FACTOR,
    environment_check,
    models_for,
    predict_latency,
    shipped_host_models,
)
from estimators.latency import environment as env
from estimators.latency.fit import host_identity, scale_host
from estimators.latency.profiles import Profile, matching_host_profile, save_profile
from estimators.targets import get_target
from search_space.baselines import get_baseline

FITTED = shipped_host_models()["tflm"].environment
XEON = {**FITTED, "cpu": "Intel(R) Xeon(R) CPU @ 2.20GHz", "clock_mhz": 2200}


@pytest.fixture(autouse=True)
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYNAS_CONFIG", str(tmp_path / "config"))


def fake_machine(monkeypatch: pytest.MonkeyPatch, record: dict) -> None:
    monkeypatch.setattr(env, "this_machine", lambda: dict(record))


@pytest.fixture(scope="module")
def graph():
    return deployed(get_baseline("person-det-mbv1-0.25-96x1").graph)


def test_the_same_machine_matches():
    assert env.check(FITTED, "tflm", here=FITTED).match


@pytest.mark.parametrize(("change", "named"), [
    ({"cpu": "Intel Xeon"}, "cpu"), ({"cores": 8}, "cores"), ({"machine": "arm64"}, "machine"),
    ({"clock_mhz": 2596}, "clock"), ({"clock_mhz": 0}, "clock"),
    ({"tflite_micro": "0.dev1"}, "tflite-micro")])
def test_each_difference_is_named(change, named):
    found = env.check(FITTED, "tflm", here={**FITTED, **change})
    assert not found.match and len(found.differences) == 1 and named in found.differences[0]


def test_what_is_not_compared():
    # another LiteRT does not change TFLM's kernels; conversion tools and dates are recorded only
    here = {**FITTED, "litert": "9.9", "tensorflow": "3.0", "onnx2tf": "2.0", "python": "3.12",
            "date": "2030-01-01", "clock_mhz": FITTED["clock_mhz"] * 1.02}
    assert env.check(FITTED, "tflm", here=here).match
    assert not env.check(FITTED, "litert", here=here).match


def test_a_record_without_fields_does_not_match():
    assert not env.check({}, "tflm", here=FITTED).match


def test_host_target_on_its_own_machine(monkeypatch, graph):
    fake_machine(monkeypatch, FITTED)
    target = get_target("host-tflm")
    latency = predict_latency(graph, target)
    _host, model = models_for(target)
    assert latency.environment_match and latency.environment["differences"] == []
    assert latency.low_ms == pytest.approx(latency.ms / (1 + model.error_range[1]))
    row = latency.to_dict()
    assert row["latency_environment"]["fitted"] == FITTED
    assert row["latency_environment_match"] is True


def test_host_target_on_another_machine_widens_the_band(monkeypatch, graph):
    target = get_target("host-tflm")
    fake_machine(monkeypatch, FITTED)
    same = predict_latency(graph, target)
    fake_machine(monkeypatch, XEON)
    other = predict_latency(graph, target)
    assert other.ms == same.ms  # the figure is still the fitted machine's
    assert other.low_ms == pytest.approx(same.low_ms / OTHER_MACHINE_FACTOR)
    assert other.high_ms == pytest.approx(same.high_ms * OTHER_MACHINE_FACTOR)
    assert not other.environment_match
    assert other.environment["this_machine"]["cpu"] == XEON["cpu"]
    assert any("cpu" in d for d in other.environment["differences"])
    # the measurement: predictions 1.84-2.13x the Xeon's times; the band holds them
    assert other.low_ms <= same.ms / 2.13


@pytest.mark.parametrize("name", ["stm32h7", "esp32", "esp32s3"])
def test_boards_have_no_machine(monkeypatch, graph, name):
    fake_machine(monkeypatch, XEON)
    row = predict_latency(graph, get_target(name)).to_dict()
    assert row["latency_environment"] is None and row["latency_environment_match"] is True
    assert environment_check(get_target(name)) is None


def _save_xeon_profile(graph) -> None:
    """What `calibrate --measure host --quick` saves on the Xeon: the shipped model scaled."""
    from estimators.latency.features import graph_features

    shipped = shipped_host_models()["tflm"]
    x = graph_features(graph)[None]
    truth = [shipped.predict(x[0]) / 1.96]
    host, _ = scale_host(shipped, x.repeat(3, axis=0), truth * 3, XEON)
    save_profile(Profile("host-tflm", "local", {"tflm": host_identity(host, "quick")},
                         {"tflm": host}))


def test_a_saved_profile_of_this_machine_matches(monkeypatch, graph):
    _save_xeon_profile(graph)
    fake_machine(monkeypatch, XEON)
    assert matching_host_profile("host-tflm", "tflm") == "local"
    shipped = predict_latency(graph, get_target("host-tflm"))
    calibrated = predict_latency(graph, get_target("host-tflm@local"))
    assert calibrated.environment_match and not shipped.environment_match
    assert calibrated.ms == pytest.approx(shipped.ms / 1.96)
    # on the machine the shipped model was fitted on, the Xeon's profile is the stranger
    fake_machine(monkeypatch, FITTED)
    assert not predict_latency(graph, get_target("host-tflm@local")).environment_match
    assert matching_host_profile("host-tflm", "tflm") is None


def test_scale_host_keeps_the_shape_and_joins_the_bands(graph):
    from estimators.latency.features import graph_features

    shipped = shipped_host_models()["tflm"]
    x = graph_features(graph)
    rows = x[None].repeat(4, axis=0) * [[1.0], [1.5], [2.0], [3.0]]
    truth = [shipped.predict(r) * f for r, f in zip(rows, (0.5, 0.52, 0.48, 0.6), strict=True)]
    host, loo = scale_host(shipped, rows, truth, XEON)
    assert 0.48 < host.accuracy["scale"] < 0.6 and len(loo) == 4
    ratio = [a / b for a, b in zip(host.coefficients, shipped.coefficients, strict=True) if b]
    assert max(ratio) == pytest.approx(min(ratio))  # one factor on every cost
    assert host.error_range[0] <= min(shipped.error_range[0], loo.min())
    assert host.error_range[1] >= max(shipped.error_range[1], loo.max())
    assert host.environment == XEON
