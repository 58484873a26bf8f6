from __future__ import annotations

import numpy as np

from objectives.matching import match, prior_corners
from search_space.detection import decode_boxes, iou_matrix


def _priors() -> np.ndarray:
    """A 4x4 grid with two square sizes per cell, (cx, cy, w, h)."""
    centres = (np.arange(4) + 0.5) / 4
    cy, cx = np.meshgrid(centres, centres, indexing="ij")
    rows = []
    for x, y in zip(cx.ravel(), cy.ravel(), strict=True):
        rows += [(x, y, 0.25, 0.25), (x, y, 0.5, 0.5)]
    return np.asarray(rows, np.float32)


def test_a_box_on_a_prior_matches_it_with_zero_offsets():
    priors = _priors()
    box = prior_corners(priors[10:11])
    offsets, classes = match(box, np.array([2]), priors)
    assert classes[10] == 3
    np.testing.assert_allclose(offsets[10], 0, atol=1e-5)


def test_encoding_round_trips_for_every_positive():
    priors = _priors()
    boxes = np.array([[0.05, 0.1, 0.3, 0.35], [0.4, 0.45, 0.95, 0.9]], np.float32)
    offsets, classes = match(boxes, np.array([0, 1]), priors)
    positive = np.flatnonzero(classes)
    assert len(positive) >= 2
    decoded = decode_boxes(offsets[positive], priors[positive])
    overlap = iou_matrix(decoded, boxes)
    # Each positive decodes exactly to the box it was matched to.
    np.testing.assert_allclose(overlap.max(axis=1), 1.0, atol=1e-5)
    assert set(classes[positive].tolist()) == {1, 2}


def test_threshold_and_forced_best_prior():
    priors = _priors()
    corners = prior_corners(priors)
    tiny = np.array([[0.3, 0.3, 0.36, 0.36]], np.float32)  # IoU < 0.5 with every prior
    big = np.array([[0.1, 0.1, 0.6, 0.6]], np.float32)
    boxes = np.concatenate([tiny, big])
    _, classes = match(boxes, np.array([0, 1]), priors)
    iou = iou_matrix(boxes, corners)
    assert iou[0].max() < 0.5
    # The tiny box is forced onto its best prior, and only there.
    assert classes[iou[0].argmax()] == 1 and (classes == 1).sum() == 1
    # Priors above 0.5 with the big box are positive for it; the others background.
    above = np.flatnonzero(iou[1] >= 0.5)
    assert len(above) and (classes[above] == 2).all()
    assert ((classes == 0) == ~np.isin(np.arange(len(priors)),
                                        np.append(above, iou[0].argmax()))).all()


def test_no_boxes_is_all_background():
    offsets, classes = match(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), _priors())
    assert (classes == 0).all() and offsets.shape == (32, 4)
