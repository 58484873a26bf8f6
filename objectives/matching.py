"""SSD target assignment: which prior predicts which ground-truth box.

A prior is positive when its IoU with a ground-truth box is at least ``iou_threshold`` (0.5);
every ground-truth box is also forced onto its best prior, so that no object goes unmatched
because no prior reaches the threshold (small objects against coarse priors). Positive priors
get the box encoded as centre/variance offsets (``search_space.detection.encode_boxes``) and
the class id + 1; the rest are background (0).
"""

from __future__ import annotations

import numpy as np

from search_space.detection import encode_boxes, iou_matrix


def prior_corners(priors: np.ndarray) -> np.ndarray:
    """Priors (cx, cy, w, h) -> (x1, y1, x2, y2)."""
    return np.concatenate([priors[:, :2] - priors[:, 2:] / 2,
                           priors[:, :2] + priors[:, 2:] / 2], axis=1).astype(np.float32)


def match(boxes: np.ndarray, labels: np.ndarray, priors: np.ndarray,
          iou_threshold: float = 0.5, corners: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Targets of one image: box offsets (P, 4) float32 and classes (P,) int64 (0 =
    background). ``corners`` = :func:`prior_corners` of ``priors``, if already computed."""
    num_priors = len(priors)
    if not len(boxes):
        return np.zeros((num_priors, 4), np.float32), np.zeros(num_priors, np.int64)
    corners = prior_corners(priors) if corners is None else corners
    overlaps = iou_matrix(boxes.astype(np.float32), corners)  # (N, P)
    best_gt = overlaps.argmax(axis=0)
    best_iou = overlaps[best_gt, np.arange(num_priors)]
    # Forcing: each box takes its best prior, whatever the IoU. Boxes in order, so when two
    # boxes share a best prior the later one keeps it (deterministic either way).
    best_prior = overlaps.argmax(axis=1)
    for gt, prior in enumerate(best_prior):
        best_gt[prior] = gt
        best_iou[prior] = 2.0
    classes = np.where(best_iou >= iou_threshold, labels[best_gt] + 1, 0).astype(np.int64)
    offsets = encode_boxes(boxes[best_gt].astype(np.float32), priors)
    return offsets, classes
