"""The driver's study preparation on a real SQLite storage: studies created and continued, the
baselines queued once, slots topped up, pruners, samplers, stale and orphaned trials."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from nas.errors import UsageError
from nas.search import driver, queue
from nas.search.config import CONFIG_ATTR, SearchConfig
from nas.search.objective import BASELINE_ATTR, COMPANION_ATTR, assess
from nas.search.optuna_private import storage_of, study_id_of, trial_id_of
from nas.search.storage import resolve_storage
from objectives.proxies import get_proxy
from search_space.baselines import list_baselines
from search_space.model import DETECTION
from search_space.spec import ModelSpec

NAME = "search"


@pytest.fixture(autouse=True)
def _quiet() -> None:
    driver.quiet_optuna()


@pytest.fixture
def storage(tmp_path: Path) -> BaseStorage:
    return resolve_storage(f"sqlite:///{tmp_path / 'tinynas.db'}", tmp_path)


def config(**changes: object) -> SearchConfig:
    base = SearchConfig(target="stm32h7", runtime="xcubeai", clock_mhz=400,
                        flash_budget=512 * 1024, ram_budget=256 * 1024, latency_budget_ms=None,
                        proxy="params", objectives=("proxy", "latency"), data="demo",
                        data_format=None, on_error="fail", num_classes=3,
                        class_names=("circle", "square", "triangle"), seed=0, sampler="nsga2",
                        population=4)
    return dataclasses.replace(base, **changes)


def plan(tmp_path: Path, n_trials: int | None = 3, **changes: object) -> driver.SearchPlan:
    return driver.SearchPlan(NAME, None, tmp_path, config(**changes), n_trials, deadline=None)


def _waiting(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.WAITING,))


# -- studies -----------------------------------------------------------------------------------

def test_create_or_load_creates_then_continues_the_same_study(storage):
    made, created = driver.create_or_load(storage, NAME, config())
    assert created and made.user_attrs[CONFIG_ATTR] == config().to_dict()
    assert made.metric_names == ["proxy", "latency_ms"]
    assert [d.name for d in made.directions] == ["MAXIMIZE", "MINIMIZE"]
    again, created = driver.create_or_load(storage, NAME, config())
    assert not created and study_id_of(again) == study_id_of(made)


def test_create_or_load_refuses_another_config(storage):
    driver.create_or_load(storage, NAME, config())
    with pytest.raises(UsageError, match=r"created with flash_budget 512\.0 KiB.*asks for "):
        driver.create_or_load(storage, NAME, config(flash_budget=1024 * 1024))


def test_a_study_left_without_its_config_is_adopted_only_when_empty(storage, monkeypatch):
    monkeypatch.setattr(driver, "CONFIG_WAIT_S", 0.0)
    # Its creator was killed between creating it and storing the config: empty, adopted.
    optuna.create_study(storage=storage, study_name=NAME, directions=config().directions)
    study, created = driver.create_or_load(storage, NAME, config())
    assert not created and study.user_attrs[CONFIG_ATTR] == config().to_dict()
    # A study with trials and no config was made by something else.
    other = optuna.create_study(storage=storage, study_name="other",
                                directions=config().directions)
    other.tell(other.ask(), [0.5, 1.0])
    with pytest.raises(UsageError, match="not created by `tinynas search`"):
        driver.create_or_load(storage, "other", config())


def test_prepare_queues_baselines_and_slots(storage, tmp_path):
    the_plan = plan(tmp_path, n_trials=3)
    target, budgets = the_plan.config.target_and_budgets()
    studies = driver.prepare(the_plan, storage, target, budgets, needs_prune=False)
    assert studies.prune is None
    assert studies.main.study_name == NAME
    assert studies.baselines.study_name == NAME + driver.BASELINES_SUFFIX
    assert len(_waiting(studies.main)) == 3
    assert all(t.user_attrs.get(queue.SLOT_ATTR) for t in _waiting(studies.main))
    queued = [t.user_attrs[BASELINE_ATTR] for t in _waiting(studies.baselines)]
    assert queued and len(queued) == len(set(queued))
    # A second driver on the same storage adds nothing.
    driver.prepare(the_plan, storage, target, budgets, needs_prune=True)
    assert len(_waiting(studies.main)) == 3
    assert sorted(t.user_attrs[BASELINE_ATTR] for t in _waiting(studies.baselines)) == \
        sorted(queued)
    prune = optuna.load_study(study_name=NAME + driver.PRUNE_SUFFIX, storage=storage)
    assert prune.direction == optuna.study.StudyDirection.MAXIMIZE


# -- baselines ---------------------------------------------------------------------------------

def test_enqueue_baselines_queues_the_fitting_ones_and_lists_the_others(storage):
    cfg = config()
    target, budgets = cfg.target_and_budgets()
    study, _ = driver.create_or_load(storage, NAME + driver.BASELINES_SUFFIX, cfg)
    driver.enqueue_baselines(study, cfg, target, budgets)
    queued = {t.user_attrs[BASELINE_ATTR] for t in _waiting(study)}
    not_fitting = study.user_attrs[driver.NOT_FITTING_ATTR]
    names = {info.name for info in list_baselines(DETECTION)}
    assert queued | set(not_fitting) == names and not queued & set(not_fitting)
    for name in names:
        assessed = assess(ModelSpec(cfg.num_classes, baseline=name), target, budgets, None)
        assert (name in queued) == assessed.fits
        if not assessed.fits:
            assert not_fitting[name] == "; ".join(assessed.violations)
    assert all(t.user_attrs[queue.SLOT_ATTR] for t in _waiting(study))
    # Done once: the attr marks the work done, a second call queues nothing.
    driver.enqueue_baselines(study, cfg, target, budgets)
    assert len(_waiting(study)) == len(queued)


def test_enqueue_baselines_skips_one_an_interrupted_run_already_queued(storage):
    cfg = config(flash_budget=4 * 1024 * 1024, ram_budget=4 * 1024 * 1024)
    target, budgets = cfg.target_and_budgets()
    study, _ = driver.create_or_load(storage, NAME + driver.BASELINES_SUFFIX, cfg)
    first = list_baselines(DETECTION)[0].name
    study.enqueue_trial({}, user_attrs={BASELINE_ATTR: first, queue.SLOT_ATTR: True})
    driver.enqueue_baselines(study, cfg, target, budgets)
    names = [t.user_attrs[BASELINE_ATTR] for t in _waiting(study)]
    assert names.count(first) == 1 and len(names) > 1


def test_top_up_replaces_interrupted_trials(storage, tmp_path):
    the_plan = plan(tmp_path, n_trials=2)
    target, budgets = the_plan.config.target_and_budgets()
    studies = driver.prepare(the_plan, storage, target, budgets, needs_prune=False)
    slot = _waiting(studies.main)[0]
    queue.mark_interrupted(storage, trial_id_of(slot), "interrupted")
    baseline = _waiting(studies.baselines)[0]
    queue.mark_interrupted(storage, trial_id_of(baseline), "interrupted")
    driver.top_up(storage, the_plan, studies)
    # N counts the trials that were not interrupted: a new slot takes the place of the old.
    assert len(_waiting(studies.main)) == 2
    assert queue.counted(studies.main) == 2
    name = baseline.user_attrs[BASELINE_ATTR]
    assert [t.user_attrs[BASELINE_ATTR] for t in _waiting(studies.baselines)].count(name) == 1


# -- claiming ----------------------------------------------------------------------------------

def test_next_trial_takes_baselines_first_then_slots(storage, tmp_path):
    the_plan = plan(tmp_path, n_trials=1)
    target, budgets = the_plan.config.target_and_budgets()
    studies = driver.prepare(the_plan, storage, target, budgets, needs_prune=False)
    n_baselines = len(_waiting(studies.baselines))
    picked = [driver._next_trial(the_plan, studies) for _ in range(n_baselines + 2)]
    assert [p[0].study_name for p in picked[:n_baselines]] == \
        [studies.baselines.study_name] * n_baselines
    assert picked[n_baselines][0].study_name == NAME
    assert picked[-1] is None  # N = 1: nothing left to claim
    for study, trial_id in picked[:-1]:
        assert storage_of(study).get_trial(trial_id).state == TrialState.RUNNING


def test_a_time_limited_search_creates_a_trial_each_time(storage, tmp_path):
    the_plan = plan(tmp_path, n_trials=None)
    target, budgets = the_plan.config.target_and_budgets()
    studies = driver.prepare(the_plan, storage, target, budgets, needs_prune=False)
    for study, _ in iter(lambda: driver._next_trial(the_plan, studies), None):
        if study.study_name == NAME:
            break  # the baselines are taken first
    study, trial_id = driver._next_trial(the_plan, studies)
    assert study.study_name == NAME
    assert storage.get_trial(trial_id).state == TrialState.RUNNING
    assert len(studies.main.get_trials(deepcopy=False)) == 2


# -- stale and orphaned trials -----------------------------------------------------------------

def test_fail_stale_trials_fails_dead_workers_trials_and_orphaned_companions(
        storage, tmp_path, monkeypatch):
    monkeypatch.setenv(queue.STALE_ENV, "30")
    the_plan = plan(tmp_path, n_trials=2, proxy="short-train")
    target, budgets = the_plan.config.target_and_budgets()
    studies = driver.prepare(the_plan, storage, target, budgets, needs_prune=True)
    assert studies.prune is not None
    # Trial 0 ended, its companion is still RUNNING with a fresh heartbeat: an orphan.
    main_trial = studies.main.ask()
    companion = studies.prune.ask()
    companion.set_user_attr(COMPANION_ATTR, main_trial.number)
    storage.set_trial_system_attr(trial_id_of(companion), queue.HEARTBEAT_ATTR, time.time())
    studies.main.tell(main_trial, state=TrialState.FAIL)
    # A searched trial of a dead worker: no heartbeat for an hour.
    dead = studies.main.ask()
    storage.set_trial_system_attr(trial_id_of(dead), queue.HEARTBEAT_ATTR, time.time() - 3600)
    assert driver.fail_stale_trials(studies)
    orphan = storage.get_trial(trial_id_of(companion))
    assert orphan.state == TrialState.FAIL
    assert orphan.user_attrs[queue.FAIL_REASON] == \
        f"worker stopped (trial {main_trial.number} ended without it)"
    stale = storage.get_trial(trial_id_of(dead))
    assert stale.state == TrialState.FAIL and stale.user_attrs[queue.INTERRUPTED_ATTR]
    assert not driver.fail_stale_trials(studies)  # nothing left to fail


# -- pruners and samplers ----------------------------------------------------------------------

def test_prune_study_is_the_single_objective_companion_loaded_if_it_exists(storage):
    first = driver.prune_study(storage, NAME, get_proxy("short-train"))
    again = driver.prune_study(storage, NAME, get_proxy("short-train"))
    assert first.study_name == again.study_name == NAME + driver.PRUNE_SUFFIX
    assert first.direction == optuna.study.StudyDirection.MAXIMIZE
    assert isinstance(again.pruner, optuna.pruners.MedianPruner)
    assert isinstance(driver.prune_study(storage, NAME, get_proxy("loss-area")).pruner,
                      optuna.pruners.SuccessiveHalvingPruner)


def test_median_pruner_lets_the_first_five_run(storage):
    study = driver.prune_study(storage, NAME, get_proxy("short-train"))
    verdicts = []
    for value in (0.9, 0.9, 0.9, 0.9, 0.9, 0.0, 0.0):
        trial = study.ask()
        trial.report(value, 0)
        verdicts.append(trial.should_prune())
        study.tell(trial, value)
    assert verdicts == [False] * 5 + [True, True]


def test_halving_pruner_starts_at_the_proxys_first_rung(storage):
    proxy = get_proxy("loss-area")
    rung = proxy.first_rung()
    study = driver.prune_study(storage, NAME, proxy)
    verdicts = []
    for value in (0.9, 0.1):
        trial = study.ask()
        trial.report(value, rung - 1)
        before = trial.should_prune()
        trial.report(value, rung)
        verdicts.append((before, trial.should_prune()))
        study.tell(trial, value)
    # Never before the first rung; there, the worse half stops.
    assert verdicts == [(False, False), (False, True)]


def test_make_sampler_by_name():
    assert isinstance(driver.make_sampler(config(sampler="nsga2"), 0),
                      driver.SharedParamsNSGAIISampler)
    assert isinstance(driver.make_sampler(config(sampler="tpe"), 0),
                      optuna.samplers.TPESampler)
    assert isinstance(driver.make_sampler(config(sampler="gp"), 0), optuna.samplers.GPSampler)
    with pytest.raises(UsageError, match="valid samplers are nsga2, tpe, gp"):
        driver.make_sampler(config(sampler="cmaes"), 0)


def test_worker_seed_differs_per_worker_and_per_resumption():
    seeds = {driver.worker_seed(0, w, f) for w in range(4) for f in (0, 10)}
    assert len(seeds) == 8
    assert driver.worker_seed(7, 1, 3) == driver.worker_seed(7, 1, 3)
