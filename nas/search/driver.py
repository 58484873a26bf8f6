"""Runs a search: creates or continues the studies, fills the queue, runs the workers.

The parent process prepares the storage (studies, config check, stale trials, slots) and then
either evaluates trials itself (``--workers 1``) or starts K worker processes (spawn: each
rebuilds the storage from its URL, as a worker on another machine would) and shows progress by
polling the storage. Workers drain the baselines study first, then the main study's slots.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from estimators.estimate import Budgets
from estimators.targets import Target
from nas.errors import EXIT_INTERRUPTED, UsageError
from nas.search import trials
from nas.search.config import CONFIG_ATTR, SearchConfig, check_same
from nas.search.display import SearchProgress, Tally
from nas.search.objective import (
    BASELINE_ATTR,
    COMPANION_ATTR,
    TrialRunner,
    assess,
    one_line,
    worker_context,
)
from nas.search.optuna_private import (
    nsga2_offspring,
    storage_of,
    study_id_of,
    trial_id_of,
)
from nas.search.queue import (
    FAIL_REASON,
    SLOT_ATTR,
    Heartbeat,
    claim,
    counts,
    enqueue_slots,
    fail_stale,
    interrupts_deferred,
    mark_interrupted,
    study_lock,
)
from nas.search.storage import default_url, resolve_storage
from objectives.proxies import AccuracyProxy, ProxyData, get_proxy
from search_space.baselines import list_baselines
from search_space.model import DETECTION
from search_space.spec import ModelSpec

BASELINES_SUFFIX = ":baselines"
PRUNE_SUFFIX = ":prune"
NOT_FITTING_ATTR = "not_fitting"
POLL_S = 1.0
# A study created by another process gets its config attr a moment after it exists.
CONFIG_WAIT_S = 10.0


@dataclass(frozen=True)
class SearchPlan:
    """Everything a worker needs, picklable (workers are spawned)."""

    name: str
    url: str | None
    runs_dir: Path
    config: SearchConfig
    n_trials: int | None
    deadline: float | None        # time.time() after which no trial starts
    workers: int = 1

    @property
    def storage_url(self) -> str:
        return self.url or default_url(self.runs_dir)


@dataclass(frozen=True)
class Studies:
    main: optuna.Study
    baselines: optuna.Study
    prune: optuna.Study | None

    @property
    def searched(self) -> tuple[optuna.Study, optuna.Study]:
        return self.baselines, self.main


@dataclass(frozen=True)
class RunResult:
    studies: Studies
    seconds: float
    ran: int                      # trials finished by this run
    interrupted: bool
    worker_errors: tuple[str, ...] = ()


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO and warns about experimental options we chose."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Clip non-finite values")


# -- studies -----------------------------------------------------------------------------------

def prepare(plan: SearchPlan, storage: BaseStorage, target: Target, budgets: Budgets,
            needs_prune: bool) -> Studies:
    """Create or continue the studies, fail stale trials, top up the queue."""
    main, _ = create_or_load(storage, plan.name, plan.config)
    baselines, _ = create_or_load(storage, plan.name + BASELINES_SUFFIX, plan.config)
    if NOT_FITTING_ATTR not in baselines.user_attrs:
        # Under the lock, by whichever driver comes first: no baseline is queued twice
        # however many machines start at once, and one whose creator died before (or
        # while) queueing them gets them from the next run.
        with study_lock(storage, plan.name):
            enqueue_baselines(baselines, plan.config, target, budgets)
    prune = prune_study(storage, plan.name, get_proxy(plan.config.proxy)) \
        if needs_prune else None
    studies = Studies(main, baselines, prune)
    fail_stale_trials(studies)
    top_up(storage, plan, studies)
    return studies


def create_or_load(storage: BaseStorage, name: str, config: SearchConfig
                   ) -> tuple[optuna.Study, bool]:
    # Ctrl-C between creating the study and storing its config would leave a study every
    # later run refuses ("not created by tinynas search").
    with interrupts_deferred():
        try:
            study = optuna.create_study(storage=storage, study_name=name,
                                        directions=config.directions)
        except DuplicatedStudyError:
            study = None
        else:
            study.set_metric_names(config.metric_names)
            study.set_user_attr(CONFIG_ATTR, config.to_dict())
    if study is not None:
        return study, True
    study = optuna.load_study(study_name=name, storage=storage)
    check_same(name, _stored_config(storage, study, config), config)
    return study, False


def _stored_config(storage: BaseStorage, study: optuna.Study, config: SearchConfig
                   ) -> SearchConfig:
    waited = 0.0
    while CONFIG_ATTR not in study.user_attrs:
        if waited >= CONFIG_WAIT_S:
            return _adopt(storage, study, config)
        time.sleep(0.5)
        waited += 0.5
    return SearchConfig.from_dict(study.user_attrs[CONFIG_ATTR])


def _adopt(storage: BaseStorage, study: optuna.Study, config: SearchConfig) -> SearchConfig:
    """A study still without its config after the wait. Its creator was killed between the
    two steps (SIGKILL cannot be deferred): empty, with this search's directions, it is
    finished as this run's study. Anything else was made by something other than
    `tinynas search`."""
    with study_lock(storage, study.study_name):
        if CONFIG_ATTR in study.user_attrs:  # another run adopted it while this one waited
            return SearchConfig.from_dict(study.user_attrs[CONFIG_ATTR])
        directions = [d.name.lower() for d in study.directions]
        if study.user_attrs or directions != config.directions or \
                study.get_trials(deepcopy=False):
            raise UsageError(f"study {study.study_name!r} exists but was not created by "
                             "`tinynas search`; start a new study with --study NEW_NAME")
        study.set_metric_names(config.metric_names)
        study.set_user_attr(CONFIG_ATTR, config.to_dict())
    return config


def prune_study(storage: BaseStorage, name: str, proxy: AccuracyProxy) -> optuna.Study:
    """The single-objective companion study a training proxy reports to, pruned the way the
    proxy asks (``AccuracyProxy.pruning``)."""
    return optuna.create_study(storage=storage, study_name=name + PRUNE_SUFFIX,
                               direction="maximize", pruner=make_pruner(proxy),
                               load_if_exists=True)


def make_pruner(proxy: AccuracyProxy) -> optuna.pruners.BasePruner:
    if proxy.pruning == "halving":
        # Rungs at the proxy's first report and each doubling of it, in thousandths of its
        # run; half of the runs reaching a rung go on. The pruner is not stored in the study,
        # so every worker makes the same one.
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=proxy.first_rung(),
                                                      reduction_factor=2)
    # Median of the trials so far at the same step; the first 5 always run to the end so the
    # median means something.
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


def enqueue_baselines(study: optuna.Study, config: SearchConfig, target: Target,
                      budgets: Budgets) -> None:
    """One WAITING trial per detector baseline that fits the budgets; the others are listed
    in study user attr ``not_fitting`` with their violations. That attr is written last and
    marks the work done; a baseline queued by a run that stopped before it is not queued
    again. Call under :func:`study_lock`."""
    if NOT_FITTING_ATTR in study.user_attrs:
        return  # another driver did it while this one waited for the lock
    queued = {t.user_attrs.get(BASELINE_ATTR) for t in study.get_trials(deepcopy=False)}
    not_fitting = {}
    for info in list_baselines(DETECTION):
        spec = ModelSpec(config.num_classes, baseline=info.name)
        assessed = assess(spec, target, budgets, config.latency_budget_ms)
        if not assessed.fits:
            not_fitting[info.name] = "; ".join(assessed.violations)
        elif info.name not in queued:
            study.enqueue_trial({}, user_attrs={BASELINE_ATTR: info.name, SLOT_ATTR: True})
    study.set_user_attr(NOT_FITTING_ATTR, not_fitting)


def top_up(storage: BaseStorage, plan: SearchPlan, studies: Studies) -> None:
    """Replace interrupted trials: main slots up to N, and any baseline whose every trial was
    interrupted. Under the storage-wide lock, so concurrent drivers add each slot once."""
    with study_lock(storage, plan.name):
        if plan.n_trials is not None:
            enqueue_slots(studies.main, plan.n_trials)
        by_name: dict[str, list[FrozenTrial]] = defaultdict(list)
        for trial in studies.baselines.get_trials(deepcopy=False):
            by_name[trial.user_attrs.get(BASELINE_ATTR, "")].append(trial)
        for name, tries in by_name.items():
            if name and not any(counts(t) for t in tries):
                studies.baselines.enqueue_trial({}, user_attrs={BASELINE_ATTR: name,
                                                                SLOT_ATTR: True})


def load_studies(storage: BaseStorage, plan: SearchPlan, sampler: optuna.samplers.BaseSampler,
                 needs_prune: bool) -> Studies:
    main = optuna.load_study(study_name=plan.name, storage=storage, sampler=sampler)
    # Baselines have fixed specs: the sampler is never asked, so any will do.
    baselines = optuna.load_study(study_name=plan.name + BASELINES_SUFFIX, storage=storage,
                                  sampler=optuna.samplers.RandomSampler(seed=0))
    prune = prune_study(storage, plan.name, get_proxy(plan.config.proxy)) \
        if needs_prune else None
    return Studies(main, baselines, prune)


# -- samplers ----------------------------------------------------------------------------------

def make_sampler(config: SearchConfig, seed: int) -> optuna.samplers.BaseSampler:
    if config.sampler == "nsga2":
        return SharedParamsNSGAIISampler(population_size=config.population, seed=seed)
    if config.sampler == "tpe":
        # constant_liar: parallel workers see each other's running trials as poor, so they
        # do not all sample the same promising region.
        return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True,
                                          seed=seed)
    if config.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, deterministic_objective=True,
                                         warn_independent_sampling=False)
    raise UsageError(f"--sampler {config.sampler!r}: valid samplers are nsga2, tpe, gp")


class SharedParamsNSGAIISampler(optuna.samplers.NSGAIISampler):
    """NSGA-II whose crossover uses only the parameters every parent has.

    Optuna works out the search space (the parameters all complete trials share) and then
    reads the parents. With several workers, a parent can complete in between. If it lacks a
    conditional parameter of that space (``extra0_ch`` of a genome without extra layers),
    the crossover raised KeyError and the trial failed (seen with four workers). A parameter
    some parent lacks is sampled independently instead, as Optuna does for any parameter
    outside the shared space."""

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        parents = self.get_parent_population(study, self.get_trial_generation(study, trial))
        if not parents:
            return {}
        shared = {name: dist for name, dist in search_space.items()
                  if all(p.distributions.get(name) == dist for p in parents)}
        return nsga2_offspring(self, study, shared, parents)


def worker_seed(seed: int, worker: int, finished: int) -> int:
    """Distinct per worker and per resumption: the same seed on a continued study would
    otherwise replay the first run's random draws."""
    return int(np.random.SeedSequence([seed, worker, finished]).generate_state(1)[0])


# -- one worker --------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkerJob:
    plan: SearchPlan
    index: int


def build_runner(plan: SearchPlan, storage: BaseStorage, index: int
                 ) -> tuple[TrialRunner, Studies]:
    proxy, target, budgets, load_data = worker_context(plan.config)
    probe = optuna.load_study(study_name=plan.name, storage=storage)
    finished = sum(t.state.is_finished() for t in probe.get_trials(deepcopy=False))
    sampler = make_sampler(plan.config, worker_seed(plan.config.seed, index, finished))
    needs_prune = not proxy.training_free
    studies = load_studies(storage, plan, sampler, needs_prune)

    def with_results() -> ProxyData:
        # What this study's top-k training has learnt so far (a continued search's earlier
        # runs), for a proxy that refits on it.
        return dataclasses.replace(load_data(), trained=trials.trained_results(studies.main))

    runner = TrialRunner(plan.config, target, budgets, proxy, with_results, studies.prune)
    return runner, studies


def work(plan: SearchPlan, storage: BaseStorage, runner: TrialRunner, studies: Studies,
         on_done: Callable[[], None] = lambda: None) -> int:
    """Claim and evaluate trials until the queue is empty or the deadline passed; returns
    how many finished. KeyboardInterrupt marks the running trial interrupted and propagates."""
    done = 0
    with Heartbeat(storage) as heartbeat:
        runner.heartbeat = heartbeat
        while plan.deadline is None or time.time() < plan.deadline:
            picked = _claim_and_evaluate(plan, studies, runner, heartbeat)
            if picked is None:
                break
            done += 1
            on_done()
    return done


def _claim_and_evaluate(plan: SearchPlan, studies: Studies, runner: TrialRunner,
                        heartbeat: Heartbeat) -> tuple[optuna.Study, int] | None:
    """Claim the next trial and evaluate it; None when there is none. Ctrl-C at any moment
    after the claim (not only during the objective) marks the trial interrupted: a trial
    left RUNNING would hold up every run for a minute until its heartbeat went stale."""
    picked = None
    try:
        with interrupts_deferred():  # the claim completes and `picked` is set, or neither
            picked = _next_trial(plan, studies)
        if picked is not None:
            heartbeat.watch(picked[1])
            _evaluate(*picked, runner)
        return picked
    except KeyboardInterrupt:
        if picked is not None:
            with interrupts_deferred():  # a second Ctrl-C must not cut the marking short
                mark_interrupted(storage_of(picked[0]), picked[1], "interrupted")
        raise
    finally:
        if picked is not None:
            heartbeat.forget(picked[1])


def _next_trial(plan: SearchPlan, studies: Studies) -> tuple[optuna.Study, int] | None:
    for study, limit in ((studies.baselines, None), (studies.main, plan.n_trials)):
        trial_id = claim(study, limit)
        if trial_id is not None:
            return study, trial_id
    if plan.n_trials is None:  # time-limited: no slots, a new trial each time
        main = studies.main
        return main, storage_of(main).create_new_trial(study_id_of(main))
    return None


def _evaluate(study: optuna.Study, trial_id: int, runner: TrialRunner) -> None:
    # UpdateFinishedTrialError: another process ended the trial under us, taking this worker
    # for dead (no heartbeat for a minute, e.g. a suspended machine), and queued a
    # replacement. The count stays exact; this worker moves on instead of dying.
    with contextlib.suppress(UpdateFinishedTrialError):
        _evaluate_and_tell(study, trial_id, runner)


def _evaluate_and_tell(study: optuna.Study, trial_id: int, runner: TrialRunner) -> None:
    try:
        trial = optuna.Trial(study, trial_id)
        outcome = runner.run(trial)
    except UpdateFinishedTrialError:
        raise
    except Exception as exc:  # the sampler failed before the objective ran
        storage_of(study).set_trial_user_attr(trial_id, FAIL_REASON, one_line(exc))
        study.tell(trial_id, state=TrialState.FAIL, skip_if_finished=True)
        return
    study.tell(trial, list(outcome.values) if outcome.values is not None else None,
               state=outcome.state, skip_if_finished=True)


def worker_entry(job: WorkerJob) -> None:
    """A spawned worker process: its own storage connection, silent, one line on error."""
    quiet_optuna()
    _share_cores(job.plan.workers)
    # `kill` (SIGTERM) of a worker ends its trial like Ctrl-C: marked, then replaced.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        storage = resolve_storage(job.plan.url, job.plan.runs_dir)
        runner, studies = build_runner(job.plan, storage, job.index)
        work(job.plan, storage, runner, studies)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # reported by the parent in one line
        sys.stderr.write(f"tinynas search: worker {job.index}: {one_line(exc)}\n")
        sys.exit(1)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _share_cores(workers: int) -> None:
    if workers <= 1:
        return
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


# -- the run ---------------------------------------------------------------------------------

@dataclass
class _Run:
    """One invocation's state: what the progress display and the rounds share."""

    plan: SearchPlan
    storage: BaseStorage
    studies: Studies
    progress: SearchProgress
    started: float
    done_before: int

    def refresh(self, studies: Studies | None = None) -> None:
        studies = studies or self.studies
        self.progress.refresh(Tally.of(
            studies.main, studies.baselines,
            n_trials=self.plan.n_trials, deadline=self.plan.deadline,
            elapsed=time.monotonic() - self.started, done_before=self.done_before))


def run_search(plan: SearchPlan, storage: BaseStorage, studies: Studies,
               progress: SearchProgress) -> RunResult:
    before = _finished(studies)
    run = _Run(plan, storage, studies, progress, time.monotonic(),
               _finished_in(studies.main))
    errors: list[str] = []
    interrupted = False
    try:
        run.refresh()  # the display appears before the first trial ends
        while True:
            errors += _round(run)
            if not _settle(run):
                break
    except KeyboardInterrupt:
        interrupted = True
    run.refresh()
    return RunResult(studies, time.monotonic() - run.started, _finished(studies) - before,
                     interrupted, tuple(errors))


def _round(run: _Run) -> list[str]:
    if run.plan.workers == 1:
        runner, studies = build_runner(run.plan, run.storage, 0)
        work(run.plan, run.storage, runner, studies, on_done=lambda: run.refresh(studies))
        return []
    return _run_processes(run)


def _run_processes(run: _Run) -> list[str]:
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=worker_entry, args=(WorkerJob(run.plan, i),),
                             name=f"tinynas-worker-{i}") for i in range(run.plan.workers)]
    for proc in procs:
        proc.start()
    try:
        while any(p.is_alive() for p in procs):
            run.refresh()
            for proc in procs:
                proc.join(timeout=POLL_S / len(procs))
    except KeyboardInterrupt:
        _stop_workers(procs)
        raise
    return [f"worker {i} stopped with exit code {p.exitcode}"
            for i, p in enumerate(procs) if p.exitcode not in (0, EXIT_INTERRUPTED)]


def _stop_workers(procs: list[multiprocessing.process.BaseProcess]) -> None:
    """Ctrl-C reaches the whole process group; a worker that missed it is told again, and
    one that still hangs is terminated (its trial then goes stale and is replaced)."""
    for proc in procs:
        proc.join(timeout=3)
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
    for proc in procs:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()


def _settle(run: _Run) -> bool:
    """After a round: wait for trials other processes still run. True when some of them
    went stale and were replaced by new slots (run another round)."""
    searched = run.studies.searched
    while run.plan.deadline is None or time.time() < run.plan.deadline:
        running = [t for s in searched
                   for t in s.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        if not running:
            return False
        if fail_stale_trials(run.studies):
            top_up(run.storage, run.plan, run.studies)
            return True
        run.refresh()
        time.sleep(POLL_S)
    return False


def fail_stale_trials(studies: Studies) -> bool:
    """Fail the trials of dead workers; True when a searched one was failed (it needs a
    replacement). A training proxy's companion trial is failed too when it is stale or its
    trial ended without it: a worker killed mid-training leaves both RUNNING, and the two
    heartbeats, stamped a moment apart, need not go stale in the same check."""
    failed = fail_stale(studies.searched)
    if studies.prune is not None:
        fail_stale([studies.prune])
        _fail_orphan_companions(studies.main, studies.prune)
    return bool(failed)


def _fail_orphan_companions(main: optuna.Study, prune: optuna.Study) -> None:
    ended = {t.number for t in main.get_trials(deepcopy=False) if t.state.is_finished()}
    for companion in prune.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        number = companion.user_attrs.get(COMPANION_ATTR)
        if number in ended:
            mark_interrupted(storage_of(prune), trial_id_of(companion),
                             f"worker stopped (trial {number} ended without it)")


def _finished(studies: Studies) -> int:
    return sum(_finished_in(s) for s in studies.searched)


def _finished_in(study: optuna.Study) -> int:
    return sum(t.state.is_finished() and counts(t) for t in study.get_trials(deepcopy=False))

