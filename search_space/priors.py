"""SSD prior (default) boxes: (cx, cy, w, h) as fractions of the image side.

Prior generation only needs, per feature map, the (w, h) of the boxes every cell gets, in the
order the head lays out its channels: :class:`AnchorSpec`. The genome's
:class:`~search_space.genome.AnchorGene` is one such scheme; a published network can bring its
own (see ``search_space.baselines``) without the genome having to express it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

CENTER_VARIANCE = 0.1
SIZE_VARIANCE = 0.2


class AnchorSpec(Protocol):
    """The priors of one feature map's cells."""

    @property
    def boxes_per_cell(self) -> int: ...

    def cell_boxes(self) -> list[tuple[float, float]]:
        """(w, h) of each box at one cell, as fractions of the image side, in head-channel
        order. Any clipping is the scheme's own: priors use these sizes unchanged."""
        ...


def generate_priors(map_sizes: Sequence[int], anchors: Sequence[AnchorSpec]) -> np.ndarray:
    """All priors of a detector, shape (P, 4): maps in order, cells row-major, then boxes."""
    if len(map_sizes) != len(anchors):
        raise ValueError(f"{len(map_sizes)} feature maps but {len(anchors)} anchor sets")
    parts = []
    for size, anchor in zip(map_sizes, anchors, strict=True):
        centres = (np.arange(size, dtype=np.float64) + 0.5) / size
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        wh = np.asarray(anchor.cell_boxes(), dtype=np.float64)
        if len(wh) != anchor.boxes_per_cell:
            raise ValueError(f"{anchor!r}: {len(wh)} cell boxes but boxes_per_cell = "
                             f"{anchor.boxes_per_cell}")
        grid = np.stack([cx.ravel(), cy.ravel()], axis=1)
        a = len(wh)
        part = np.concatenate([np.repeat(grid, a, axis=0), np.tile(wh, (size * size, 1))], axis=1)
        parts.append(part)
    return np.concatenate(parts, axis=0).astype(np.float32)


def count_priors(map_sizes: Sequence[int], anchors: Sequence[AnchorSpec]) -> int:
    return sum(s * s * a.boxes_per_cell for s, a in zip(map_sizes, anchors, strict=True))
