"""SSD prior (default) boxes: (cx, cy, w, h) in [0, 1], row-major cells, per-cell anchors."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from search_space.genome import AnchorGene

CENTER_VARIANCE = 0.1
SIZE_VARIANCE = 0.2


def cell_boxes(anchor: AnchorGene) -> list[tuple[float, float]]:
    """(w, h) of each box at one cell, in the order the head's channels are laid out."""
    small, large = anchor.min_scale, math.sqrt(anchor.min_scale * anchor.max_scale)
    boxes = [(small, small), (large, large)]
    for r in anchor.ratios:
        root = math.sqrt(r)
        boxes += [(small * root, small / root), (small / root, small * root)]
    return boxes


def generate_priors(map_sizes: Sequence[int], anchors: Sequence[AnchorGene]) -> np.ndarray:
    """All priors of a detector, shape (P, 4), clamped to [0, 1] as the seed does."""
    if len(map_sizes) != len(anchors):
        raise ValueError(f"{len(map_sizes)} feature maps but {len(anchors)} anchor sets")
    parts = []
    for size, anchor in zip(map_sizes, anchors):
        centres = (np.arange(size, dtype=np.float64) + 0.5) / size
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        wh = np.asarray(cell_boxes(anchor), dtype=np.float64)
        grid = np.stack([cx.ravel(), cy.ravel()], axis=1)
        a = len(wh)
        part = np.concatenate([np.repeat(grid, a, axis=0), np.tile(wh, (size * size, 1))], axis=1)
        parts.append(part)
    return np.clip(np.concatenate(parts, axis=0), 0.0, 1.0).astype(np.float32)


def count_priors(map_sizes: Sequence[int], anchors: Sequence[AnchorGene]) -> int:
    return sum(s * s * a.boxes_per_cell for s, a in zip(map_sizes, anchors))
