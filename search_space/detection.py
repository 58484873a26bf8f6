"""What a detector's input and outputs mean: image normalisation, box decoding and NMS.

Every consumer of a detector (training, evaluation, calibration for export, the int8 host
``Detector``) goes through these functions, so that a float model and its int8 file are fed
and read the same way. Everything here is numpy: the same code decodes PyTorch outputs and
dequantised TFLite outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from search_space.priors import CENTER_VARIANCE, SIZE_VARIANCE

# Pixels 0..255 map to [-1, 1]: symmetric around zero, so an int8 input loses nothing.
PIXEL_MEAN = 127.5
PIXEL_STD = 127.5


def normalise(images: np.ndarray, channels: int = 3) -> np.ndarray:
    """uint8 RGB images (N, H, W, 3) or (H, W, 3) -> float32 in [-1, 1], NCHW (or CHW).
    ``channels=1`` (a grayscale model) averages the colour channels."""
    x = (np.asarray(images, dtype=np.float32) - PIXEL_MEAN) / PIXEL_STD
    if channels == 1:
        x = x.mean(axis=-1, keepdims=True)
    return np.moveaxis(x, -1, -3)


@dataclass(frozen=True)
class Detections:
    """One image's detections: ``boxes`` (K, 4) as normalised (x1, y1, x2, y2), ``scores``
    (K,), ``labels`` (K,) 0-based foreground class ids. Sorted by descending score."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class PostProcess:
    """Decoding settings. The defaults are the usual SSD evaluation ones (low score threshold so
    that mAP sees the whole precision-recall curve); a deployment raises ``score_threshold``."""

    score_threshold: float = 0.01
    iou_threshold: float = 0.45
    top_k_per_class: int = 200
    max_detections: int = 100


def decode_boxes(loc: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """SSD centre/variance offsets (P, 4) against priors (cx, cy, w, h) -> (x1, y1, x2, y2)."""
    loc = loc.astype(np.float32)
    centre = priors[:, :2] + loc[:, :2] * CENTER_VARIANCE * priors[:, 2:]
    size = priors[:, 2:] * np.exp(np.clip(loc[:, 2:] * SIZE_VARIANCE, -10.0, 10.0))
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def encode_boxes(boxes: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Inverse of :func:`decode_boxes`: (x1, y1, x2, y2) matched to priors -> offsets."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-6)
    offset = (centre - priors[:, :2]) / (CENTER_VARIANCE * priors[:, 2:])
    scale = np.log(size / priors[:, 2:]) / SIZE_VARIANCE
    return np.concatenate([offset, scale], axis=1).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float32) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (x1, y1, x2, y2) boxes: (len(a), len(b))."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS: indices of the kept boxes, by descending score. Ties keep the lower index,
    so the result does not depend on the sort's stability."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    keep = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(best)
        overlap = iou_matrix(boxes[best:best + 1], boxes[rest])[0]
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def postprocess(loc: np.ndarray, logits: np.ndarray, priors: np.ndarray,
                config: PostProcess = PostProcess()) -> Detections:
    """One image's raw head outputs -> detections: softmax (class 0 is background), decode,
    class-wise NMS, then the best ``max_detections`` over all classes."""
    probs = softmax(logits)
    boxes = np.clip(decode_boxes(loc, priors), 0.0, 1.0)
    picked_boxes, picked_scores, picked_labels = [], [], []
    for cls in range(1, probs.shape[1]):
        scores = probs[:, cls]
        idx = np.flatnonzero(scores > config.score_threshold)
        if not len(idx):
            continue
        idx = idx[np.lexsort((idx, -scores[idx]))][: config.top_k_per_class]
        kept = idx[nms(boxes[idx], scores[idx], config.iou_threshold)]
        picked_boxes.append(boxes[kept])
        picked_scores.append(scores[kept])
        picked_labels.append(np.full(len(kept), cls - 1, dtype=np.int64))
    if not picked_scores:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                          np.zeros(0, np.int64))
    scores = np.concatenate(picked_scores)
    order = np.argsort(-scores, kind="stable")[: config.max_detections]
    return Detections(np.concatenate(picked_boxes)[order].astype(np.float32),
                      scores[order].astype(np.float32), np.concatenate(picked_labels)[order])
