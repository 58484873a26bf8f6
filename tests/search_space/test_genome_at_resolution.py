from __future__ import annotations

import dataclasses

import pytest

from search_space.baselines import seed_genome
from search_space.genome import GenomeError, genome_at_resolution
from search_space.model import lower


def test_the_seed_at_128_drops_its_last_extra_and_anchor_set():
    seed = seed_genome(0.35)
    with pytest.raises(GenomeError, match="extra layer 2"):
        dataclasses.replace(seed, resolution=128)  # why the helper exists
    small = genome_at_resolution(seed, 128)
    assert small.resolution == 128 and small.map_sizes() == (16, 8, 4, 2, 1)
    assert small.head.extras == seed.head.extras[:2]
    assert small.head.anchors == seed.head.anchors[:5]
    assert small.stages == seed.stages and small.taps == seed.taps
    assert lower(small, 3).input_size == 128


def test_same_or_larger_resolution_keeps_the_head():
    seed = seed_genome(0.5)
    assert genome_at_resolution(seed, 256) == seed
    assert genome_at_resolution(seed, 320).head == seed.head
    assert genome_at_resolution(seed, 96).map_sizes() == (12, 6, 3, 2, 1)


def test_invalid_resolution_is_refused():
    with pytest.raises(GenomeError, match="resolution=100"):
        genome_at_resolution(seed_genome(0.35), 100)
