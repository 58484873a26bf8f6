"""Read a search study's trials into plain rows: the one place that knows the user-attr layout.

Views (``pareto``, ``show``), plots and the top-k step read trials only through here, so the
study layout of ``.notes/search_design.md`` ("Trial user attrs") is interpreted once. Every
row turns into a JSON-safe dict: non-finite floats (an infeasible trial's proxy is -inf)
become null, because ``json.dumps`` would otherwise write ``-Infinity``, which is not JSON.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.errors import UsageError
from nas.search.config import CONFIG_ATTR, DEMO_DATA
from nas.search.queue import FAIL_REASON
from search_space.baselines import BaselineError
from search_space.genome import GenomeError
from search_space.spec import ModelSpec

# User attrs of the layout (written by the objective and the top-k step).
SPEC, GENOME, BASELINE, ESTIMATE = "spec", "genome", "baseline", "estimate"
REJECTED, PROXY = "rejected", "proxy"
PROXY_COMPONENTS = "proxy_components"  # the proxy's parts and score; None before issue 17
TRAINED, EXPORTED, EXPORT_ERROR = "trained", "exported", "export_error"
TRAIN_ERROR = "train_error"  # top-k training that failed (e.g. NaN loss): a result, not a crash
# Optuna refuses to change a finished trial (UpdateFinishedTrialError, on every storage), so the
# top-k step records a trial's trained/exported figures as a *study* user attr
# "tinynas_result:N" = {"trained": ..., "exported": ... | "export_error": ...}, one key per
# trial (workers never write the same key). Rows merge it over the trial's own attrs.
RESULT_PREFIX = "tinynas_result:"
RESULT_KEYS = (TRAINED, EXPORTED, EXPORT_ERROR, TRAIN_ERROR)


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, containers copied."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    return None


def _int(value: Any) -> int | None:
    number = _finite(value)
    return None if number is None else int(number)


def constraints_hold(trial: FrozenTrial) -> bool | None:
    """All constraints <= 0 (Optuna's convention); None when the trial recorded none (it
    failed or was pruned before the estimators ran)."""
    values = trial.constraints or {}
    if not values:
        return None
    return all(v is not None and v <= 0 for v in values.values())


def feasible(trial: FrozenTrial) -> bool:
    """A finished trial that fits every budget and has a real proxy score."""
    if trial.state != TrialState.COMPLETE or not constraints_hold(trial):
        return False
    return _proxy(trial) is not None


def _proxy(trial: FrozenTrial) -> float | None:
    # The objective stores the proxy as a user attr too; the first value is the fallback for
    # studies written by hand (tests) or older runs.
    if PROXY in trial.user_attrs:
        return _finite(trial.user_attrs[PROXY])
    return _finite(trial.values[0]) if trial.values else None


@dataclass(frozen=True)
class TrialRow:
    """One trial as the views show it; ``None`` where the trial has no such figure."""

    trial: int
    state: str
    proxy: float | None
    latency_ms: float | None
    latency_ms_low: float | None
    latency_ms_high: float | None
    flash_bytes: int | None
    ram_bytes: int | None
    macs: int | None
    params: int | None
    input_size: int | None
    head: str | None
    block_mix: str | None
    fits: bool | None
    feasible: bool
    violations: tuple[str, ...] = ()
    constraints: dict[str, float] = field(default_factory=dict)
    rejected: str | None = None
    fail_reason: str | None = None
    baseline: str | None = None
    genome: dict[str, Any] | None = None
    spec: dict[str, Any] | None = None
    trained: dict[str, Any] | None = None
    exported: dict[str, Any] | None = None
    export_error: str | None = None
    train_error: str | None = None
    proxy_components: dict[str, Any] | None = None

    @classmethod
    def from_trial(cls, trial: FrozenTrial, result: Mapping[str, Any] | None = None
                   ) -> TrialRow:
        """``result``: the trial's top-k record (:func:`results`), merged over its attrs."""
        attrs = {**trial.user_attrs, **(result or {})}
        est: Mapping[str, Any] = attrs.get(ESTIMATE) or {}
        fits = constraints_hold(trial)
        if fits is None and ESTIMATE in attrs:
            fits = bool(est.get("fits"))
        return cls(
            trial=trial.number, state=trial.state.name, proxy=_proxy(trial),
            latency_ms=_latency(trial, est), latency_ms_low=_finite(est.get("latency_ms_low")),
            latency_ms_high=_finite(est.get("latency_ms_high")),
            flash_bytes=_int(est.get("flash_bytes")), ram_bytes=_int(est.get("ram_bytes")),
            macs=_int(est.get("macs")), params=_int(est.get("params")),
            input_size=_int(est.get("input_size")), head=est.get("head"),
            block_mix=est.get("block_mix"), fits=fits, feasible=feasible(trial),
            violations=tuple(est.get("violations") or ()),
            constraints={k: float(v) for k, v in (trial.constraints or {}).items()},
            rejected=attrs.get(REJECTED), fail_reason=attrs.get(FAIL_REASON),
            baseline=attrs.get(BASELINE), genome=attrs.get(GENOME), spec=attrs.get(SPEC),
            trained=attrs.get(TRAINED), exported=attrs.get(EXPORTED),
            export_error=attrs.get(EXPORT_ERROR), train_error=attrs.get(TRAIN_ERROR),
            proxy_components=attrs.get(PROXY_COMPONENTS))

    @property
    def name(self) -> str:
        """How tables and plots label the trial: a baseline by its name."""
        return self.baseline or f"#{self.trial}"

    def budget(self, key: str) -> float | None:
        """The budget behind a constraint: the constraint is ``figure - budget``."""
        figure = {"flash": self.flash_bytes, "ram": self.ram_bytes,
                  "latency": self.latency_ms_high}.get(key)
        if figure is None or key not in self.constraints:
            return None
        return figure - self.constraints[key]

    def budget_used(self, key: str) -> float | None:
        """The share of the ``flash``/``ram`` budget this trial's estimate takes (1.0 = all)."""
        budget = self.budget(key)
        figure = self.flash_bytes if key == "flash" else self.ram_bytes
        if budget is None or figure is None or budget <= 0:
            return None
        return figure / budget

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


def _latency(trial: FrozenTrial, est: Mapping[str, Any]) -> float | None:
    if "latency_ms" in est:
        return _finite(est["latency_ms"])
    # Hand-built studies may carry the value only: latency is the second objective.
    return _finite(trial.values[1]) if trial.values and len(trial.values) > 1 else None


def results(study: optuna.Study) -> dict[int, dict[str, Any]]:
    """The top-k records of ``study`` by trial number."""
    found = {}
    for key, value in study.user_attrs.items():
        if key.startswith(RESULT_PREFIX) and isinstance(value, dict):
            with contextlib.suppress(ValueError):
                found[int(key[len(RESULT_PREFIX):])] = value
    return found


def trained_results(study: optuna.Study) -> tuple[tuple[ModelSpec, float], ...]:
    """The genomes of ``study`` its top-k training has trained, with their val AP50, by trial
    number (what a proxy that learns from results refits on)."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    found = []
    for number, result in sorted(results(study).items()):
        ap50 = (result.get(TRAINED) or {}).get("ap50")
        spec = by_number[number].user_attrs.get(SPEC) if number in by_number else None
        if isinstance(ap50, float) and math.isfinite(ap50) and isinstance(spec, dict):
            found.append((ModelSpec.from_dict(spec), float(ap50)))
    return tuple(found)


def record_result(study: optuna.Study, number: int, result: Mapping[str, Any]) -> None:
    """Store trial ``number``'s top-k record (replacing any earlier one)."""
    study.set_user_attr(f"{RESULT_PREFIX}{number}",
                        json_safe({k: v for k, v in result.items() if k in RESULT_KEYS}))


def row_of(study: optuna.Study, trial: FrozenTrial) -> TrialRow:
    return TrialRow.from_trial(trial, results(study).get(trial.number))


def rows(study: optuna.Study, include_waiting: bool = False) -> list[TrialRow]:
    """Every trial of ``study`` in number order. WAITING trials are the driver's unclaimed
    slots: nothing to show yet, so they are left out unless asked for."""
    trials, done = study.get_trials(deepcopy=False), results(study)
    return [TrialRow.from_trial(t, done.get(t.number))
            for t in sorted(trials, key=lambda t: t.number)
            if include_waiting or t.state != TrialState.WAITING]


def front_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The feasible Pareto front over the study's own objectives, fastest first (the progress
    display, the views and the top-k step all read it here, so they never disagree).

    Optuna's ``best_trials`` is the front of the COMPLETE trials that meet every constraint.
    For every trial the objective writes, that is exactly the :func:`feasible` front: each
    COMPLETE trial records its constraints, and one that fits has a finite proxy (a rejected
    one has -inf and breaks a constraint). :func:`feasible` still filters it, for studies made
    otherwise (by hand, or before constraints were recorded): there Optuna takes a COMPLETE
    trial with no constraints for feasible, and in a study where no trial has any, every
    COMPLETE trial, -inf proxy included.
    """
    best = [t for t in study.best_trials if feasible(t)]
    return sorted(best, key=lambda t: (_latency(t, t.user_attrs.get(ESTIMATE) or {})
                                       or math.inf, t.number))


def front(study: optuna.Study) -> list[TrialRow]:
    """:func:`front_trials` as rows, fastest first."""
    done = results(study)
    return [TrialRow.from_trial(t, done.get(t.number)) for t in front_trials(study)]


def find_trial(study: optuna.Study, number: int) -> FrozenTrial | None:
    for trial in study.get_trials(deepcopy=False):
        if trial.number == number:
            return trial
    return None


def find_baseline(study: optuna.Study, name: str) -> FrozenTrial | None:
    """The baselines-study trial recording baseline ``name`` (the latest, if rerun)."""
    found = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(BASELINE) == name]
    return max(found, key=lambda t: t.number) if found else None


def baseline_names(study: optuna.Study) -> list[str]:
    names = {t.user_attrs.get(BASELINE) for t in study.get_trials(deepcopy=False)}
    return sorted(n for n in names if isinstance(n, str))


def number_ranges(numbers: Sequence[int]) -> str:
    """'0-11, 14, 20-21': the trial numbers an error message lists compactly."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans) or "none"


def trial_reason(trial: FrozenTrial) -> str:
    """Why a trial has no usable model, in a few words."""
    attrs = trial.user_attrs
    state = _STATE_WORDS.get(trial.state, trial.state.name.lower())
    reason = attrs.get(FAIL_REASON) or attrs.get(REJECTED)
    if not reason:
        return state
    # "pruned: AP50 0.03 at step 50" already says its state.
    return reason if str(reason).startswith(f"{state}:") else f"{state}: {reason}"


_STATE_WORDS = {TrialState.FAIL: "failed", TrialState.PRUNED: "pruned",
                TrialState.RUNNING: "still running", TrialState.WAITING: "waiting"}


def checkpoint_of(row: TrialRow) -> Path | None:
    """The trial's trained checkpoint (``trained.checkpoint``), when it is still on disk."""
    path = (row.trained or {}).get("checkpoint")
    return Path(path) if isinstance(path, str) and Path(path).is_file() else None


def export_dir_of(study: optuna.Study, number: int) -> Path:
    """Trial ``number``'s export directory (``search --export``); a UsageError says why not."""
    trial = find_trial(study, number)
    where = f"trial {number} of study '{study.study_name}'"
    if trial is None:
        raise UsageError(f"study '{study.study_name}' has no trial {number}")
    exported = row_of(study, trial).exported or {}
    out_dir = exported.get("out_dir")
    if not out_dir or not Path(out_dir).is_dir():
        why = f"its export {out_dir} is gone" if out_dir else "it was never exported"
        raise UsageError(f"{where}: {why}; export it with `tinynas search ... --train-top K "
                         "--export` or give the .tflite path")
    return Path(out_dir)


@dataclass(frozen=True)
class TrialModel:
    """What ``--study S --trial N`` names: the trial's network and, once trained, its weights."""

    study: str
    trial: int
    spec: ModelSpec
    checkpoint: Path | None
    data_root: str | None = None  # the dataset the search scored it on; None: the demo data
    config: Mapping[str, Any] | None = None  # the study's SearchConfig.to_dict()

    @property
    def label(self) -> str:
        return f"trial {self.trial} of study '{self.study}'"


def trial_model(study: optuna.Study, number: int, need_checkpoint: bool,
                need_fit: bool = False) -> TrialModel:
    """The model of trial ``number``; a UsageError (one line, exit 2) names the trial and why
    it cannot serve: unknown, failed/pruned, still running, never trained (with
    ``need_checkpoint``) or, with ``need_fit``, rejected for breaking the study's budget: a
    result the samplers learn from, not a model to deploy."""
    trial = find_trial(study, number)
    where = f"trial {number} of study '{study.study_name}'"
    if trial is None:
        done = [t.number for t in study.get_trials(deepcopy=False)]
        raise UsageError(f"--trial {number}: study '{study.study_name}' has no such trial; its "
                         f"trials are {number_ranges(done)}")
    if trial.state != TrialState.COMPLETE:
        raise UsageError(f"{where} is {trial_reason(trial)}; name a COMPLETE trial (see "
                         f"`tinynas pareto --study {study.study_name} --all`)")
    try:
        spec = ModelSpec.from_dict(trial.user_attrs[SPEC])
    except (KeyError, GenomeError, BaselineError) as exc:
        raise UsageError(f"{where} records no usable model spec ({exc})") from None
    row = row_of(study, trial)
    checkpoint = checkpoint_of(row)
    if need_checkpoint and checkpoint is None:
        why = ("its checkpoint is gone: " + str(row.trained.get("checkpoint"))
               if row.trained else "it was never trained")
        raise UsageError(f"{where}: {why}; train it with `tinynas search ... --train-top K` "
                         f"or `tinynas train --study {study.study_name} --trial {number} "
                         "--out DIR`, then name DIR/last.pt")
    if need_fit and constraints_hold(trial) is False:
        why = trial.user_attrs.get(REJECTED) or "over the study's budget"
        raise UsageError(f"{where} was rejected by the search ({why}); name a trial that fits "
                         f"(`tinynas pareto --study {study.study_name}`), or export its genome "
                         "with --genome FILE and your own --flash/--ram")
    config = study.user_attrs.get(CONFIG_ATTR)
    return TrialModel(study.study_name, number, spec, checkpoint, study_data_root(study),
                      config if isinstance(config, Mapping) else None)


def study_data_root(study: optuna.Study) -> str | None:
    """The dataset directory of the study's config; None for the built-in demo data (its
    cache path differs between machines, so the config records it by name)."""
    config = study.user_attrs.get(CONFIG_ATTR)
    data = config.get("data") if isinstance(config, Mapping) else None
    return data if isinstance(data, str) and data != DEMO_DATA else None
