"""The space record: serialisation, narrowing, drawing, and every choice below the old floor."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import optuna
import pytest
import torch

from estimators.estimate import estimate
from estimators.targets import get_target
from search_space.genome import Genome, GenomeError, HeadGene, StageGene, linear_anchors
from search_space.model import build, lower
from search_space.sampling import random_genomes, sample_genome
from search_space.space import FULL_SPACE, SearchSpace, SpaceError, SpaceFit

NARROW = replace(FULL_SPACE, resolution=(64, 96), input_channels=(1,),
                 widths=((0.1, 0.3),) * 4, depths=((1, 2),) * 4, max_extras=1,
                 extra_channels=(16, 32), heads=("ssdlite",),
                 fit=SpaceFit("esp32", 10, 0.1, 0.9, 0.5, 10, 5, ("resolution 320 (0 of 9)",)))


def test_a_space_round_trips_through_json_with_its_fit_record():
    again = SearchSpace.from_dict(json.loads(json.dumps(NARROW.to_dict())))
    assert again == NARROW and again.fit == NARROW.fit
    assert SearchSpace.from_dict(FULL_SPACE.to_dict()) == FULL_SPACE


def test_a_malformed_space_record_is_named():
    with pytest.raises(SpaceError, match="format"):
        SearchSpace.from_dict({"resolution": [64, 96]})
    with pytest.raises(SpaceError, match="malformed"):
        SearchSpace.from_dict({**FULL_SPACE.to_dict(), "colour": 3})


def test_each_peel_drops_exactly_its_value():
    rng = np.random.default_rng(0)
    draws = [FULL_SPACE.draw(rng) for _ in range(200)]
    peels = list(FULL_SPACE.peels())
    assert len(peels) > 30
    for peel in peels:
        assert FULL_SPACE.contains({n: peel.value for n in peel.names[:1]})
        for params in draws:
            concerned = {n: params[n] for n in peel.names}
            assert peel.drops(params) == (not peel.space.contains(concerned))


def test_genomes_drawn_from_a_narrow_space_stay_inside_it_and_rebuild_from_params():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    for _ in range(25):
        trial = study.ask()
        genome = sample_genome(trial, NARROW)
        study.tell(trial, 0.0)
        assert NARROW.contains(trial.params)
        assert genome.input_channels == 1 and 64 <= genome.resolution <= 96
        # The genome depends on the values only: any space holding them rebuilds it.
        assert sample_genome(optuna.trial.FixedTrial(trial.params)) == genome
        assert sample_genome(optuna.trial.FixedTrial(trial.params), NARROW) == genome
    assert all(NARROW.values("resolution")[0] <= g.resolution <= 96
               for g in random_genomes(10, seed=1, space=NARROW))


def _tiny(resolution: int, channels: int, extras: tuple[int, ...] = ()) -> Genome:
    stages = (StageGene(0.1, 1, "lb"), StageGene(0.1, 1, "dlb"), StageGene(0.1, 1, "dlb_skip"),
              StageGene(0.1, 1, "lb", 5))
    taps = ((2, 1), (4, 1))
    anchors = linear_anchors(len(taps) + len(extras), 0.1, 0.8, ((2.0,),) * 6)
    return Genome(resolution, stages, taps, HeadGene("ssd", extras, anchors),
                  input_channels=channels)


@pytest.mark.parametrize(("resolution", "channels", "extras"),
                         [(64, 1, (16,)), (80, 1, (32, 16)), (80, 3, (16,)), (112, 1, (16,))])
def test_every_new_choice_builds_lowers_and_estimates(resolution, channels, extras):
    genome = _tiny(resolution, channels, extras)
    arch = lower(genome, 2)
    assert arch.input_shape == (1, channels, resolution, resolution)
    assert arch.map_sizes == genome.map_sizes()
    net = build(genome, 2).eval()
    with torch.no_grad():
        boxes, logits = net(torch.zeros(1, channels, resolution, resolution))
    assert boxes.shape == (1, genome.num_priors(), 4) and logits.shape[-1] == 3
    est = estimate(arch.graph, get_target("esp32"))
    assert est.flash_bytes > 0 and est.ram_bytes > 0 and est.latency.ms > 0
    assert Genome.from_dict(json.loads(genome.to_json())) == genome


def test_a_grayscale_input_costs_less_ram_than_rgb():
    target = get_target("esp32")
    gray = estimate(lower(_tiny(96, 1), 2).graph, target).ram_bytes
    rgb = estimate(lower(_tiny(96, 3), 2).graph, target).ram_bytes
    assert gray < rgb


def test_an_odd_stage4_map_rounds_up_and_limits_the_extras():
    assert _tiny(80, 1).map_sizes() == (10, 3)  # 80 / 32 = 2.5 -> 3, as a padded conv gives
    with pytest.raises(GenomeError, match="extra layer 2"):
        _tiny(80, 1, (16, 16, 16))
