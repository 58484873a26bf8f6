"""Model variants that training needs and the search space does not name: a genome at another
input resolution."""

from __future__ import annotations

import dataclasses
import math

from search_space.genome import STAGE_STRIDES, Genome, HeadGene


def genome_at_resolution(genome: Genome, resolution: int) -> Genome:
    """``genome`` with a square input of ``resolution``.

    Anchor scales are fractions of the image side, so they carry over. A smaller input has
    smaller maps: extra layers that would have to shrink a 1x1 map are dropped from the end,
    with the anchor sets of their maps (the coarsest ones). The seed ``etn-w0.35-ssdlite`` at
    128 thus keeps two of its three extras: maps 16/8/4/2/1 and the seed's first five anchor
    sets. Raises :class:`~search_space.genome.GenomeError` for an invalid resolution.
    """
    size = resolution // STAGE_STRIDES[-1]
    fit = 0
    while fit < len(genome.head.extras) and size > 1:
        size = math.ceil(size / 2)
        fit += 1
    head = HeadGene(genome.head.kind, genome.head.extras[:fit],
                    genome.head.anchors[: len(genome.taps) + fit])
    return dataclasses.replace(genome, resolution=resolution, head=head)
