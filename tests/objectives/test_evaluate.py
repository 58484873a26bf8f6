"""Our mAP goes through pycocotools; these tests check it against an AP50 written here from
the COCO definition, on a hand-made set where the answer is also worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from objectives.data import open_dataset
from objectives.evaluate import TorchPredictor, coco_map, evaluate
from search_space.detection import Detections, iou_matrix

CLASSES = ("a", "b", "c")


def _det(rows: list[tuple[float, float, float, float, float, int]]) -> Detections:
    arr = np.asarray(rows, np.float64).reshape(-1, 6)
    order = np.argsort(-arr[:, 4], kind="stable")
    arr = arr[order]
    return Detections(arr[:, :4].astype(np.float32), arr[:, 4].astype(np.float32),
                      arr[:, 5].astype(np.int64))


def reference_ap50(truth, detections, label: int) -> float:
    """COCO AP at IoU 0.5 for one class: greedy matching by descending score (each ground truth
    matched at most once, to the unmatched one with the highest IoU >= 0.5), precision made
    monotone, averaged over 101 recall points."""
    scored = []  # (score, is_tp)
    num_gt = 0
    for (boxes, labels), det in zip(truth, detections, strict=True):
        gt = boxes[labels == label]
        num_gt += len(gt)
        mine = det.labels == label
        d_boxes, d_scores = det.boxes[mine], det.scores[mine]
        taken = np.zeros(len(gt), bool)
        for k in np.argsort(-d_scores, kind="stable"):
            iou = iou_matrix(d_boxes[k:k + 1], gt)[0] if len(gt) else np.zeros(0)
            iou = np.where(taken, -1, iou)
            best = int(iou.argmax()) if len(iou) else -1
            hit = best >= 0 and iou[best] >= 0.5
            if hit:
                taken[best] = True
            scored.append((float(d_scores[k]), hit))
    if not num_gt:
        return float("nan")
    scored.sort(key=lambda s: -s[0])
    tp = np.cumsum([hit for _, hit in scored])
    fp = np.cumsum([not hit for _, hit in scored])
    recall = tp / num_gt
    precision = tp / np.maximum(tp + fp, 1)
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    points = []
    for r in np.linspace(0, 1, 101):
        idx = np.searchsorted(recall, r, side="left")
        points.append(precision[idx] if idx < len(precision) else 0.0)
    return float(np.mean(points))


@pytest.fixture
def hand_made():
    truth = [
        (np.array([[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9]], np.float32), np.array([0, 1])),
        (np.array([[0.2, 0.2, 0.5, 0.6], [0.6, 0.1, 0.8, 0.3], [0.1, 0.6, 0.3, 0.9]],
                  np.float32), np.array([0, 0, 1])),
        (np.array([[0.3, 0.3, 0.7, 0.7]], np.float32), np.array([1])),
    ]
    detections = [
        _det([(0.11, 0.1, 0.4, 0.41, 0.9, 0),   # TP for a
              (0.1, 0.1, 0.4, 0.4, 0.8, 0),     # duplicate: FP
              (0.5, 0.5, 0.9, 0.9, 0.3, 1),     # TP for b, low score
              (0.0, 0.0, 0.2, 0.2, 0.7, 1)]),   # FP for b
        _det([(0.2, 0.25, 0.5, 0.6, 0.85, 0),   # TP for a
              (0.6, 0.5, 0.8, 0.7, 0.6, 0),     # FP (wrong place)
              (0.1, 0.6, 0.3, 0.9, 0.5, 0)]),   # right place, wrong class: FP for a
        _det([(0.3, 0.3, 0.66, 0.7, 0.95, 1),   # TP for b
              (0.35, 0.35, 0.75, 0.75, 0.4, 2)]),  # class c has no ground truth
    ]
    return truth, detections


def test_ap50_equals_the_reference_computation(hand_made):
    truth, detections = hand_made
    result = coco_map(truth, detections, CLASSES, size=320)
    ours_a, ours_b = (reference_ap50(truth, detections, k) for k in (0, 1))
    assert result.per_class_ap50["a"] == pytest.approx(ours_a, abs=1e-9)
    assert result.per_class_ap50["b"] == pytest.approx(ours_b, abs=1e-9)
    assert result.per_class_ap50["c"] is None  # no ground truth: not part of the mean
    assert result.ap50 == pytest.approx((ours_a + ours_b) / 2, abs=1e-9)
    # Worked by hand for b: scores 0.95 TP, 0.7 FP, 0.3 TP of 3 ground truths -> precision
    # 1 up to recall 1/3, 2/3 up to 2/3, nothing beyond: (34 * 1 + 33 * 2/3) / 101.
    assert ours_b == pytest.approx((34 + 33 * 2 / 3) / 101)
    assert 0 < result.map <= result.ap50 and result.num_images == 3


def test_perfect_and_empty_detections(hand_made):
    truth, _ = hand_made
    perfect = [Detections(b, np.linspace(0.9, 0.5, len(b)).astype(np.float32), lab)
               for b, lab in truth]
    result = coco_map(truth, perfect, CLASSES, size=100)
    assert result.map == pytest.approx(1.0) and result.ap50 == pytest.approx(1.0)
    empty = [Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                        np.zeros(0, np.int64)) for _ in truth]
    result = coco_map(truth, empty, CLASSES, size=100)
    assert result.map == 0.0 and result.per_class_ap50 == {"a": 0.0, "b": 0.0, "c": None}


def test_evaluate_runs_a_torch_model_on_a_dataset(demo_dir, tiny_spec):
    net = tiny_spec.build()
    val = open_dataset(demo_dir, "val")
    seen = []
    result = evaluate(TorchPredictor(net), val, batch_size=3, on_batch=seen.append)
    assert seen == [3, 3, 2] and result.num_images == 8
    assert set(result.to_dict()) == {"map", "ap50", "ap75", "num_images", "per_class_ap50"}
    assert 0.0 <= result.map <= result.ap50 <= 1.0
