"""Named latency profiles: saved under $TINYNAS_CONFIG, merged, loaded, chosen by
``--target name@profile``; unknown and malformed ones give one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from estimators.latency import models_for, predict_latency
from estimators.latency.features import FEATURES, Kernel, feature_vector
from estimators.latency.predictor import HostModel, LatencyModel, LatencyModelError
from estimators.latency.profiles import (
    PROFILE_SCHEMA,
    Profile,
    check_name,
    load_profile,
    profile_dir,
    profile_path,
    save_profile,
    saved_profiles,
)
from estimators.targets import TargetError, get_target


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYNAS_CONFIG", str(tmp_path / "config"))
    return tmp_path / "config"


def _model(runtime: str = "xcubeai", scale: float = 1.0, target: str = "stm32h7",
           basis: str = "tflm", clock_scaling: bool = True) -> LatencyModel:
    return LatencyModel(target=target, runtime=runtime, basis=basis,
                        weights={"conv": 0.5 * scale, "depthwise": 1.5 * scale,
                                 "other": 2.0 * scale},
                        fixed_ms=0.25 * scale, clock_mhz=480, error_range=(-0.05, 0.07), rows=3,
                        thin=True, method="test", accuracy={"note": 1},
                        clock_scaling=clock_scaling)


def _host(runtime: str = "tflm") -> HostModel:
    return HostModel(runtime=runtime, coefficients=tuple(np.linspace(0.1, 2.0, len(FEATURES))),
                     error_range=(-0.02, 0.03), accuracy={"fit_rows": 5},
                     environment={"cpu": "test cpu", "clock_mhz": 3000})


def test_profile_dir_follows_tinynas_config(config, monkeypatch):
    assert profile_dir() == config / "profiles"
    assert profile_path("stm32h7", "lab") == config / "profiles" / "stm32h7@lab.json"
    monkeypatch.delenv("TINYNAS_CONFIG")
    assert profile_dir().parts[-3:] == (".config", "tinynas", "profiles")


def test_save_and_load_round_trip(config):
    profile = Profile("stm32h7", "lab", {"xcubeai": _model()}, {"tflm": _host()},
                      {"xcubeai": {"rows": 3}})
    path = save_profile(profile)
    assert path == config / "profiles" / "stm32h7@lab.json"
    assert json.loads(path.read_text())["schema"] == PROFILE_SCHEMA
    loaded = load_profile("stm32h7", "lab")
    assert loaded == profile
    assert saved_profiles("stm32h7") == ["lab"]
    assert saved_profiles("esp32") == []
    assert [p.name for p in path.parent.iterdir()] == ["stm32h7@lab.json"]  # no temp left


def test_save_merges_runtimes_unless_told_not_to(config):
    save_profile(Profile("stm32h7", "lab", {"xcubeai": _model()}, notes={"xcubeai": "a"}))
    save_profile(Profile("stm32h7", "lab", {"tflm-ref": _model("tflm-ref", 10.0)},
                         notes={"tflm-ref": "b"}))
    merged = load_profile("stm32h7", "lab")
    assert merged.models == {"xcubeai": _model(), "tflm-ref": _model("tflm-ref", 10.0)}
    assert merged.notes == {"xcubeai": "a", "tflm-ref": "b"}
    # A newer calibration of the same runtime replaces the older one.
    save_profile(Profile("stm32h7", "lab", {"xcubeai": _model(scale=2.0)}))
    assert load_profile("stm32h7", "lab").models["xcubeai"] == _model(scale=2.0)
    save_profile(Profile("stm32h7", "lab", {"xcubeai": _model()}), merge=False)
    assert set(load_profile("stm32h7", "lab").models) == {"xcubeai"}


def test_profiles_of_other_targets_are_apart(config):
    save_profile(Profile("esp32", "lab", {"tflm-esp-nn": _model("tflm-esp-nn",
                                                                target="esp32")}))
    save_profile(Profile("esp32s3", "bench", {"tflm-esp-nn": _model("tflm-esp-nn",
                                                                    target="esp32s3")}))
    assert saved_profiles("esp32") == ["lab"]
    assert saved_profiles("esp32s3") == ["bench"]


def test_target_at_profile_predicts_with_the_profile(config):
    model = _model()
    save_profile(Profile("stm32h7", "lab", {"xcubeai": model}))
    target = get_target("stm32h7@lab")
    assert target.profile == "lab" and target.label == "stm32h7@lab"
    host, found = models_for(target)
    assert found == model
    conv = [Kernel("CONV_2D", (1, 8, 8, 8), (1, 8, 8, 8), macs=4096)]
    latency = predict_latency(conv, target)
    assert latency.ms == pytest.approx(model.predict(host, feature_vector(conv), 400).ms)
    assert latency.ms == pytest.approx(model.reference_ms(host.groups(feature_vector(conv)))
                                       * 480 / 400)


def test_a_profiles_own_host_model_is_used(config):
    host = _host("tflm")
    save_profile(Profile("host-tflm", "local", {"tflm": _model("tflm", target="host-tflm",
                                                               clock_scaling=False)},
                         {"tflm": host}))
    found_host, _ = models_for(get_target("host-tflm@local"))
    assert found_host == host


def test_a_missing_profile_names_the_saved_ones(config):
    save_profile(Profile("stm32h7", "lab", {"xcubeai": _model()}))
    save_profile(Profile("stm32h7", "bench", {"xcubeai": _model()}))
    with pytest.raises(LatencyModelError) as info:
        models_for(get_target("stm32h7@nope"))
    message = str(info.value)
    assert "'nope'" in message and "bench, lab" in message and "tinynas calibrate" in message
    assert "\n" not in message


def test_a_missing_profile_with_none_saved(config):
    with pytest.raises(LatencyModelError, match=r"saved: none"):
        load_profile("stm32h7", "lab")


def test_a_profile_without_the_runtime_says_what_it_has(config):
    save_profile(Profile("stm32h7", "lab", {"tflm-ref": _model("tflm-ref")}))
    with pytest.raises(LatencyModelError, match="it has: tflm-ref"):
        models_for(get_target("stm32h7@lab"))
    _, model = models_for(get_target("stm32h7@lab").with_runtime("tflm-ref"))
    assert model == _model("tflm-ref")


@pytest.mark.parametrize("name", ["lab", "my-board_2", "h7.480", "0", "a" * 64])
def test_good_profile_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Lab", "-lab", ".hidden", "../evil", "a/b", "a b",
                                  "a" * 65, "lab\n", "lab@x"])
def test_bad_profile_names_are_rejected(name):
    with pytest.raises(LatencyModelError, match="profile name"):
        check_name(name)


def test_a_bad_profile_name_in_the_target_is_rejected(config):
    with pytest.raises(LatencyModelError, match="profile name"):
        models_for(get_target("stm32h7@../evil"))
    with pytest.raises(TargetError):
        get_target("stm32h7@")


@pytest.mark.parametrize("text", [
    "{not json",
    "[]",
    json.dumps({"schema": "something-else/1"}),
    json.dumps({"schema": PROFILE_SCHEMA, "target": "stm32h7"}),
    json.dumps({"schema": PROFILE_SCHEMA, "target": "stm32h7", "name": "lab",
                "models": {"xcubeai": {"target": "stm32h7"}}}),
    json.dumps({"schema": PROFILE_SCHEMA, "target": "stm32h7", "name": "lab", "models": {},
                "hosts": {"tflm": {**_host().to_dict(),
                                   "coefficients": dict.fromkeys(FEATURES, "fast")}}}),
], ids=["truncated", "a-list", "other-schema", "no-name", "incomplete-model", "text-cost"])
def test_a_malformed_profile_is_one_latency_model_error(config, text):
    path = profile_path("stm32h7", "lab")
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(LatencyModelError):
        load_profile("stm32h7", "lab")
