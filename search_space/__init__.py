"""Search space: genome, sampling, layers, model builder and baselines."""

from __future__ import annotations

from search_space.genome import AnchorGene, Genome, GenomeError, HeadGene, StageGene
from search_space.model import Architecture, GraphNet, build, lower

__all__ = ["AnchorGene", "Architecture", "Genome", "GenomeError", "GraphNet", "HeadGene",
           "StageGene", "build", "lower"]
