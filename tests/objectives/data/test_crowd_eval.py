"""Crowd regions and class subsets in evaluation, as pycocotools defines them."""

from __future__ import annotations

import numpy as np
import pytest

from objectives.data import open_dataset
from objectives.evaluate import coco_map, evaluate
from search_space.detection import Detections

CLASSES = ("person", "car")


def _det(rows: list[tuple[float, float, float, float, float, int]]) -> Detections:
    arr = np.asarray(rows, np.float64).reshape(-1, 6)
    arr = arr[np.argsort(-arr[:, 4], kind="stable")]
    return Detections(arr[:, :4].astype(np.float32), arr[:, 4].astype(np.float32),
                      arr[:, 5].astype(np.int64))


PERSON = np.array([[0.1, 0.1, 0.4, 0.6]], np.float32)
CROWD = np.array([[0.5, 0.1, 0.95, 0.9]], np.float32)
# A hit on the person, and a higher-scored detection inside the crowd region.
FOUND = [_det([(0.1, 0.1, 0.4, 0.6, 0.6, 0), (0.55, 0.2, 0.75, 0.6, 0.9, 0)])]


def test_a_detection_inside_a_crowd_is_not_a_false_positive():
    with_crowd = coco_map([(PERSON, np.array([0]), CROWD, np.array([0]))], FOUND, CLASSES, 100)
    without = coco_map([(PERSON, np.array([0]))], FOUND, CLASSES, 100)
    assert with_crowd.ap50 == pytest.approx(1.0)
    # Without the crowd the 0.9 detection is a false positive ranked first: precision 1/2.
    assert without.ap50 == pytest.approx(0.5)
    assert with_crowd.per_class_ap50 == {"person": pytest.approx(1.0), "car": None}


def test_scoring_a_subset_of_the_model_classes():
    truth = [(np.vstack([PERSON, CROWD]), np.array([0, 1]))]
    found = [_det([(0.1, 0.1, 0.4, 0.6, 0.6, 0), (0.0, 0.0, 0.05, 0.05, 0.9, 1)])]
    full = coco_map(truth, found, CLASSES, 100)
    only = coco_map(truth, found, CLASSES, 100, classes=["person"])
    assert full.per_class_ap50["car"] == 0.0 and full.ap50 == pytest.approx(0.5)
    assert only.per_class_ap50 == {"person": pytest.approx(1.0)}
    assert only.ap50 == pytest.approx(1.0)


class _Fixed:
    """A predictor answering FOUND-like boxes: the val person and a box in its crowd."""

    input_size = 64

    def detect(self, images: np.ndarray) -> list[Detections]:
        return [_det([(10 / 64, 8 / 48, 30 / 64, 38 / 48, 0.6, 0),
                      (40 / 64, 10 / 48, 56 / 64, 40 / 48, 0.9, 0)]),
                _det([(5 / 64, 5 / 48, 35 / 64, 25 / 48, 0.8, 1)])][: len(images)]


def test_evaluate_passes_coco2017_crowds_to_pycocotools(tmp_path, layouts):
    val = open_dataset(layouts.coco2017(tmp_path / "coco"), "val", subset=["person", "car"])
    result = evaluate(_Fixed(), val, batch_size=2)
    assert result.per_class_ap50 == {"person": pytest.approx(1.0), "car": pytest.approx(1.0)}
    assert evaluate(_Fixed(), val, batch_size=2, classes=["car"]).per_class_ap50 == {
        "car": pytest.approx(1.0)}
