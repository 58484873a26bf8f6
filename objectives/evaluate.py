"""COCO mAP of any detector on a dataset, through pycocotools.

A :class:`Predictor` is anything with an ``input_size`` and ``detect(uint8 NHWC images) ->
list[Detections]``: the float PyTorch model (:class:`TorchPredictor`) and the int8 TFLite
``Detector`` of the export module both are, so the same images, resize and scoring apply to
both. Images are resized to the predictor's square input exactly as in training, and ground
truth and detections are scored in that image's pixels (IoU does not change under the resize).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from objectives.augment import resize
from objectives.data.dataset import DatasetError, DetectionDataset
from search_space.detection import Detections, PostProcess
from search_space.model import GraphNet


class Predictor(Protocol):
    @property
    def input_size(self) -> int: ...

    def detect(self, images: np.ndarray) -> list[Detections]: ...


class TorchPredictor:
    """A float :class:`GraphNet` as a :class:`Predictor` (its own decode and NMS)."""

    def __init__(self, net: GraphNet, config: PostProcess | None = None) -> None:
        self.net = net.eval()
        self.config = config or PostProcess()

    @property
    def input_size(self) -> int:
        return self.net.arch.input_size

    def detect(self, images: np.ndarray) -> list[Detections]:
        return self.net.detect(images, self.config)


@dataclass(frozen=True)
class EvalResult:
    map: float  # AP averaged over IoU 0.50:0.05:0.95 and classes (COCO's AP)
    ap50: float
    ap75: float
    num_images: int
    # AP at IoU 0.5 per class; None for a class without ground truth in the data.
    per_class_ap50: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {"map": self.map, "ap50": self.ap50, "ap75": self.ap75,
                "num_images": self.num_images, "per_class_ap50": dict(self.per_class_ap50)}


# Normalised boxes (N, 4) and labels (N,); optionally crowd regions' boxes (M, 4) and labels
# (M,), which pycocotools matches without counting a hit or a false positive.
GroundTruth = tuple[np.ndarray, ...]


def _coco_ground_truth(ground_truth: Sequence[GroundTruth], class_names: Sequence[str],
                       size: int) -> COCO:
    images, annotations = [], []
    for i, truth in enumerate(ground_truth):
        images.append({"id": i + 1, "width": size, "height": size})
        groups = [(truth[0], truth[1], 0)]
        if len(truth) == 4:
            groups.append((truth[2], truth[3], 1))
        for boxes, labels, crowd in groups:
            for box, label in zip(np.asarray(boxes, np.float64).reshape(-1, 4) * size, labels,
                                  strict=True):
                w, h = box[2] - box[0], box[3] - box[1]
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                    "category_id": int(label) + 1, "iscrowd": crowd,
                                    "area": w * h, "bbox": [box[0], box[1], w, h]})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": k + 1, "name": n} for k, n in enumerate(class_names)]}
    coco.createIndex()
    return coco


def _detection_rows(detections: Sequence[Detections], size: int) -> np.ndarray:
    """pycocotools' array form: (image_id, x, y, w, h, score, category_id) per row."""
    rows = []
    for i, det in enumerate(detections):
        if not len(det):
            continue
        b = np.asarray(det.boxes, np.float64) * size
        rows.append(np.column_stack([np.full(len(det), i + 1), b[:, 0], b[:, 1],
                                     b[:, 2] - b[:, 0], b[:, 3] - b[:, 1],
                                     np.asarray(det.scores, np.float64),
                                     np.asarray(det.labels) + 1]))
    return np.concatenate(rows) if rows else np.zeros((0, 7))


def coco_map(ground_truth: Sequence[GroundTruth], detections: Sequence[Detections],
             class_names: Sequence[str], size: int, verbose: bool = False,
             classes: Sequence[str] | None = None) -> EvalResult:
    """COCOeval (bbox) on normalised ground truth and detections, scaled to ``size`` pixels.
    ``classes`` scores only those of ``class_names`` (pycocotools' ``catIds``). pycocotools
    prints its progress and summary table; ``verbose`` lets it."""
    if len(ground_truth) != len(detections):
        raise ValueError(f"{len(ground_truth)} images of ground truth but "
                         f"{len(detections)} of detections")
    scored = [class_names.index(n) for n in classes] if classes is not None \
        else list(range(len(class_names)))
    if not sum(np.isin(truth[1], scored).sum() for truth in ground_truth):
        raise ValueError("no ground-truth objects to evaluate against")
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:
        gt = _coco_ground_truth(ground_truth, class_names, size)
        rows = _detection_rows(detections, size)
        has_gt = {k: bool(gt.getAnnIds(catIds=[k + 1], iscrowd=False)) for k in scored}
        if not len(rows):  # loadRes refuses an empty list; nothing detected scores 0
            return EvalResult(0.0, 0.0, 0.0, len(ground_truth),
                              {class_names[k]: 0.0 if has_gt[k] else None for k in scored})
        evaluator = COCOeval(gt, gt.loadRes(rows), iouType="bbox")
        evaluator.params.catIds = [k + 1 for k in scored]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    # precision: [IoU threshold, recall point, class, area range, max detections]
    precision = evaluator.eval["precision"][0, :, :, 0, -1]
    per_class: dict[str, float | None] = {}
    for column, k in enumerate(scored):
        p = precision[:, column]
        per_class[class_names[k]] = float(p[p > -1].mean()) if has_gt[k] else None
    stats = evaluator.stats
    return EvalResult(float(stats[0]), float(stats[1]), float(stats[2]), len(ground_truth),
                      per_class)


def predict(predictor: Predictor, dataset: DetectionDataset, batch_size: int = 16,
            on_batch: Callable[[int], None] | None = None
            ) -> tuple[list[GroundTruth], list[Detections]]:
    """Resize every image to the predictor's input and detect; ``on_batch(n)`` after each
    batch of n images."""
    size = predictor.input_size
    truth: list[GroundTruth] = []
    found: list[Detections] = []
    for start in range(0, len(dataset), batch_size):
        indices = range(start, min(start + batch_size, len(dataset)))
        samples = [resize(dataset.sample(i), size) for i in indices]
        found += predictor.detect(np.stack([s.image for s in samples]))
        # Crowd regions are normalised too: the square resize leaves them as they are.
        truth += [(s.boxes, s.labels, dataset.records[i].crowd_boxes,
                   dataset.records[i].crowd_labels) for i, s in zip(indices, samples,
                                                                    strict=True)]
        if on_batch is not None:
            on_batch(len(samples))
    return truth, found


def evaluate(predictor: Predictor, dataset: DetectionDataset, batch_size: int = 16,
             on_batch: Callable[[int], None] | None = None, verbose: bool = False,
             classes: Sequence[str] | None = None) -> EvalResult:
    """COCO mAP, AP50, AP75 and per-class AP50 of ``predictor`` on ``dataset`` (on
    ``classes`` of its classes only, when given)."""
    scored = [dataset.class_names.index(n) for n in classes] if classes is not None else None
    if not sum(np.isin(r.labels, scored).sum() if scored is not None else len(r.labels)
               for r in dataset.records):
        which = f" of {', '.join(classes)}" if classes is not None else ""
        raise DatasetError(f"{dataset.source}: no objects{which} to evaluate against")
    truth, found = predict(predictor, dataset, batch_size, on_batch)
    return coco_map(truth, found, dataset.class_names, predictor.input_size, verbose, classes)
