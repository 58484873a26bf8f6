"""Every Optuna internal the search uses is still there (``nas/search/optuna_private.py``).

An Optuna upgrade that renames or removes one fails ``test_optuna_still_has[...]`` with the
internal's name in the test id and in the message; the other tests keep the internals in that
one module and the storage wrapper in step with Optuna's cache.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.storages import BaseStorage, RDBStorage

from nas.search import optuna_private
from nas.search.optuna_private import OptunaInternalsError

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Probe:
    """One internal: the optuna_private function that reads it and a check on real objects
    that it still means what the search takes it to mean."""

    function: str
    check: Callable[[optuna.Study], None]


def _storage(study: optuna.Study) -> None:
    storage = optuna_private.storage_of(study)
    assert isinstance(storage, BaseStorage)
    assert storage.get_study_id_from_name(study.study_name) == \
        optuna_private.study_id_of(study)


def _study_id(study: optuna.Study) -> None:
    storage = optuna_private.storage_of(study)
    numbers = [t.number for t in storage.get_all_trials(optuna_private.study_id_of(study))]
    assert numbers == [t.number for t in study.trials]


def _frozen_trial_id(study: optuna.Study) -> None:
    storage = optuna_private.storage_of(study)
    for trial in study.trials:
        assert storage.get_trial(optuna_private.trial_id_of(trial)).number == trial.number


def _trial_id(study: optuna.Study) -> None:
    trial = study.ask()
    frozen = optuna_private.storage_of(study).get_trial(optuna_private.trial_id_of(trial))
    assert frozen.number == trial.number


def _nsga2_offspring(study: optuna.Study) -> None:
    # No mutation: the child then holds every parameter, drawn from the parents.
    sampler = optuna.samplers.NSGAIISampler(population_size=2, seed=0, mutation_prob=0.0)
    space = {"x": FloatDistribution(0.0, 1.0), "n": IntDistribution(0, 9)}
    parents = study.trials[:2]
    child = optuna_private.nsga2_offspring(sampler, study, space, parents)
    assert set(child) == {"x", "n"}
    assert child["n"] in {p.params["n"] for p in parents}


def _rdb_cache_calls(study: optuna.Study) -> None:
    assert all(callable(getattr(RDBStorage, n)) for n in optuna_private.rdb_cache_calls())


PROBES = {
    "Study._storage": Probe("storage_of", _storage),
    "Study._study_id": Probe("study_id_of", _study_id),
    "FrozenTrial._trial_id": Probe("trial_id_of", _frozen_trial_id),
    "Trial._trial_id": Probe("trial_id_of", _trial_id),
    "NSGAIISampler._child_generation_strategy": Probe("nsga2_offspring", _nsga2_offspring),
    "RDBStorage private methods its cache calls": Probe("rdb_cache_calls", _rdb_cache_calls),
}


@pytest.fixture
def study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for _ in range(3):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.suggest_int("n", 0, 9)
        study.tell(trial, [x, 1.0 - x])
    return study


@pytest.mark.parametrize("internal", PROBES)
def test_optuna_still_has(internal: str, study: optuna.Study):
    try:
        PROBES[internal].check(study)
    except (OptunaInternalsError, AttributeError, TypeError) as exc:
        pytest.fail(f"Optuna {optuna.__version__} changed {internal}, which tinynas uses "
                    f"through nas/search/optuna_private.py: {exc}")


def test_every_function_of_the_module_has_a_probe():
    functions = {name for name, f in inspect.getmembers(optuna_private, inspect.isfunction)
                 if f.__module__ == optuna_private.__name__ and not name.startswith("_")}
    assert functions == {p.function for p in PROBES.values()}


def test_a_missing_internal_is_named():
    with pytest.raises(OptunaInternalsError, match=r"has no Study\._storage, which tinynas"):
        optuna_private.storage_of(object())  # type: ignore[arg-type]
    with pytest.raises(OptunaInternalsError, match=r"has no object\._trial_id"):
        optuna_private.trial_id_of(object())  # type: ignore[arg-type]


def test_the_deferring_storage_wraps_every_private_method_the_cache_calls():
    # Optuna puts a cache in front of every RDBStorage; what the cache calls on it besides
    # the public storage API must run with Ctrl-C deferred too (nas.search.storage).
    cache = importlib.import_module("optuna.storages._cached_storage")
    called = set(re.findall(r"self\._backend\.(\w+)", inspect.getsource(cache)))
    public = {n for n in vars(BaseStorage) if not n.startswith("_")}
    # Getters of settings held in memory: nothing to interrupt.
    harmless = {"get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}
    unwrapped = called - public - harmless - set(optuna_private.RDB_CACHE_CALLS)
    assert not unwrapped, (f"Optuna {optuna.__version__}'s cache calls RDBStorage."
                           f"{', '.join(sorted(unwrapped))}: add to RDB_CACHE_CALLS")


# Optuna objects' private attributes, read anywhere but optuna_private. A class's own
# ``self._storage`` (the heartbeat thread's) is not Optuna's.
_PRIVATE_USE = re.compile(r"(?<!self)\._storage\b|\._(study_id|trial_id|backend)\b"
                          r"|\._child_generation_strategy\b|optuna(\.\w+)*\._\w+")


def test_only_optuna_private_reads_optuna_internals():
    found = []
    for path in sorted((ROOT / "nas").rglob("*.py")):
        if path.name == "optuna_private.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _PRIVATE_USE.search(line.split("#")[0]):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "use nas/search/optuna_private.py:\n" + "\n".join(found)
