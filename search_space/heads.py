"""SSD and SSDLite heads that attach to any backbone's :class:`Feature` list."""

from __future__ import annotations

from estimators.ir import GraphBuilder
from search_space.genome import HeadGene
from search_space.layers import Feature, separable


def extra_layers(b: GraphBuilder, x: int, channels: tuple[int, ...]) -> list[int]:
    """Each extra: 1x1 conv to half width (bias) -> ReLU -> separable 3x3 s2 to full width."""
    maps = []
    with b.scope("extras"):
        for i, out in enumerate(channels):
            with b.scope(str(i)):
                y = b.act(b.conv(x, out // 2, 1, bias=True, name="reduce"))
                x = separable(b, y, out, 3, 2, name="sep")
            maps.append(x)
    return maps


def _predictor(b: GraphBuilder, x: int, out: int, kind: str, name: str) -> int:
    # A 3x3 window on a 1x1 map only sees its centre: a 1x1 conv is the same function.
    if b.shape(x)[2:] == (1, 1):
        return b.conv(x, out, 1, bias=True, name=name)
    if kind == "ssdlite":
        return separable(b, x, out, 3, 1, name=name)
    return b.conv(x, out, 3, bias=True, name=name)


def _flatten_nhwc(b: GraphBuilder, x: int, per_prior: int) -> int:
    n, c, h, w = b.shape(x)
    y = b.permute(x, (0, 2, 3, 1))
    return b.reshape(y, (n, h * w * c // per_prior, per_prior))


def detection_head(b: GraphBuilder, features: list[Feature], head: HeadGene,
                   class_channels: int) -> tuple[int, int, list[int]]:
    """Boxes (N, P, 4), logits (N, P, class_channels) and the feature maps predicted on
    (taps, then extra layers)."""
    maps = [f.tensor for f in features] + extra_layers(b, features[-1].tensor, head.extras)
    if len(maps) != len(head.anchors):
        raise ValueError(f"{len(maps)} feature maps but {len(head.anchors)} anchor sets")
    locs, confs = [], []
    with b.scope("head"):
        for i, (x, anchor) in enumerate(zip(maps, head.anchors, strict=True)):
            a = anchor.boxes_per_cell
            with b.scope(str(i)):
                loc = _predictor(b, x, a * 4, head.kind, "loc")
                conf = _predictor(b, x, a * class_channels, head.kind, "cls")
                locs.append(_flatten_nhwc(b, loc, 4))
                confs.append(_flatten_nhwc(b, conf, class_channels))
        boxes = b.concat(locs, axis=1, name="boxes") if len(locs) > 1 else locs[0]
        logits = b.concat(confs, axis=1, name="logits") if len(confs) > 1 else confs[0]
    return boxes, logits, maps
