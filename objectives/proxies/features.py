"""Training-free features of a detector: how its priors meet the data's boxes (geometry) and
how much network stands behind each map (capacity). Shared by the ``composite`` proxy (a fixed
combination) and the ``surrogate`` (a model fitted on the trained set).

Geometry is measured on the boxes of a seeded subset of training images, in normalised
coordinates, against the model's priors; capacity on the lowered graph (nothing is built).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from estimators.counting import macs, params
from estimators.ir import Graph
from objectives.matching import prior_corners
from objectives.proxies.base import ProxyData, ProxyError
from objectives.proxies.probe import probe_indices
from search_space.detection import iou_matrix
from search_space.model import Architecture
from search_space.spec import ModelSpec

MATCH_IOU = 0.5  # the training's matching threshold (Recipe.iou_threshold)
SMALL_SIDE = 0.1  # a box is small when sqrt(w * h) is under this share of the image side
CHUNK = 256  # boxes per IoU matrix: bounds memory at ~CHUNK x priors floats


@dataclass(frozen=True)
class Geometry:
    coverage: float  # share of boxes some prior matches at IoU >= 0.5
    small_recall: float  # the same share among the small boxes
    mean_iou: float  # mean best IoU (the prior-iou proxy)
    rf_cover: float  # mean over boxes of min(1, receptive field of its map / box side)


@dataclass(frozen=True)
class Capacity:
    backbone_macs: int
    backbone_params: int
    head_channels: float  # mean channels of the maps the head predicts on
    macs: int
    params: int


def probe_boxes(data: ProxyData, images: int, proxy: str = "this proxy") -> np.ndarray:
    """The boxes of ``images`` seeded training images, as stored (normalised corners)."""
    records = [data.train.records[i]
               for i in probe_indices(len(data.train), images, data.seed)]
    boxes = np.concatenate([r.boxes for r in records]) if records else np.zeros((0, 4))
    if not len(boxes):
        raise ProxyError(f"{data.train.source}: {proxy} needs training boxes")
    return boxes


def geometry(arch: Architecture, boxes: np.ndarray) -> Geometry:
    corners = prior_corners(arch.priors())
    best_iou, best_prior = [], []
    for i in range(0, len(boxes), CHUNK):
        iou = iou_matrix(boxes[i:i + CHUNK], corners)
        best_iou.append(iou.max(axis=1))
        best_prior.append(iou.argmax(axis=1))
    iou_best, prior = np.concatenate(best_iou), np.concatenate(best_prior)
    side = np.sqrt(np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0, None))
    small = side < SMALL_SIDE
    matched = iou_best >= MATCH_IOU
    # Which map each box's best prior is on (priors are stored map by map).
    counts = [s * s * a.boxes_per_cell for s, a in zip(arch.map_sizes, arch.anchors,
                                                        strict=True)]
    box_map = np.searchsorted(np.cumsum(counts), prior, side="right")
    rf = np.asarray(map_receptive_fields(arch), dtype=np.float64) / arch.input_size
    rf_cover = np.minimum(1.0, rf[box_map] / np.maximum(side, 1e-6))
    return Geometry(float(matched.mean()),
                    float(matched[small].mean()) if small.any() else float(matched.mean()),
                    float(iou_best.mean()), float(rf_cover.mean()))


def capacity(arch: Architecture) -> Capacity:
    graph = arch.graph
    channels = [graph.tensors[t].shape[1] for t in head_inputs(graph)]
    return Capacity(macs(graph, arch.backbone_scope), params(graph, arch.backbone_scope),
                    float(np.mean(channels)) if channels else 0.0, macs(graph), params(graph))


def head_inputs(graph: Graph) -> list[int]:
    """The tensors the head predicts on, in op order (the map order): inputs of ``head.`` ops
    produced outside the head."""
    producer = {op.output: op for op in graph.ops}
    found: list[int] = []
    for op in graph.ops:
        if not op.name.startswith("head.") or not op.inputs:
            continue
        source = producer.get(op.inputs[0])
        if source is not None and not source.name.startswith("head.") \
                and op.inputs[0] not in found:
            found.append(op.inputs[0])
    return found


def receptive_fields(graph: Graph) -> dict[int, tuple[int, int]]:
    """(receptive field, jump) in input pixels of every tensor: a k x k window of stride s
    widens the field by (k - 1) x jump and multiplies the jump by s; a join takes the widest."""
    fields: dict[int, tuple[int, int]] = {t: (1, 1) for t in graph.inputs}
    for op in graph.ops:
        known = [fields[t] for t in op.inputs if t in fields]
        rf, jump = max(known) if known else (1, 1)
        if op.kind in ("conv", "maxpool"):
            rf, jump = rf + (op.kernel - 1) * jump, jump * op.stride
        fields[op.output] = (rf, jump)
    return fields


def map_receptive_fields(arch: Architecture) -> list[int]:
    """The receptive field (pixels) of each detection map, in map order. Maps are told apart
    by their spatial size; a size held by several tensors takes the first (the backbone tap)."""
    graph = arch.graph
    fields = receptive_fields(graph)
    by_size: dict[int, int] = {}
    for t in head_inputs(graph):
        by_size.setdefault(graph.tensors[t].shape[-1], fields[t][0])
    missing = [s for s in arch.map_sizes if s not in by_size]
    if missing:
        raise ProxyError(f"{arch.name}: no head input of spatial size {missing[0]}")
    return [by_size[s] for s in arch.map_sizes]


def geometry_share(f: dict[str, float]) -> float:
    """How learnable the data's boxes are for this head, in [0, 1], from :func:`features`:
    the mean of the matched share, the small boxes' matched share and the mean best IoU."""
    return (f["coverage"] + f["small_recall"] + f["mean_iou"]) / 3


def features(spec: ModelSpec, data: ProxyData, images: int = 150) -> dict[str, float]:
    """Geometry and capacity of ``spec`` on ``data``, as named numbers (log for the counts)."""
    arch = spec.lower()
    geo = geometry(arch, probe_boxes(data, images, "a geometry proxy"))
    cap = capacity(arch)
    return {"coverage": geo.coverage, "small_recall": geo.small_recall,
            "mean_iou": geo.mean_iou, "rf_cover": geo.rf_cover,
            "log_backbone_macs": math.log(max(cap.backbone_macs, 1)),
            "log_backbone_params": math.log(max(cap.backbone_params, 1)),
            "log_head_channels": math.log(max(cap.head_channels, 1.0)),
            "log_macs": math.log(max(cap.macs, 1)), "log_params": math.log(max(cap.params, 1)),
            "resolution": float(arch.input_size), "maps": float(len(arch.map_sizes))}
