"""SearchConfig: round trip through the study attr, the mismatch refusal, flag parsing."""

from __future__ import annotations

import dataclasses

import pytest

from nas.errors import UsageError
from nas.search.config import (
    SearchConfig,
    check_same,
    parse_objectives,
    population_for,
)


def _config(**changes: object) -> SearchConfig:
    base = SearchConfig(target="stm32h7", runtime="xcubeai", clock_mhz=400,
                        flash_budget=1 << 20, ram_budget=384 << 10, latency_budget_ms=None,
                        proxy="params", objectives=("proxy", "latency"), data="demo",
                        data_format=None, on_error="fail", num_classes=3,
                        class_names=("circle", "square", "triangle"), seed=0,
                        sampler="nsga2", population=4)
    return dataclasses.replace(base, **changes)


def test_round_trip() -> None:
    config = _config(objectives=("proxy", "latency", "ram"), latency_budget_ms=50.0)
    assert SearchConfig.from_dict(config.to_dict()) == config
    assert config.directions == ["maximize", "minimize", "minimize"]
    assert config.metric_names == ["proxy", "latency_ms", "ram_bytes"]


def test_mismatch_names_key_both_values_and_a_new_study() -> None:
    check_same("search", _config(), _config())
    with pytest.raises(UsageError) as err:
        check_same("search", _config(), _config(flash_budget=512 << 10, seed=3))
    message = str(err.value)
    assert "flash_budget 1.00 MiB" in message and "512.0 KiB" in message
    assert "(and 1 more)" in message and "--study" in message


def test_foreign_config_refused() -> None:
    with pytest.raises(UsageError, match="another tinynas version"):
        SearchConfig.from_dict({"format": "tinynas-search/0"})


@pytest.mark.parametrize("text, expected", [
    ("proxy,latency", ("proxy", "latency")),
    ("ram, latency,proxy", ("proxy", "latency", "ram")),
    ("proxy,latency,flash,ram", ("proxy", "latency", "flash", "ram")),
])
def test_objectives(text: str, expected: tuple[str, ...]) -> None:
    assert parse_objectives(text) == expected


@pytest.mark.parametrize("text", ["proxy", "latency,flash", "proxy,latency,accuracy",
                                  "proxy,proxy,latency", ""])
def test_bad_objectives(text: str) -> None:
    with pytest.raises(UsageError, match="--objectives"):
        parse_objectives(text)


def test_population_rule() -> None:
    assert [population_for(n) for n in (1, 16, 40, 400, None)] == [4, 4, 10, 50, 20]
