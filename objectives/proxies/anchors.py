"""``prior-iou``: how well the model's priors (anchors) cover the dataset's boxes.

A detector regresses each object from the prior it is matched to; an object that no prior
overlaps well is matched anyway (forced onto its best prior) but is hard to learn. On the demo
data many objects are small, and whether the smallest anchor and the finest map reach them
is a property of the architecture that needs no training, and no images: the boxes alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from objectives.matching import prior_corners
from objectives.proxies.base import AccuracyProxy, ProxyData, Report, register_proxy
from objectives.proxies.features import probe_boxes
from search_space.detection import iou_matrix
from search_space.spec import ModelSpec


@register_proxy
@dataclass(frozen=True)
class PriorIouProxy(AccuracyProxy):
    """Mean over ground-truth boxes (of a seeded subset of training images) of the best IoU
    any prior reaches with the box."""

    name: ClassVar[str] = "prior-iou"
    training_free: ClassVar[bool] = True
    images: int = 150  # ~700 boxes on the demo data
    chunk: int = 256  # boxes per IoU matrix: bounds memory at ~chunk x priors floats

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        boxes = probe_boxes(data, self.images, self.name)
        corners = prior_corners(spec.lower().priors())
        best = [iou_matrix(boxes[i:i + self.chunk], corners).max(axis=1)
                for i in range(0, len(boxes), self.chunk)]
        return float(np.concatenate(best).mean())
