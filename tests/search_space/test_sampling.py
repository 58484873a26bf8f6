from __future__ import annotations

import optuna
import pytest

from search_space.genome import Genome
from search_space.sampling import max_extras, random_genomes, sample_genome


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    s.optimize(lambda t: sample_genome(t).num_priors(), n_trials=60)
    return s


def test_fixed_trial_rebuilds_an_equal_genome(study):
    for trial in study.trials:
        original = sample_genome(optuna.trial.FixedTrial(trial.params))
        assert sample_genome(optuna.trial.FixedTrial(dict(trial.params))) == original
        # And through JSON, as a study stores it.
        assert Genome.from_json(original.to_json()) == original


def test_space_is_covered(study):
    genomes = [sample_genome(optuna.trial.FixedTrial(t.params)) for t in study.trials]
    assert {g.head.kind for g in genomes} == {"ssd", "ssdlite"}
    assert {s.block for g in genomes for s in g.stages} == {"lb", "dlb", "dlb_skip"}
    assert {s.kernel for g in genomes for s in g.stages} == {3, 5}
    assert len({g.resolution for g in genomes}) >= 6
    assert all(g.channel_divisor == 8 for g in genomes)


def test_max_extras():
    assert max_extras(96) == 2  # 3 -> 2 -> 1
    assert max_extras(128) == 2  # 4 -> 2 -> 1
    assert max_extras(256) == 3  # 8 -> 4 -> 2 -> 1
    assert max_extras(320) == 4  # 10 -> 5 -> 3 -> 2 (capped)


def test_random_genomes_is_seeded():
    assert random_genomes(5, seed=3) == random_genomes(5, seed=3)
    assert random_genomes(5, seed=3) != random_genomes(5, seed=4)
