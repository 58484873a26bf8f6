"""``tinynas search`` end to end on a tiny demo dataset with cheap proxies: the study layout,
budgets honoured, resume, config refusal, failing/pruned/interrupted trials, stale trials,
baselines, and two worker processes giving the exact count."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from estimators.estimate import Budgets
from estimators.targets import Target, get_target
from nas.export.files import LAYOUT
from nas.search import driver, queue
from nas.search.objective import Assessment, assess
from nas.search.optuna_private import storage_of, trial_id_of
from nas.search.storage import resolve_storage
from objectives.data.demo import DEMO_SIZES, write_demo
from objectives.proxies import AccuracyProxy, ProxyData, ProxyPruned, Report, register_proxy
from objectives.proxies.short_train import ShortTrainProxy
from objectives.train import Recipe
from search_space.baselines import list_baselines
from search_space.model import DETECTION
from search_space.spec import ModelSpec

FLASH, RAM = "900KiB", "384KiB"


@register_proxy
class FlakyProxy(AccuracyProxy):
    """Calls 2, 5, ... raise, calls 3, 6, ... diverge (NaN): the search records both and
    goes on."""

    name: ClassVar[str] = "test-flaky"
    training_free: ClassVar[bool] = True
    calls: ClassVar[int] = 0

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        FlakyProxy.calls += 1
        if FlakyProxy.calls % 3 == 2:
            raise RuntimeError("boom\nsecond line")
        return math.nan if FlakyProxy.calls % 3 == 0 else float(FlakyProxy.calls)


@register_proxy
class PrunedProxy(AccuracyProxy):
    """A training proxy: reports one step, then stops as if the pruner said so."""

    name: ClassVar[str] = "test-pruned"
    training_free: ClassVar[bool] = False

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        assert report is not None
        report(1, 0.01)
        raise ProxyPruned(1, 0.01)


@register_proxy
class InterruptingProxy(AccuracyProxy):
    """Ctrl-C during the second scored trial."""

    name: ClassVar[str] = "test-interrupt"
    training_free: ClassVar[bool] = True
    calls: ClassVar[int] = 0

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        InterruptingProxy.calls += 1
        if InterruptingProxy.calls == 2:
            raise KeyboardInterrupt
        return 1.0


@register_proxy
@dataclass(frozen=True)
class DivergingProxy(ShortTrainProxy):
    """Real short training at a learning rate that makes the loss NaN within two steps."""

    name: ClassVar[str] = "test-diverging"
    steps: int = 4
    val_images: int = 5
    recipe: Recipe = field(default_factory=lambda: Recipe(lr=1e9))


@register_proxy
class PartsProxy(AccuracyProxy):
    """A training proxy with parts (numpy numbers, one non-finite) that counts its runs: a
    search must take the score from its one components() call."""

    name: ClassVar[str] = "test-parts"
    training_free: ClassVar[bool] = False
    calls: ClassVar[int] = 0

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        raise AssertionError("a search takes the score from components()")

    def components(self, spec: ModelSpec, data: ProxyData, report: Report | None = None
                   ) -> dict[str, float]:
        PartsProxy.calls += 1
        assert report is not None
        report(1, 0.5)
        return {"loss_area": np.float32(0.25), "steps": np.int64(3), "part": math.inf,
                "score": np.float64(0.5)}


@register_proxy
class ResultsProxy(AccuracyProxy):
    """Records the trained results each score is handed (what a surrogate refits on)."""

    name: ClassVar[str] = "test-results"
    training_free: ClassVar[bool] = True
    seen: ClassVar[list[int]] = []

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        ResultsProxy.seen.append(len(data.trained))
        return 1.0


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo(tmp_path_factory.mktemp("search") / "data", DEMO_SIZES["small"])


@pytest.fixture
def search(cli: Callable[..., tuple[int, str, str]], demo_data: Path, tmp_path: Path
           ) -> Callable[..., tuple[int, dict[str, Any] | None, str]]:
    """``tinynas search`` on the demo data with the runs dir in tmp_path; (code, JSON, err)."""
    def run(*extra: str) -> tuple[int, dict[str, Any] | None, str]:
        args = ["search", "--target", "stm32h7", "--flash", FLASH, "--ram", RAM,
                "--data", str(demo_data), "--runs-dir", str(tmp_path / "runs"), "--json",
                *extra]
        if "--proxy" not in extra:
            args += ["--proxy", "params"]
        code, out, err = cli(*args)
        return code, (json.loads(out) if out.strip() else None), err

    return run


def _load(tmp_path: Path, name: str = "search", url: str | None = None) -> optuna.Study:
    storage = resolve_storage(url, tmp_path / "runs", create=False)
    return optuna.load_study(study_name=name, storage=storage)


@pytest.mark.slow
def test_tiny_search_records_the_layout_and_honours_budgets(search, tmp_path: Path) -> None:
    code, row, err = search("--trials", "8", "--seed", "1")
    assert code == 0, err
    assert row["trials"] == 8 and row["study"] == "search"
    assert row["complete"] + row["pruned"] + row["failed"] == 8
    study = _load(tmp_path)
    assert study.metric_names == ["proxy", "latency_ms"]
    assert study.user_attrs["tinynas"]["proxy"] == "params"
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 8
    for trial in trials:
        est = trial.user_attrs["estimate"]
        assert {"spec", "genome", "estimate"} <= set(trial.user_attrs)
        assert set(trial.constraints) == {"flash", "ram"}
        fits = est["flash_bytes"] <= 900 * 1024 and est["ram_bytes"] <= 384 * 1024
        assert est["fits"] is fits and trial.values[1] == est["latency_ms"]
        if fits:  # no feasible trial breaks a budget
            assert all(v <= 0 for v in trial.constraints.values())
            assert trial.values[0] == trial.user_attrs["proxy"] > 0
        else:  # rejected by the estimators, with the violated limits, before any proxy
            assert trial.values[0] == -math.inf and "proxy" not in trial.user_attrs
            assert "budget" in trial.user_attrs["rejected"]
    feasible = {t.number for t in trials if "rejected" not in t.user_attrs}
    assert set(row["front"]) <= feasible


def test_baselines_study_holds_the_fitting_baselines(search, tmp_path: Path) -> None:
    code, row, err = search("--trials", "1")
    assert code == 0, err
    target = get_target("stm32h7")
    limits = Budgets(900 * 1024, 384 * 1024)
    fitting = {b.name for b in list_baselines(DETECTION)
               if _assess(b.name, target, limits).fits}
    baselines = _load(tmp_path, "search:baselines")
    names = [t.user_attrs["baseline"] for t in baselines.trials]
    assert sorted(names) == sorted(fitting) and fitting
    assert all(t.state == TrialState.COMPLETE and "genome" not in t.user_attrs
               for t in baselines.trials)
    assert set(baselines.user_attrs["not_fitting"]) == {
        b.name for b in list_baselines(DETECTION)} - fitting
    assert row["baselines"] == len(fitting)
    # A rerun does not enqueue them again.
    search("--trials", "2")
    assert len(_load(tmp_path, "search:baselines").trials) == len(fitting)


def _assess(name: str, target: Target, limits: Budgets) -> Assessment:
    return assess(ModelSpec(3, baseline=name), target, limits, None)


@pytest.mark.slow
def test_resume_adds_trials_up_to_the_new_count(search, tmp_path: Path) -> None:
    assert search("--trials", "4")[0] == 0
    first = {t.number: t.values for t in _load(tmp_path).trials}
    code, row, err = search("--trials", "7")
    assert code == 0, err
    assert row["trials"] == 7
    trials = _load(tmp_path).trials
    assert [t.number for t in trials] == list(range(7))
    assert {n: trials[n].values for n in first} == first
    assert search("--trials", "7")[1]["trials"] == 7  # nothing left to do


@pytest.mark.slow
def test_other_config_is_refused(search, tmp_path: Path) -> None:
    assert search("--trials", "2")[0] == 0
    code, row, err = search("--trials", "2", "--flash", "800KiB")
    assert code == 2 and row is None
    assert "flash_budget" in err and "--study" in err
    assert len(_load(tmp_path).trials) == 2
    code, _, err = search("--trials", "2", "--study", "other", "--flash", "800KiB")
    assert code == 0, err


def _bare_study(tmp_path: Path, name: str, directions: list[str]) -> optuna.Study:
    """A study as a `tinynas search` killed right after creating it leaves: no config."""
    (tmp_path / "runs").mkdir(exist_ok=True)
    storage = resolve_storage(None, tmp_path / "runs")
    return optuna.create_study(storage=storage, study_name=name, directions=directions)


def test_a_study_left_without_its_config_is_adopted(search, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "CONFIG_WAIT_S", 0.0)
    _bare_study(tmp_path, "search", ["maximize", "minimize"])
    _bare_study(tmp_path, "search:baselines", ["maximize", "minimize"])
    code, row, err = search("--trials", "2")
    assert code == 0, err
    assert row["trials"] == 2
    study = _load(tmp_path)
    assert study.user_attrs["tinynas"]["flash_budget"] == 900 * 1024
    assert study.metric_names == ["proxy", "latency_ms"]
    assert search("--trials", "3")[0] == 0


@pytest.mark.parametrize("kind", ["trial", "directions", "attr"])
def test_a_foreign_study_without_config_is_refused(search, tmp_path: Path, kind: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "CONFIG_WAIT_S", 0.0)
    study = _bare_study(tmp_path, "search",
                        ["minimize", "minimize"] if kind == "directions" else
                        ["maximize", "minimize"])
    if kind == "trial":
        study.enqueue_trial({})
    elif kind == "attr":
        study.set_user_attr("owner", "someone else")
    code, row, err = search("--trials", "2")
    assert code == 2 and row is None
    assert "'search' exists but was not created by `tinynas search`" in err
    assert "--study NEW_NAME" in err
    assert "tinynas" not in _load(tmp_path).user_attrs


def test_journal_storage(search, tmp_path: Path) -> None:
    url = f"journal:{tmp_path / 'search.log'}"
    code, row, err = search("--trials", "3", "--storage", url, "--sampler", "tpe")
    assert code == 0, err
    assert row["trials"] == 3 and row["storage"] == url
    assert len(_load(tmp_path, url=url).trials) == 3


@pytest.mark.slow
def test_gp_sampler_searches_under_the_constraints(search, tmp_path: Path) -> None:
    # More trials than the GP sampler's 10 random start-up ones, so the GP proposes some.
    code, row, err = search("--trials", "12", "--sampler", "gp")
    assert code == 0, err
    study = _load(tmp_path)
    assert row["trials"] == 12 and len(study.trials) == 12
    assert all(all(v <= 0 for v in t.constraints.values()) for t in study.best_trials)


@pytest.mark.slow
def test_a_trial_that_raises_is_failed_and_the_search_goes_on(search, tmp_path: Path) -> None:
    FlakyProxy.calls = 0
    # Generous budgets: most genomes are scored, so the proxy is called several times.
    code, row, err = search("--trials", "6", "--proxy", "test-flaky", "--flash", "2MiB",
                            "--ram", "900KiB")
    assert code == 0, err
    failed = _load(tmp_path).get_trials(states=(TrialState.FAIL,))
    assert row["failed"] == len(failed) and row["trials"] == 6
    reasons = {t.user_attrs["fail_reason"] for t in failed}
    assert reasons == {"RuntimeError: boom", "ValueError: proxy test-flaky returned nan"}


def test_pruned_proxy_marks_trial_pruned_with_companion(search, tmp_path: Path) -> None:
    code, row, err = search("--trials", "3", "--proxy", "test-pruned", "--flash", "2MiB",
                            "--ram", "900KiB")
    assert code == 0, err
    pruned = _load(tmp_path).get_trials(states=(TrialState.PRUNED,))
    assert pruned and row["pruned"] == len(pruned)
    assert all(t.user_attrs["fail_reason"] == "pruned: AP50 0.010 at step 1" for t in pruned)
    companions = _load(tmp_path, "search:prune").trials
    assert {t.user_attrs["trial"] for t in companions} >= {t.number for t in pruned}
    assert all(t.state == TrialState.PRUNED for t in companions)


@pytest.mark.slow
def test_a_diverging_training_fails_its_trial_and_views_show_why(search, cli,
                                                                tmp_path: Path) -> None:
    # Generous budgets: the sampled genomes fit, so they are trained (and diverge) too.
    code, row, err = search("--trials", "3", "--proxy", "test-diverging", "--flash", "2MiB",
                            "--ram", "900KiB")
    assert code == 0, err
    assert row["trials"] == 3 and row["failed"] >= 1
    scored = [t for t in _all_trials(tmp_path) if "rejected" not in t.user_attrs]
    assert all(t.state == TrialState.FAIL for t in scored)
    for trial in scored:
        assert re.match(r"TrainingDiverged: training diverged: loss nan at step \d+ \(lr ",
                        trial.user_attrs["fail_reason"])
    runs = ["--runs-dir", str(tmp_path / "runs")]
    number = next(t.number for t in _load(tmp_path).trials if t.state == TrialState.FAIL)
    code, out, err = cli("show", "--study", "search", "--trial", str(number), *runs)
    assert code == 0 and "training diverged: loss nan" in out, err
    code, out, err = cli("pareto", "--study", "search", "--all", "--json", *runs)
    assert code == 0, err
    listed = {r["trial"]: r for r in json.loads(out)["trials"]}
    assert "training diverged" in listed[number]["fail_reason"]


@pytest.mark.slow
def test_a_training_proxy_is_run_once_per_trial_and_its_parts_are_stored(
        search, tmp_path: Path) -> None:
    PartsProxy.calls = 0
    code, _, err = search("--trials", "3", "--proxy", "test-parts", "--flash", "2MiB",
                          "--ram", "900KiB")
    assert code == 0, err
    # The fitting baselines are scored too, by the same objective.
    scored = [t for t in _all_trials(tmp_path) if "rejected" not in t.user_attrs]
    assert scored and PartsProxy.calls == len(scored)
    for trial in scored:
        assert trial.state == TrialState.COMPLETE and trial.user_attrs["proxy"] == 0.5
        assert trial.user_attrs["proxy_components"] == {"loss_area": 0.25, "steps": 3,
                                                        "part": None, "score": 0.5}
    companions = _load(tmp_path, "search:prune").trials
    assert [t.value for t in companions] == [0.5] * len(scored)


@pytest.mark.slow
def test_a_continued_search_hands_its_trained_results_to_the_proxy(search,
                                                                 tmp_path: Path) -> None:
    from nas.search import trials

    ResultsProxy.seen = []
    code, _, err = search("--trials", "4", "--proxy", "test-results")
    assert code == 0, err
    assert ResultsProxy.seen and set(ResultsProxy.seen) == {0}
    study = _load(tmp_path)
    scored = [t.number for t in study.trials if "rejected" not in t.user_attrs]
    for number, ap50 in zip(scored[:2], (0.3, 0.4), strict=False):
        trials.record_result(study, number, {"trained": {"ap50": ap50}})
    ResultsProxy.seen = []
    code, _, err = search("--trials", "8", "--proxy", "test-results")
    assert code == 0, err
    assert ResultsProxy.seen and set(ResultsProxy.seen) == {min(2, len(scored))}


@pytest.mark.slow
def test_a_loss_area_search_reports_halving_rungs_to_its_companion(search,
                                                                 tmp_path: Path) -> None:
    code, row, err = search("--trials", "6", "--proxy", "loss-area:images=16")
    assert code == 0, err
    scored = [t for t in _all_trials(tmp_path) if "rejected" not in t.user_attrs]
    assert scored and row["pruned"] < len(scored)  # the first at each rung always go on
    done = [t for t in scored if t.state == TrialState.COMPLETE]
    assert all("loss_area" in t.user_attrs["proxy_components"] for t in done)
    companions = _load(tmp_path, "search:prune").trials
    assert all(set(t.intermediate_values) <= {250, 500} for t in companions)
    assert any(t.intermediate_values for t in companions)


@pytest.mark.slow
def test_estimate_proxy_gives_a_trial_its_search_score(search, cli, demo_data: Path,
                                                       tmp_path: Path) -> None:
    code, _, err = search("--trials", "4", "--proxy", "composite")
    assert code == 0, err
    trial = next(t for t in _load(tmp_path).trials if "rejected" not in t.user_attrs)
    parts = trial.user_attrs["proxy_components"]
    assert parts["score"] == trial.user_attrs["proxy"] and "coverage" in parts
    runs = ["--runs-dir", str(tmp_path / "runs")]
    code, out, err = cli("show", "--trial", str(trial.number), *runs, "--json")
    assert code == 0 and json.loads(out)["proxy_components"] == parts, err
    genome = tmp_path / "g.json"
    genome.write_text(json.dumps(trial.user_attrs["genome"]))
    code, out, err = cli("estimate", "--genome", str(genome), "--target", "stm32h7", "--flash",
                         FLASH, "--ram", RAM, "--proxy", "composite", "--data", str(demo_data),
                         "--json")
    row = json.loads(out)
    assert code == 0, err
    assert row["proxy"] == trial.user_attrs["proxy"] and row["proxy_components"] == parts
    assert row["flash_bytes"] == trial.user_attrs["estimate"]["flash_bytes"]


@pytest.mark.slow
def test_trial_budget_prunes_a_training_proxy_with_the_reason(search, tmp_path: Path) -> None:
    code, _, err = search("--trials", "2", "--proxy", "short-train:steps=100000",
                            "--trial-budget", "1s")
    assert code == 0, err
    scored = [t for t in _all_trials(tmp_path) if "rejected" not in t.user_attrs]
    assert scored and all(t.state == TrialState.PRUNED for t in scored)
    for trial in scored:
        assert re.fullmatch(r"time budget 1 s ran out: stopped at step \d+ of 100000",
                            trial.user_attrs["fail_reason"])
    assert _load(tmp_path).user_attrs["tinynas"]["trial_budget_s"] == 1.0
    code, _, err = search("--trials", "2", "--proxy", "params", "--trial-budget", "1s")
    assert code == 2 and "trains nothing" in err


@pytest.mark.slow
def test_interrupt_keeps_finished_trials_and_rerun_completes(search, tmp_path: Path) -> None:
    InterruptingProxy.calls = 0  # the second scored trial is a baseline (they run first)
    args = ("--trials", "5", "--proxy", "test-interrupt", "--flash", "2MiB", "--ram", "900KiB")
    code, row, err = search(*args)
    assert code == 130 and row["interrupted"] is True
    assert "rerun the same command to continue" in " ".join(err.split())
    trials = _load(tmp_path).trials + _load(tmp_path, "search:baselines").trials
    stopped = [t for t in trials if t.state == TrialState.FAIL]
    assert len(stopped) == 1 and stopped[0].user_attrs["fail_reason"] == "interrupted"
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    kept = {trial_id_of(t): t.values for t in trials if t.state == TrialState.COMPLETE}
    code, row, err = search(*args)
    assert code == 0, err
    assert row["trials"] == 5
    baselines = _load(tmp_path, "search:baselines").trials
    by_name = {t.user_attrs["baseline"] for t in baselines if t.state == TrialState.COMPLETE}
    assert by_name == {t.user_attrs["baseline"] for t in baselines}  # the stopped one re-ran
    again = _load(tmp_path).trials + baselines
    assert {trial_id_of(t): t.values for t in again if trial_id_of(t) in kept} == kept


@pytest.mark.slow
def test_stale_running_trial_is_failed_on_restart(search, tmp_path: Path) -> None:
    assert search("--trials", "2")[0] == 0
    study = _load(tmp_path)
    ghost = study.ask()  # a worker that died: RUNNING, last heartbeat long ago
    storage_of(study).set_trial_system_attr(trial_id_of(ghost), queue.HEARTBEAT_ATTR,
                                            time.time() - 3600)
    code, row, err = search("--trials", "4")
    assert code == 0, err
    trials = _load(tmp_path).trials
    assert trials[ghost.number].state == TrialState.FAIL
    assert "no heartbeat since" in trials[ghost.number].user_attrs["fail_reason"]
    assert row["trials"] == 4 and len(trials) == 5


def test_bad_input_leaves_no_study(search, tmp_path: Path) -> None:
    code, row, err = search("--trials", "2", "--data", str(tmp_path / "nowhere"))
    assert code == 2 and row is None and "nowhere" in err
    code, _, err = search("--trials", "2", "--flash", "20KiB")
    assert code == 2 and "smallest need about flash" in err
    code, _, err = search("--timeout", "10")
    assert code == 2 and "--timeout '10'" in err
    code, _, err = search("--proxy", "nope")
    assert code == 2 and "unknown proxy 'nope'" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_latency_budget_is_a_constraint(search, tmp_path: Path) -> None:
    code, _, err = search("--trials", "6", "--latency-ms", "150")
    assert code == 0, err
    for trial in _load(tmp_path).get_trials(states=(TrialState.COMPLETE,)):
        high = trial.user_attrs["estimate"]["latency_ms_high"]
        assert trial.constraints["latency"] == pytest.approx(high - 150)
        assert ("rejected" in trial.user_attrs) == (
            not all(v <= 0 for v in trial.constraints.values()))


@pytest.mark.slow
def test_two_worker_processes_give_the_exact_count(search, tmp_path: Path) -> None:
    code, row, err = search("--trials", "6", "--workers", "2", "--quiet")
    assert code == 0, err
    trials = _load(tmp_path).trials
    assert row["trials"] == 6 and len(trials) == 6
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state.is_finished() for t in trials)


@pytest.mark.slow
def test_sigkill_while_training_then_rerun_reaches_the_count(demo_data: Path,
                                                             tmp_path: Path) -> None:
    """SIGKILL while a trial trains (short-train, after its first report) leaves it RUNNING;
    the rerun fails it once its heartbeat is stale, replaces it, and keeps every finished
    trial as it was."""
    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "nas.cli", "search", "--target", "stm32h7", "--flash", FLASH,
            "--ram", RAM, "--data", str(demo_data), "--runs-dir", str(runs), "--trials", "2",
            "--proxy", "short-train:steps=16,val_images=8,report_val_images=8", "--quiet",
            "--json"]
    env = {**os.environ, queue.STALE_ENV: "3"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        running = _wait_for_training(runs, proc)
    finally:
        proc.kill()
        proc.wait()
    before = {trial_id_of(t): (t.state, t.values) for t in _all_trials(tmp_path)
              if t.state == TrialState.COMPLETE}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["trials"] == 2
    after = {trial_id_of(t): t for t in _all_trials(tmp_path)}
    assert {i: (after[i].state, after[i].values) for i in before} == before
    killed = after[running]
    assert killed.state == TrialState.FAIL
    assert "no heartbeat since" in killed.user_attrs["fail_reason"]
    assert not [t for t in after.values() if t.state in (TrialState.RUNNING,
                                                         TrialState.WAITING)]
    counted = [t for t in _load(tmp_path).trials if queue.counts(t)]
    assert len(counted) == 2 and all(t.state.is_finished() for t in counted)
    companions = _load(tmp_path, "search:prune").trials
    assert not [t for t in companions if t.state == TrialState.RUNNING]


@pytest.mark.slow
def test_sigterm_while_training_marks_the_trial_and_exits_130(demo_data: Path,
                                                              tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "nas.cli", "search", "--target", "stm32h7", "--flash", FLASH,
            "--ram", RAM, "--data", str(demo_data), "--runs-dir", str(runs), "--trials", "2",
            "--proxy", "short-train:steps=16,val_images=8,report_val_images=8", "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        running = _wait_for_training(runs, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("note: interrupted (")
    assert "Traceback" not in err
    stopped = {trial_id_of(t): t for t in _all_trials(tmp_path)}[running]
    assert stopped.state == TrialState.FAIL and not queue.counts(stopped)
    assert stopped.user_attrs["fail_reason"] == "interrupted"
    companions = _load(tmp_path, "search:prune").trials
    assert not [t for t in companions if t.state == TrialState.RUNNING]


def _all_trials(tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    return _load(tmp_path).trials + _load(tmp_path, "search:baselines").trials


def _wait_for_training(runs: Path, proc: subprocess.Popen[bytes]) -> int:
    """The id of a trial whose short training has reported at least once, once some other
    trial has finished."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        if (runs / "tinynas.db").is_file():
            with contextlib.suppress(Exception):  # the studies may be half created yet
                found = _training_trial(runs.parent)
                if found is not None:
                    return found
        time.sleep(0.2)
    raise AssertionError("no trial was ever training")


def _training_trial(tmp_path: Path) -> int | None:
    trials = _all_trials(tmp_path)
    if not any(t.state == TrialState.COMPLETE for t in trials):
        return None
    numbers = {t.user_attrs.get("trial"): t for t in _load(tmp_path, "search:prune").trials
               if t.state == TrialState.RUNNING and t.intermediate_values}
    running = [t for t in trials if t.state == TrialState.RUNNING and t.number in numbers]
    return trial_id_of(running[0]) if running else None


@pytest.mark.slow
def test_an_export_over_the_budget_is_a_violation_and_fails_the_command(
        search, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget guarantee: the board's arena tail is made 512 KiB bigger (more than the whole
    budget) than the estimators' (as a runtime with a bigger arena would), so every exported
    model breaks the RAM budget on the measurement although the estimate fitted. The head TFLM
    allocates stays the offline plan's, so the export's plan check still passes. On a TFLM
    runtime: there the measured arena is the RAM figure (on xcubeai it is the X-CUBE-AI
    model's)."""
    from nas.export import pipeline

    real = pipeline.tail_bytes
    monkeypatch.setattr(pipeline, "tail_bytes",
                        lambda graph, tail: real(graph, tail) + 512 * 1024)
    code, row, err = search("--trials", "6", "--train-top", "1", "--train-budget", "5s",
                            "--export", "--quiet", "--runtime", "tflm-cmsis-nn")
    assert code == 1, err
    models = row["train_top"]
    assert models and all(m["fits_measured"] is False for m in models)
    for model in models:
        assert model["violations_measured"][0].startswith("RAM ")
        assert f"budget violation (measured on the export): {model['name']}: RAM " in err
        card = json.loads((Path(model["export_dir"]) / LAYOUT.card_json).read_text())
        assert card["fits"] is False
    code, out, err = cli("pareto", "--study", "search", "--json", "--runs-dir",
                         str(tmp_path / "runs"))
    assert code == 0, err
    listed = json.loads(out)
    shown = [t for t in listed["front"] + listed["baselines"] if t.get("exported")]
    assert len(shown) == len(models)
    assert all(t["exported"]["fits_measured"] is False for t in shown)
