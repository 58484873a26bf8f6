"""The Optuna internals the search relies on, each behind one function (checked on Optuna 5.0.0).

Optuna's public API works on trials a :class:`~optuna.Study` asked for itself. The search
also works on trials by id across processes: a worker claims a WAITING slot another process
queued, marks a dead worker's trial interrupted, stamps heartbeats (see
:mod:`nas.search.queue`). That needs the study's storage and the storage's ids, which Optuna
keeps in private attributes; the NSGA-II crossover on shared parameters and the storage
wrapper that defers Ctrl-C need two more. They are read here and nowhere else, so an Optuna
upgrade that renames one breaks one module: ``tests/nas/search/test_optuna_private.py`` then
fails naming it, and at run time each function raises :class:`OptunaInternalsError` naming it
instead of an ``AttributeError`` deep inside a trial.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial

# The RDBStorage methods outside the BaseStorage API that Optuna's cache in front of an
# RDBStorage (optuna.storages._CachedStorage) calls: the Ctrl-C-deferring storage must wrap
# them as well as the public ones (nas.search.storage).
RDB_CACHE_CALLS = ("_create_new_trial", "_set_trial_param", "_get_best_trial_id",
                   "_get_trials", "_get_stale_trial_ids", "record_heartbeat")


class OptunaInternalsError(RuntimeError):
    """An Optuna internal tinynas uses is gone (an Optuna upgrade renamed or removed it)."""


def _internal(owner: object, name: str, where: str) -> Any:
    try:
        return getattr(owner, name)
    except AttributeError:
        raise OptunaInternalsError(
            f"Optuna {optuna.__version__} has no {where}.{name}, which tinynas uses (checked "
            f"on Optuna 5.0.0); adapt nas/search/optuna_private.py") from None


def storage_of(study: optuna.Study) -> BaseStorage:
    """``Study._storage``: the storage ``study`` reads and writes (to act on trials by id)."""
    return _internal(study, "_storage", "Study")


def study_id_of(study: optuna.Study) -> int:
    """``Study._study_id``: the study's id in its storage."""
    return _internal(study, "_study_id", "Study")


def trial_id_of(trial: FrozenTrial | optuna.Trial) -> int:
    """``FrozenTrial._trial_id`` / ``Trial._trial_id``: the trial's id in its storage, unique
    across the storage's studies (a trial number is unique only within its study)."""
    return _internal(trial, "_trial_id", type(trial).__name__)


def nsga2_offspring(sampler: optuna.samplers.NSGAIISampler, study: optuna.Study,
                    search_space: dict[str, BaseDistribution],
                    parents: list[FrozenTrial]) -> dict[str, Any]:
    """``NSGAIISampler._child_generation_strategy``: the sampler's crossover and mutation of
    ``parents`` over ``search_space`` (the parameters of one child)."""
    strategy = _internal(sampler, "_child_generation_strategy", "NSGAIISampler")
    return strategy(study, search_space, parents)


def rdb_cache_calls() -> tuple[str, ...]:
    """:data:`RDB_CACHE_CALLS`, each checked to be a method of ``RDBStorage``."""
    for name in RDB_CACHE_CALLS:
        _internal(RDBStorage, name, "RDBStorage")
    return RDB_CACHE_CALLS
