"""One trial of the search: genome (or baseline) -> estimate -> constraints -> proxy score.

Cheap first: the estimators decide feasibility before anything is built or trained. A genome
that breaks a budget is recorded with its figures and the violated limits (user attr
``rejected``) and gets proxy -inf, so the sampler learns where the wall is without paying for
a proxy. Only feasible genomes are scored by the accuracy proxy; a training proxy reports to a
single-objective companion trial in ``NAME:prune`` (Optuna prunes only single-objective
studies) and stops early when its pruner says so.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from estimators.estimate import Budgets, Estimate, estimate
from estimators.targets import Target
from estimators.xcubeai import figures_dict
from nas.search.config import SearchConfig
from nas.search.optuna_private import trial_id_of
from nas.search.queue import FAIL_REASON, Heartbeat
from nas.search.scoring import SCORE, checked_components
from objectives.proxies import AccuracyProxy, ProxyData, ProxyOutOfTime, ProxyPruned, get_proxy
from search_space.sampling import sample_genome
from search_space.space import SearchSpace
from search_space.spec import ModelSpec

BASELINE_ATTR = "baseline"
COMPANION_ATTR = "trial"


@dataclass(frozen=True)
class Outcome:
    """How a trial ended: the state and, when COMPLETE, the objective values."""

    state: TrialState
    values: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Assessment:
    """An estimate judged against the budgets, latency included."""

    estimate: Estimate
    violations: tuple[str, ...]
    input_size: int

    @property
    def fits(self) -> bool:
        return not self.violations


def assess(spec: ModelSpec, target: Target, budgets: Budgets,
           latency_budget_ms: float | None) -> Assessment:
    arch = spec.lower()
    est = estimate(arch.graph, target, budgets, backbone_scope=arch.backbone_scope)
    found = list(est.violations)
    # A latency budget means "fits for sure": judged on the band's high end.
    if latency_budget_ms is not None and est.latency.high_ms > latency_budget_ms:
        found.append(f"latency {est.latency.high_ms:.1f} ms (band high) > budget "
                     f"{latency_budget_ms:g} ms")
    return Assessment(est, tuple(found), arch.input_size)


def estimate_attr(spec: ModelSpec, assessed: Assessment) -> dict[str, Any]:
    est = assessed.estimate
    genome = spec.genome
    return {
        "params": est.params, "macs": est.macs, "flash_bytes": est.flash_bytes,
        "ram_bytes": est.ram_bytes, "tflite_bytes_estimated": est.tflite_bytes_estimated,
        "arena_bytes_estimated": est.arena_bytes_estimated, "latency_ms": est.latency.ms,
        "latency_ms_low": est.latency.low_ms, "latency_ms_high": est.latency.high_ms,
        "input_size": assessed.input_size,
        "head": genome.head.kind if genome is not None else None,
        "block_mix": block_mix(spec), "fits": assessed.fits,
        "violations": list(assessed.violations),
        # The runtime's four memory figures with their bands (flash / RAM above are their
        # high-end sums): on xcubeai the X-CUBE-AI model's, on TFLM the arena plan's parts.
        "memory_model": est.memory_model, **figures_dict(est.memory),
    }


def block_mix(spec: ModelSpec) -> str | None:
    """Stages per block type, e.g. "lb 2, dlb_skip 2"; None for a non-genome baseline."""
    if spec.genome is None:
        return None
    mix = Counter(stage.block for stage in spec.genome.stages)
    return ", ".join(f"{block} {n}" for block, n in mix.items())


@dataclass
class TrialRunner:
    """Evaluates trials of one study config inside one worker (the dataset is read once,
    when the first feasible trial needs the proxy)."""

    config: SearchConfig
    target: Target
    budgets: Budgets
    proxy: AccuracyProxy
    load_data: Callable[[], ProxyData]
    prune_study: optuna.Study | None = None
    heartbeat: Heartbeat | None = None
    _data: ProxyData | None = field(default=None, init=False)
    _space: SearchSpace | None = field(default=None, init=False)

    @property
    def space(self) -> SearchSpace:
        if self._space is None:
            self._space = self.config.search_space()
        return self._space

    def spec_for(self, trial: optuna.Trial) -> ModelSpec:
        baseline = trial.user_attrs.get(BASELINE_ATTR)
        if baseline is not None:
            return ModelSpec(self.config.num_classes, baseline=baseline)
        genome = sample_genome(trial, self.space)
        trial.set_user_attr("genome", genome.to_dict())
        return ModelSpec(self.config.num_classes, genome=genome, name=f"trial-{trial.number}")

    def run(self, trial: optuna.Trial) -> Outcome:
        """Everything but KeyboardInterrupt ends as an outcome: a trial that raises is FAIL
        with its reason, and the search goes on."""
        try:
            return self._run(trial)
        except ProxyPruned as exc:
            trial.set_user_attr(FAIL_REASON, f"pruned: {exc}")
            return Outcome(TrialState.PRUNED)
        except ProxyOutOfTime as exc:
            trial.set_user_attr(FAIL_REASON, f"time budget {self.config.trial_budget_s:g} s "
                                f"ran out: {exc}")
            return Outcome(TrialState.PRUNED)
        except Exception as exc:  # any bug of one candidate must not stop all
            trial.set_user_attr(FAIL_REASON, one_line(exc))
            return Outcome(TrialState.FAIL)

    def _run(self, trial: optuna.Trial) -> Outcome:
        spec = self.spec_for(trial)
        trial.set_user_attr("spec", spec.to_dict())
        assessed = assess(spec, self.target, self.budgets, self.config.latency_budget_ms)
        trial.set_user_attr("estimate", estimate_attr(spec, assessed))
        self._constrain(trial, assessed.estimate)
        if not assessed.fits:
            trial.set_user_attr("rejected", "; ".join(assessed.violations))
            return Outcome(TrialState.COMPLETE, self._values(-math.inf, assessed.estimate))
        started = time.monotonic()
        parts = self._components(trial, spec)
        trial.set_user_attr("proxy", parts[SCORE])
        trial.set_user_attr("proxy_components", parts)
        trial.set_user_attr("proxy_seconds", round(time.monotonic() - started, 3))
        return Outcome(TrialState.COMPLETE, self._values(parts[SCORE], assessed.estimate))

    def _constrain(self, trial: optuna.Trial, est: Estimate) -> None:
        trial.set_constraint("flash", est.flash_bytes - self.budgets.flash_bytes)
        trial.set_constraint("ram", est.ram_bytes - self.budgets.ram_bytes)
        if self.config.latency_budget_ms is not None:
            trial.set_constraint("latency", est.latency.high_ms - self.config.latency_budget_ms)

    def _values(self, proxy: float, est: Estimate) -> tuple[float, ...]:
        by_name = {"proxy": proxy, "latency": est.latency.ms, "flash": float(est.flash_bytes),
                   "ram": float(est.ram_bytes)}
        return tuple(by_name[o] for o in self.config.objectives)

    def data(self) -> ProxyData:
        if self._data is None:
            self._data = self.load_data()
        return self._data

    def timed_data(self) -> ProxyData:
        """The data with this trial's deadline (the clock starts once the data is read)."""
        data, budget = self.data(), self.config.trial_budget_s
        if budget is None:
            return data
        return dataclasses.replace(data, deadline=time.monotonic() + budget)

    def _components(self, trial: optuna.Trial, spec: ModelSpec) -> dict[str, Any]:
        """The proxy's parts, score included (:func:`checked_components`: a diverged score
        fails the trial); a training proxy reports to its companion trial as it goes."""
        if self.proxy.training_free or self.prune_study is None:
            return checked_components(self.proxy, spec, self.timed_data())
        companion = self.prune_study.ask()
        companion.set_user_attr(COMPANION_ATTR, trial.number)
        if self.heartbeat is not None:
            self.heartbeat.watch(trial_id_of(companion))
        state, value = TrialState.FAIL, None
        try:
            parts = checked_components(self.proxy, spec, self.timed_data(),
                                       _reporter(companion))
            state, value = TrialState.COMPLETE, parts[SCORE]
            return parts
        except (ProxyPruned, ProxyOutOfTime):
            state = TrialState.PRUNED
            raise
        finally:
            if self.heartbeat is not None:
                self.heartbeat.forget(trial_id_of(companion))
            self.prune_study.tell(companion, value if state == TrialState.COMPLETE else None,
                                  state=state, skip_if_finished=True)


def _reporter(companion: optuna.Trial) -> Callable[[int, float], bool]:
    def report(step: int, value: float) -> bool:
        companion.report(value, step)
        return companion.should_prune()

    return report


def one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def load_proxy_data(config: SearchConfig) -> ProxyData:
    train, val = config.open_splits()
    return ProxyData(train, val, config.seed)


def worker_context(config: SearchConfig
                   ) -> tuple[AccuracyProxy, Target, Budgets, Callable[[], ProxyData]]:
    target, budgets = config.target_and_budgets()
    return get_proxy(config.proxy), target, budgets, lambda: load_proxy_data(config)
