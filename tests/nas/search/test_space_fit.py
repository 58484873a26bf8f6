"""The space is fitted to the budget before the search, recorded in the study, and reused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest

from estimators.estimate import Budgets
from estimators.targets import get_target
from nas.cli import search as search_command
from nas.search.space_fit import fit_space, judge_for
from nas.search.storage import resolve_storage
from objectives.data.demo import DEMO_SIZES, write_demo
from search_space.space import FULL_SPACE, SearchSpace


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo(tmp_path_factory.mktemp("space") / "data", DEMO_SIZES["small"])


def _search(cli: Any, demo_data: Path, runs: Path, *extra: str) -> tuple[int, dict, str]:
    code, out, err = cli("search", "--target", "esp32", "--data", str(demo_data),
                         "--runs-dir", str(runs), "--proxy", "params", "--json", *extra)
    return code, (json.loads(out) if out.strip() else {}), err


def _study(runs: Path) -> optuna.Study:
    return optuna.load_study(study_name="search",
                             storage=resolve_storage(None, runs, create=False))


def test_the_fitted_space_holds_mostly_fitting_genomes_and_says_what_it_excluded():
    target = get_target("esp32")
    budgets = Budgets.for_target(target)
    space = fit_space(target, budgets, None, 3, seed=1, samples=120)
    fit = space.fit
    assert fit is not None and fit.full_feasible_share < 0.5
    assert fit.fitted_feasible_share >= 0.85
    assert fit.excluded and all("draws with it fit" in line for line in fit.excluded)
    assert 0 < fit.feasible_kept_share <= 1
    assert 0 < fit.fitted_max_feasible_macs <= fit.full_max_feasible_macs
    # Only narrowed: every value it allows, the full space allows.
    rng = __import__("numpy").random.default_rng(0)
    draws = [space.draw(rng) for _ in range(50)]
    assert all(FULL_SPACE.contains(d) for d in draws)
    judge = judge_for(target, budgets, None, 3)
    assert sum(judge(d).fits for d in draws) >= 35


def test_an_easy_budget_leaves_the_space_whole():
    target = get_target("host-tflm")
    space = fit_space(target, Budgets.for_target(target), None, 3, samples=40)
    assert space == FULL_SPACE and space.fit.excluded == ()


@pytest.mark.slow
def test_an_esp32_search_has_feasible_trials_and_records_its_space(cli, demo_data, tmp_path,
                                                                    monkeypatch):
    runs = tmp_path / "runs"
    code, row, err = _search(cli, demo_data, runs, "--trials", "6", "--seed", "3")
    assert code == 0, err
    assert row["feasible"] >= 4 and row["front"]
    assert "search space fitted to esp32" in err
    space = SearchSpace.from_dict(row["space"])
    assert space.fit is not None and space != FULL_SPACE
    study = _study(runs)
    assert study.user_attrs["tinynas"]["space"] == row["space"]
    for trial in study.trials:
        assert space.contains(trial.params)

    # A rerun (or a second worker's command) takes the recorded space, never refits.
    def refit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the space was fitted again")

    monkeypatch.setattr(search_command, "fit_space", refit)
    code, again, err = _search(cli, demo_data, runs, "--trials", "10", "--seed", "3",
                               "--workers", "2")
    assert code == 0, err
    assert again["trials"] == 10 and again["space"] == row["space"]
    for trial in _study(runs).trials:
        assert space.contains(trial.params)


def test_space_full_skips_the_fit_and_a_study_keeps_its_mode(cli, demo_data, tmp_path):
    runs = tmp_path / "runs"
    code, row, err = _search(cli, demo_data, runs, "--trials", "3", "--space", "full")
    assert code == 0, err
    assert SearchSpace.from_dict(row["space"]) == FULL_SPACE and row["space"]["fit"] is None
    code, again, err = _search(cli, demo_data, runs, "--trials", "4")  # default: fitted
    assert code == 0, err
    assert again["space"] == row["space"]  # the study's record wins over the default


def test_a_budget_no_genome_meets_names_the_smallest_figures_of_the_extended_space(cli,
                                                                                   demo_data,
                                                                                   tmp_path):
    code, _, err = _search(cli, demo_data, tmp_path / "runs", "--ram", "8KiB")
    assert code == 2
    assert "no genome in the search space fits" in err and "RAM" in err
    assert not (tmp_path / "runs").exists()
