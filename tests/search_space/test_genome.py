from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from search_space.genome import AnchorGene, Genome, GenomeError, HeadGene, StageGene


def small_genome(**changes) -> Genome:
    stages = (StageGene(0.5, 1, "lb", 3), StageGene(0.5, 2, "dlb", 5),
              StageGene(0.5, 2, "dlb_skip", 3), StageGene(0.5, 1, "lb", 3))
    anchors = (AnchorGene(0.2, 0.5, (2.0,)), AnchorGene(0.5, 0.8, ()), AnchorGene(0.8, 1.0, (2, 3)))
    fields = dict(resolution=128, stages=stages, taps=((3, 1), (4, 1)),
                  head=HeadGene("ssdlite", (64,), anchors))
    fields.update(changes)
    return Genome(**fields)


def test_dict_and_json_round_trip():
    genome = small_genome()
    assert Genome.from_dict(genome.to_dict()) == genome
    assert Genome.from_json(genome.to_json()) == genome
    # The dict is plain data: JSON-serialisable with lists, no tuples or dataclasses.
    assert json.loads(json.dumps(genome.to_dict())) == genome.to_dict()


def test_derived_sizes():
    genome = small_genome()
    assert genome.map_sizes() == (8, 4, 2)
    assert genome.num_priors() == 8 * 8 * 4 + 4 * 4 * 2 + 2 * 2 * 6
    assert genome.stage_channels() == (16, 64, 96, 128)
    assert genome.last_channels() == 256


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"resolution": 100}, "resolution=100"),
        ({"resolution": 352}, "resolution=352"),
        ({"resolution": 48}, "resolution=48"),
        ({"input_channels": 2}, "input_channels=2"),
        ({"channel_divisor": 3}, "channel_divisor=3"),
        ({"taps": ((3, 1),)}, "last tap must be the backbone output"),
        ({"taps": ((3, 3), (4, 1))}, "block 3 of stage 3 does not exist"),
        ({"taps": ((3, 1), (2, 1), (4, 1))}, "increasing stage order"),
        ({"taps": ()}, "at least the backbone output"),
    ],
)
def test_invalid_genomes_are_rejected(changes, message):
    with pytest.raises(GenomeError, match=re.escape(message)):
        small_genome(**changes)


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        (StageGene(0.0, 1), "width=0.0"),
        (StageGene(0.5, 0), "depth=0"),
        (StageGene(0.5, 1, "mbconv"), "block='mbconv'"),
        (StageGene(0.5, 1, "lb", 7), "kernel=7"),
    ],
)
def test_invalid_stage_genes(stage, message):
    genome = small_genome()
    stages = (stage, *genome.stages[1:])
    with pytest.raises(GenomeError, match=message):
        replace(genome, stages=stages)


def test_invalid_head_genes():
    genome = small_genome()
    with pytest.raises(GenomeError, match=re.escape("head.kind='yolo'")):
        replace(genome, head=replace(genome.head, kind="yolo"))
    with pytest.raises(GenomeError, match="one anchor set per feature map"):
        replace(genome, head=replace(genome.head, anchors=genome.head.anchors[:2]))
    with pytest.raises(GenomeError, match="0 < min < max <= 1"):
        replace(genome, head=replace(genome.head, anchors=(AnchorGene(0.5, 0.4),) * 3))
    with pytest.raises(GenomeError, match=r"ratio must be in \(1, 4.0\]"):
        replace(genome, head=replace(genome.head, anchors=(AnchorGene(0.2, 0.4, (0.5,)),) * 3))


def test_too_many_extras_for_resolution():
    anchors = tuple(AnchorGene(0.1 * (k + 1), 0.1 * (k + 2)) for k in range(5))
    # 96 -> backbone 3x3 -> extras 2x2, 1x1; a third extra would start from 1x1.
    with pytest.raises(GenomeError, match="at most 2 extra layers fit"):
        small_genome(resolution=96, head=HeadGene("ssd", (64, 64, 64), anchors[:5]))


def test_malformed_dict_is_a_genome_error():
    with pytest.raises(GenomeError, match="malformed"):
        Genome.from_dict({"resolution": 128})
    with pytest.raises(GenomeError, match="not valid JSON"):
        Genome.from_json("{nope")


def test_genome_is_frozen_and_hashable():
    genome = small_genome()
    with pytest.raises(AttributeError):
        genome.resolution = 96  # type: ignore[misc]
    assert hash(genome) == hash(Genome.from_dict(genome.to_dict()))
