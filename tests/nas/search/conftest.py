"""Fixtures of the search tests. ``views_study`` (helper V's views/top-k tests): a small study
built by hand in a temporary SQLite file, with the user attrs and constraints exactly as
``.notes/search_design.md`` lists them, so the views are tested without running a search.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from nas.search.config import SearchConfig
from search_space.spec import ModelSpec

FLASH_BUDGET, RAM_BUDGET = 512 * 1024, 256 * 1024
DEMO_CLASSES = ("circle", "square", "triangle")


def search_config(data: str = "demo", latency_budget_ms: float | None = None) -> SearchConfig:
    return SearchConfig(target="stm32h7", runtime="xcubeai", clock_mhz=400,
                        flash_budget=FLASH_BUDGET, ram_budget=RAM_BUDGET,
                        latency_budget_ms=latency_budget_ms, proxy="naswot",
                        objectives=("proxy", "latency"), data=data, data_format=None,
                        on_error="fail", num_classes=3, class_names=DEMO_CLASSES, seed=0,
                        sampler="nsga2", population=4)


def _create(storage: str, name: str, config: SearchConfig) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=name,
                                directions=config.directions)
    study.set_metric_names(config.metric_names)
    study.set_user_attr("tinynas", config.to_dict())
    return study


def estimate(latency: float, flash: int, ram: int, fits: bool = True,
             violations: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"params": 30_000, "macs": 2_500_000, "flash_bytes": flash, "ram_bytes": ram,
            "tflite_bytes_estimated": flash - 100_000, "arena_bytes_estimated": ram - 50_000,
            "latency_ms": latency, "latency_ms_low": latency * 0.9,
            "latency_ms_high": latency * 1.1, "input_size": 96, "head": "ssdlite",
            "block_mix": "lb 2, dlb 1, dlb_skip 1", "fits": fits, "violations": list(violations)}


def add_trial(study: optuna.Study, spec: ModelSpec, proxy: float, latency: float,
              flash: int = 300_000, ram: int = 120_000, state: str = "COMPLETE",
              **attrs: Any) -> int:
    """One trial as the objective records it; returns its number."""
    trial = study.ask()
    over = [f"flash {flash} > budget {FLASH_BUDGET}"] if flash > FLASH_BUDGET else []
    trial.set_user_attr("spec", spec.to_dict())
    if spec.genome is not None:
        trial.set_user_attr("genome", spec.genome.to_dict())
    else:
        trial.set_user_attr("baseline", spec.baseline)
    trial.set_user_attr("estimate", estimate(latency, flash, ram, not over, tuple(over)))
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if state != "COMPLETE":
        study.tell(trial, state=getattr(optuna.trial.TrialState, state))
        return trial.number
    trial.set_constraint("flash", flash - FLASH_BUDGET)
    trial.set_constraint("ram", ram - RAM_BUDGET)
    if over:
        trial.set_user_attr("rejected", "; ".join(over))
    else:
        trial.set_user_attr("proxy", proxy)
    study.tell(trial, [proxy if not over else float("-inf"), latency])
    return trial.number


@dataclasses.dataclass(frozen=True)
class ViewsStudy:
    url: str
    runs_dir: Path
    study: optuna.Study
    baselines: optuna.Study
    spec: ModelSpec
    config: SearchConfig

    def args(self) -> list[str]:
        return ["--storage", self.url, "--runs-dir", str(self.runs_dir)]

    def add(self, proxy: float, latency: float, **attrs: Any) -> int:
        """Another searched trial (see :func:`add_trial`); returns its number."""
        return add_trial(self.study, self.spec, proxy, latency, **attrs)


@pytest.fixture
def make_views_study(tmp_path: Path, tiny_spec: ModelSpec) -> Callable[..., ViewsStudy]:
    """Trials 0, 1, 6 on the front (latency 10/20/40), 2 dominated, 3 rejected (flash), 4
    failed, 5 pruned; baselines etn-w0.35-ssdlite and ssd-mbv1-0.25-192."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def make(data: str = "demo", name: str = "search") -> ViewsStudy:
        runs = tmp_path / "runs"
        runs.mkdir(exist_ok=True)
        url = f"sqlite:///{runs / 'tinynas.db'}"
        config = search_config(data)
        spec = dataclasses.replace(tiny_spec, num_classes=3)
        study = _create(url, name, config)
        add_trial(study, spec, 0.5, 10.0)
        add_trial(study, spec, 0.8, 20.0)
        add_trial(study, spec, 0.4, 25.0)
        add_trial(study, spec, 0.0, 5.0, flash=600_000)
        add_trial(study, spec, 0.0, 12.0, state="FAIL", fail_reason="RuntimeError: boom")
        add_trial(study, spec, 0.0, 14.0, state="PRUNED",
                  fail_reason="pruned: AP50 0.031 at step 60")
        add_trial(study, spec, 0.9, 40.0)
        baselines = _create(url, f"{name}:baselines", config)
        add_trial(baselines, ModelSpec(3, baseline="etn-w0.35-ssdlite"), 0.6, 30.0)
        add_trial(baselines, ModelSpec(3, baseline="ssd-mbv1-0.25-192"), 0.3, 15.0)
        return ViewsStudy(url, runs, study, baselines, spec, config)

    return make
