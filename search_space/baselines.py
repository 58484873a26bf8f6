"""Named reference networks (timm-style registry): the seed's detectors and the published ones.

``get_baseline(name)`` returns the lowered :class:`Architecture` (cached: architectures are
immutable), ``build_baseline(name)`` a fresh trainable :class:`GraphNet`, ``list_baselines()``
what exists. Names:

Detectors (input 256 unless the name says otherwise; 20 classes = Pascal VOC, except the ST
models: 1 class, person):

* ``etn-w{1.0,0.75,0.5,0.35}-ssdlite``: the seed design, :func:`seed_genome`.
* ``mbv2-w0.35-ssdlite``: MobileNetV2 0.35 + the project's SSDLite head, see
  :func:`mbv2_ssdlite`.
* ``squeezenet1.1-ssd``: SqueezeNet 1.1 + the project's SSD head (full 3x3 predictors), see
  :func:`squeezenet_ssd`.
* ``ssd-mbv1-0.25-{192,224,256}``: the ST model zoo's SSD MobileNet v1 0.25, see
  :func:`st_ssd_mobilenet_v1`.

Classifiers, one per distinct model of the published device runs (``published`` holds the CSV
keys each one reproduces; :func:`baseline_for_run` does the join):

* ``{mbv1|mbv2}-{alpha}-{size}[x{channels}]-c{classes}``: Keras-applications MobileNet v1 / v2
  at a square input; ``x1`` marks a grayscale input (3 channels otherwise).
* ``vww-mbv1-0.25-96``: MLPerf Tiny's Visual Wake Words reference (MobileNet v1 0.25 layout with
  ReLU instead of ReLU6 and a dense top, 96x96x3, 2 classes).
* ``person-det-mbv1-0.25-96x1``: TFLite Micro's person_detection example model (MobileNet v1
  0.25, 96x96x1, 2 classes; slim layout, which matches Keras's).
* ``resnet8-cifar10``: MLPerf Tiny's image-classification reference (32x32x3, 10 classes).
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from estimators.ir import GraphBuilder
from search_space.backbones import mobilenet_v1, mobilenet_v2, squeezenet1_1
from search_space.classifiers import (
    mobilenet_v1_classifier,
    mobilenet_v2_classifier,
    resnet8_classifier,
)
from search_space.genome import AnchorGene, Genome, HeadGene, StageGene, linear_anchors
from search_space.layers import Feature, conv_bn, dw_bn
from search_space.model import (
    CLASSIFICATION,
    DETECTION,
    Architecture,
    GraphNet,
    detector_architecture,
    lower,
)

VOC_CLASSES = 20
SEED_RESOLUTION = 256
# Past this many names an error message lists the closest ones instead of all.
_MAX_LISTED = 12


class BaselineError(ValueError):
    """An unknown baseline name, or a class count a baseline cannot take."""


@dataclass(frozen=True)
class PublishedKey:
    """The columns identifying a model in ``published_device_runs.csv`` (``model`` verbatim)."""

    model: str
    alpha: float | None
    input_h: int
    input_w: int
    input_c: int
    num_classes: int

    def matches(self, model: str, alpha: float | None, input_h: int, input_w: int,
                input_c: int, num_classes: int) -> bool:
        return (self.model.strip().lower() == model.strip().lower()
                and _same_alpha(self.alpha, alpha)
                and (self.input_h, self.input_w, self.input_c, self.num_classes)
                == (input_h, input_w, input_c, num_classes))


def _same_alpha(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, abs_tol=1e-9)


@dataclass(frozen=True)
class BaselineInfo:
    name: str
    task: str
    description: str
    source: str
    family: str
    num_classes: int
    published: tuple[PublishedKey, ...] = ()


# A baseline's builder takes the number of foreground classes: detectors are retrained on the
# user's classes; a classifier reproduces a published model and accepts only its own count.
Builder = Callable[[int], Architecture]
_REGISTRY: dict[str, tuple[BaselineInfo, Builder]] = {}


def register_baseline(name: str, *, task: str, description: str, source: str,
                      num_classes: int, family: str = "",
                      published: tuple[PublishedKey, ...] = ()) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn(num_classes) -> Architecture``; ``num_classes`` is the default
    (the published model's) class count."""
    if task not in (DETECTION, CLASSIFICATION):
        raise ValueError(f"baseline {name!r}: task {task!r} is not {DETECTION!r} or "
                         f"{CLASSIFICATION!r}")

    def decorate(fn: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"baseline {name!r} is registered twice")
        info = BaselineInfo(name, task, description, source, family or name, num_classes,
                            tuple(published))
        _REGISTRY[name] = (info, fn)
        return fn

    return decorate


def _unknown(name: str) -> BaselineError:
    names = sorted(_REGISTRY)
    if len(names) <= _MAX_LISTED:
        return BaselineError(f"unknown baseline {name!r}; valid: {', '.join(names)}")
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
    if not close:
        return BaselineError(f"unknown baseline {name!r}; valid: {', '.join(names)}")
    return BaselineError(f"unknown baseline {name!r}; closest: {', '.join(close)} "
                         f"({len(names)} baselines, see list_baselines())")


@functools.cache
def get_baseline(name: str, num_classes: int | None = None) -> Architecture:
    """The lowered baseline ``name``, for ``num_classes`` foreground classes (default: the
    published model's). Raises :class:`BaselineError` for an unknown name, or for a class count
    other than a classifier's own."""
    if name not in _REGISTRY:
        raise _unknown(name)
    info, fn = _REGISTRY[name]
    n = info.num_classes if num_classes is None else num_classes
    if n < 1:
        raise BaselineError(f"num_classes={n}: a model needs at least 1 class")
    if n != info.num_classes and info.task != DETECTION:
        raise BaselineError(f"baseline {name!r} reproduces a published {info.num_classes}-class "
                            f"classifier; it cannot be built for {n} classes")
    arch = fn(n)
    if arch.name != name or arch.task != info.task or arch.num_classes != n:
        raise AssertionError(f"baseline {name!r} built {arch.name!r} ({arch.task}, "
                             f"{arch.num_classes} classes)")
    return arch


def build_baseline(name: str, num_classes: int | None = None) -> GraphNet:
    """A freshly initialised trainable module of baseline ``name``."""
    return GraphNet(get_baseline(name, num_classes))


def list_baselines(task: str | None = None) -> list[BaselineInfo]:
    """Registered baselines in registration order, optionally only one task's."""
    return [info for info, _ in _REGISTRY.values() if task is None or info.task == task]


def baseline_for_run(model: str, alpha: float | None, input_h: int, input_w: int, input_c: int,
                     num_classes: int) -> str | None:
    """The baseline reproducing a published run's model, or None if there is none."""
    for info, _ in _REGISTRY.values():
        if any(k.matches(model, alpha, input_h, input_w, input_c, num_classes)
               for k in info.published):
            return info.name
    return None


def baseline_for_row(row: Mapping[str, str]) -> str | None:
    """:func:`baseline_for_run` on a row of ``published_device_runs.csv`` as read by csv."""
    alpha = row["alpha"].strip()
    return baseline_for_run(row["model"], float(alpha) if alpha else None, int(row["input_h"]),
                            int(row["input_w"]), int(row["input_c"]), int(row["num_classes"]))


# -- the seed: EtinyNet + SSDLite ------------------------------------------------------------
SEED_WIDTHS = (1.0, 0.75, 0.5, 0.35)
_SEED_MIN = (26, 67, 108, 149, 190, 231)
_SEED_MAX = (67, 108, 149, 190, 231, 256)
_SEED_RATIOS = ((2.0,), (2.0, 3.0), (2.0, 3.0), (2.0, 3.0), (2.0,), (2.0,))


def seed_anchors() -> tuple[AnchorGene, ...]:
    """The seed's priors at 256 px: 4, 6, 6, 6, 4, 4 boxes per cell over 32..1 maps."""
    return tuple(AnchorGene(lo / SEED_RESOLUTION, hi / SEED_RESOLUTION, r)
                 for lo, hi, r in zip(_SEED_MIN, _SEED_MAX, _SEED_RATIOS, strict=True))


def seed_genome(width: float) -> Genome:
    """The seed detector (EtinyNet-``width`` + SSDLite at 256) with the seed's truncating widths."""
    stages = (StageGene(width, 4, "lb", 3), StageGene(width, 4, "lb", 3),
              StageGene(width, 3, "dlb_skip", 3), StageGene(width, 3, "dlb_skip", 3))
    return Genome(SEED_RESOLUTION, stages, ((2, 3), (3, 2), (4, 3)),
                  HeadGene("ssdlite", (256, 256, 256), seed_anchors()), channel_divisor=1)


def _register_seed(width: float) -> None:
    name = f"etn-w{width}-ssdlite"
    register_baseline(
        name, task=DETECTION, family="etinynet-ssdlite", num_classes=VOC_CLASSES,
        description=f"EtinyNet-{width} + SSDLite, 256x256, 6132 priors, {VOC_CLASSES} classes",
        source="seed design (TinyML_Det); docs/etinynet-ssd.md",
    )(lambda n: lower(seed_genome(width), num_classes=n, name=name))


for _width in SEED_WIDTHS:
    _register_seed(_width)


# -- MobileNetV2 0.35 + SSDLite ----------------------------------------------------------------
# SSDLite-MobileNetV2's scale schedule (TF object detection API config): 0.2 .. 0.95, ratios
# 1, 2, 1/2, 3, 1/3 and the interpolated square: 6 boxes per cell.
MBV2_SSDLITE_TAPS = ("block_13_expand", "out_relu")
MBV2_SSDLITE_EXTRAS = (512, 256, 256)


@register_baseline(
    "mbv2-w0.35-ssdlite", task=DETECTION, family="mobilenetv2-ssdlite", num_classes=VOC_CLASSES,
    description="MobileNetV2-0.35 + SSDLite, 256x256, maps 16/8/4/2/1, 20 classes",
    source="seed comparison; MobileNetV2 paper (SSDLite) / Keras applications",
)
def mbv2_ssdlite(num_classes: int = VOC_CLASSES) -> Architecture:
    """MobileNetV2-0.35 (Keras widths: multiples of 8, last conv 1280) + SSDLite at 256.

    Taps as in SSDLite-MobileNetV2: the expansion of block 13 (192 ch, stride 16) and the last
    1x1 conv (1280 ch, stride 32). 256 rather than SSDLite's 300 so it compares with the seed
    at the same input. Three extra layers (512, 256, 256: SSDLite's first three) take the 8x8
    map down to 4, 2, 1: maps 16/8/4/2/1, 6 boxes per cell, 2046 priors.
    """
    head = HeadGene("ssdlite", MBV2_SSDLITE_EXTRAS,
                    linear_anchors(5, 0.2, 0.95, ((2.0, 3.0),) * 5))
    head.validate()
    return detector_architecture(
        "mbv2-w0.35-ssdlite", (3, SEED_RESOLUTION, SEED_RESOLUTION),
        lambda b, x: mobilenet_v2(b, x, 0.35, taps=MBV2_SSDLITE_TAPS), head, num_classes)


# -- SqueezeNet 1.1 + SSD ----------------------------------------------------------------------
SQUEEZENET_SSD_TAPS = ("fire5", "fire9")
SQUEEZENET_SSD_EXTRAS = (512, 256, 256, 256)


@register_baseline(
    "squeezenet1.1-ssd", task=DETECTION, family="squeezenet-ssd", num_classes=VOC_CLASSES,
    description="SqueezeNet 1.1 + SSD (full 3x3 predictors), 256x256, maps 31/15/8/4/2/1, "
                "20 classes",
    source="seed comparison; SqueezeNet 1.1 (torchvision layout)",
)
def squeezenet_ssd(num_classes: int = VOC_CLASSES) -> Architecture:
    """SqueezeNet 1.1 + the project's plain SSD head at 256.

    Taps fire5 (256 ch, stride 8, 31x31: the end of the stride-8 stage) and fire9 (512 ch,
    stride 16, 15x15: the backbone output); four extra layers (512, 256, 256, 256, the widths of
    the common SqueezeNet-SSD) give 8, 4, 2, 1. That is the seed's six-map pyramid
    (32/16/8/4/2/1 there), so the seed's anchors apply unchanged.
    """
    head = HeadGene("ssd", SQUEEZENET_SSD_EXTRAS, seed_anchors())
    head.validate()
    return detector_architecture(
        "squeezenet1.1-ssd", (3, SEED_RESOLUTION, SEED_RESOLUTION),
        lambda b, x: squeezenet1_1(b, x, taps=SQUEEZENET_SSD_TAPS), head, num_classes)


# -- ST model zoo: SSD MobileNet v1 0.25 (COCO person) ------------------------------------------
ST_SSD_ALPHA = 0.25
ST_SSD_RESOLUTIONS = (192, 224, 256)
ST_FMAP_CHANNELS = 32
ST_EXTRA_CHANNELS = 256
# Anchor sizes per map (fractions of the image side), from ST's anchor_boxes_utils.
_ST_SIZES = {192: ((0.26, 0.33), (0.42, 0.49), (0.58, 0.66), (0.74, 0.82), (0.9, 0.98)),
             224: ((0.1, 0.16), (0.26, 0.33), (0.42, 0.49), (0.58, 0.66), (0.74, 0.82),
                   (0.9, 0.98))}
_ST_SIZES[256] = _ST_SIZES[224]
# The same on every map and at every resolution, in ST's order.
ST_RATIOS = (1.0, 2.0, 0.5, 1.0 / 3)
# At 224 ST zero-pads the three taps so that every map halves exactly: 28 -> 32 and 14 -> 16 on
# all sides, 7 -> 8 on the top and left only. (top, bottom, left, right) per tap.
_ST_TAP_PADS = {224: ((2, 2, 2, 2), (1, 1, 1, 1), (1, 0, 1, 0))}


@dataclass(frozen=True)
class STAnchors:
    """ST's priors of one map (``gen_anchors`` in anchor_boxes_utils.py); an AnchorSpec.

    The first size at every ratio, then each further size at the first ratio, with
    w = s * sqrt(r) and h = s / sqrt(r): with ST's two sizes and four ratios, 5 boxes per cell,
    (s0, 1), (s0, 2), (s0, 1/2), (s0, 1/3), (s1, 1). An :class:`AnchorGene` cannot say this: its
    second square is sqrt(s0 * s1), every ratio comes with its reciprocal, and its boxes are
    capped at the image side, while ST builds its model with ``clip_boxes=False``, so the
    tall and wide boxes of its coarse maps overhang the image.
    """

    sizes: tuple[float, ...]
    ratios: tuple[float, ...] = ST_RATIOS

    def __post_init__(self) -> None:
        if not self.sizes or not self.ratios:
            raise ValueError(f"STAnchors needs at least one size and one ratio, got {self!r}")

    @property
    def boxes_per_cell(self) -> int:
        return len(self.sizes) + len(self.ratios) - 1

    def cell_boxes(self) -> list[tuple[float, float]]:
        first, *rest = self.sizes
        boxes = [(first * math.sqrt(r), first / math.sqrt(r)) for r in self.ratios]
        root = math.sqrt(self.ratios[0])
        return boxes + [(s * root, s / root) for s in rest]


def st_anchors(resolution: int) -> tuple[STAnchors, ...]:
    """ST's anchors, one set per map, finest first."""
    return tuple(STAnchors(sizes) for sizes in _ST_SIZES[resolution])


def st_ssd_mobilenet_v1(resolution: int, num_classes: int = 1) -> Architecture:
    """ST's SSD MobileNet v1 0.25 (``ssd_model`` of the model zoo's training scripts).

    Backbone: Keras MobileNet 0.25 (ReLU6); taps conv_pw_5 / 11 / 13 (strides 8 / 16 / 32),
    zero-padded at 224 (see ``_ST_TAP_PADS``). Each map gets a lateral 1x1 conv to 32 channels
    + BN (no activation). Extras: one (at 192) or two (224, 256) pairs of separable blocks (dw
    3x3 s2 then s1, each dw + BN + ReLU6 -> pw 256 + BN + ReLU6), then a global average pool to
    a 1x1 map. An FPN-style top-down path adds each map to its coarser neighbour upsampled 2x
    (at 192 the 2x2 upsampled map is zero-padded on the top and left to 3x3); predictors are
    full 3x3 convs + BN (1x1 on the last map at 224 / 256) for classes (A*(C+1)) and boxes
    (A*4), with ST's 5 boxes per cell (:class:`STAnchors`).

    Against ST's published figures (``tests/search_space/test_baselines.py``): the int8 weights
    plus the anchors (an output of ST's Keras model, so an int8 constant of 4 bytes per prior in
    the file) are ST's weights flash to the table's rounding. Conv MACs are 1.1-1.5% below ST's
    MACCs, which also charge the layers that do no multiply-accumulates here. One departure
    is left: ST upsamples bilinearly, this graph with nearest neighbours (same shapes and
    weights, no MACs either way; RESIZE_NEAREST_NEIGHBOR instead of RESIZE_BILINEAR deployed).
    """
    if resolution not in ST_SSD_RESOLUTIONS:
        raise ValueError(f"ST SSD MobileNet v1 exists at {ST_SSD_RESOLUTIONS}, not {resolution}")
    anchors = st_anchors(resolution)
    b = GraphBuilder()
    x = b.input((1, 3, resolution, resolution))
    taps = mobilenet_v1(b, x, ST_SSD_ALPHA, taps=("conv_pw_5", "conv_pw_11", "conv_pw_13"))
    maps = _st_pyramid(b, taps, resolution)
    boxes, logits = _st_predictors(b, maps, anchors, num_classes + 1, resolution)
    sizes = tuple(b.shape(m)[2] for m in maps)
    return Architecture(f"ssd-mbv1-0.25-{resolution}", DETECTION, b.finish((boxes, logits)),
                        num_classes, sizes, anchors)


def _st_pyramid(b: GraphBuilder, taps: list[Feature], resolution: int) -> list[int]:
    """Lateral maps + extras, then the top-down sum; finest map first."""
    with b.scope("neck"):
        c5, c11, c13 = (f.tensor for f in taps)
        if resolution in _ST_TAP_PADS:
            p5, p11, p13 = _ST_TAP_PADS[resolution]
            c5, c11 = b.pad(c5, p5, name="pad_c5"), b.pad(c11, p11, name="pad_c11")
            c13 = b.pad(c13, p13, name="pad_c13")  # the extras start from the padded map too
        laterals = [_lateral(b, c5, "lat0"), _lateral(b, c11, "lat1"), _lateral(b, c13, "lat2")]
        y = c13
        for i in range(1 if resolution == 192 else 2):
            y = _st_extra(b, y, 2, f"extra{i}a")
            y = _st_extra(b, y, 1, f"extra{i}b")
            laterals.append(_lateral(b, y, f"lat{len(laterals)}"))
        laterals.append(_lateral(b, b.gap(y), f"lat{len(laterals)}"))
        return _top_down(b, laterals)


def _lateral(b: GraphBuilder, x: int, name: str) -> int:
    # Keras: Conv2D 1x1 (bias) -> BN, no activation.
    return conv_bn(b, x, ST_FMAP_CHANNELS, 1, act=None, name=name)


def _st_extra(b: GraphBuilder, x: int, stride: int, name: str) -> int:
    with b.scope(name):
        y = dw_bn(b, x, 3, stride, act="relu6", name="dw")
        return conv_bn(b, y, ST_EXTRA_CHANNELS, 1, act="relu6", name="pw")


def _top_down(b: GraphBuilder, laterals: list[int]) -> list[int]:
    maps = [laterals[-1]]
    for i in range(len(laterals) - 2, -1, -1):
        up = b.upsample(maps[0], 2, name=f"up{i}")
        short = b.shape(laterals[i])[2] - b.shape(up)[2]
        if short:  # ST at 192: 2x2 -> 3x3, ZeroPadding2D(((1, 0), (1, 0)))
            up = b.pad(up, (short, 0, short, 0), name=f"pad_up{i}")
        maps.insert(0, b.add(laterals[i], up, name=f"fmap{i}"))
    return maps


def _st_predictors(b: GraphBuilder, maps: list[int], anchors: tuple[STAnchors, ...],
                   class_channels: int, resolution: int) -> tuple[int, int]:
    locs, confs = [], []
    with b.scope("head"):
        for i, (x, anchor) in enumerate(zip(maps, anchors, strict=True)):
            a = anchor.boxes_per_cell
            # ST predicts the last (1x1) map with 1x1 convs at 224 / 256, with 3x3 at 192.
            k = 1 if i == len(maps) - 1 and resolution != 192 else 3
            with b.scope(str(i)):
                conf = conv_bn(b, x, a * class_channels, k, act=None, name="cls")
                loc = conv_bn(b, x, a * 4, k, act=None, name="loc")
                confs.append(_nhwc_rows(b, conf, class_channels))
                locs.append(_nhwc_rows(b, loc, 4))
        return b.concat(locs, axis=1, name="boxes"), b.concat(confs, axis=1, name="logits")


def _nhwc_rows(b: GraphBuilder, x: int, per_prior: int) -> int:
    n, c, h, w = b.shape(x)
    y = b.permute(x, (0, 2, 3, 1))
    return b.reshape(y, (n, h * w * c // per_prior, per_prior))


def _register_st(resolution: int) -> None:
    register_baseline(
        f"ssd-mbv1-0.25-{resolution}", task=DETECTION, family="st-ssd-mobilenet-v1",
        num_classes=1,
        description=f"ST model zoo SSD MobileNet v1 0.25, {resolution}x{resolution}, 1 class "
                    "(person)",
        source="STMicroelectronics/stm32ai-modelzoo object_detection (SSD_MV1.py, "
               "anchor_boxes_utils.py); MACCs in object_detection/models/README.md",
    )(lambda n: st_ssd_mobilenet_v1(resolution, n))


for _resolution in ST_SSD_RESOLUTIONS:
    _register_st(_resolution)


# -- classifiers of the published device runs ------------------------------------------------
_ST_MBV1 = "STM32 model zoo image_classification/mobilenetv1 (Keras MobileNet, STM32H747)"
_ST_MBV2 = "STM32 model zoo image_classification/mobilenetv2 (Keras MobileNetV2, STM32H747)"


@dataclass(frozen=True)
class _Classifier:
    """One row of the classifier table below."""

    name: str
    build: Callable[[str], Architecture]
    key: PublishedKey
    description: str
    source: str
    family: str


def _mbv1(alpha: float, size: int, channels: int, classes: int) -> _Classifier:
    gray = "x1" if channels == 1 else ""
    # ImageNet models are Keras applications (1x1-conv top); 5-class models are ST's
    # transfer-learning nets (GAP -> dense top).
    top = "conv" if classes == 1000 else "dense"
    return _Classifier(
        f"mbv1-{alpha}-{size}{gray}-c{classes}",
        lambda n: mobilenet_v1_classifier(n, alpha, size, channels, classes, top=top),
        PublishedKey("mobilenet_v1", alpha, size, size, channels, classes),
        f"MobileNet v1 {alpha}, {size}x{size}x{channels}, {classes} classes",
        _ST_MBV1, "mobilenet_v1")


def _mbv2(alpha: float, size: int, classes: int) -> _Classifier:
    return _Classifier(
        f"mbv2-{alpha}-{size}-c{classes}",
        lambda n: mobilenet_v2_classifier(n, alpha, size, 3, classes),
        PublishedKey("mobilenet_v2", alpha, size, size, 3, classes),
        f"MobileNetV2 {alpha}, {size}x{size}x3, {classes} classes", _ST_MBV2, "mobilenet_v2")


_CLASSIFIERS = (
    _mbv1(0.25, 224, 3, 5), _mbv1(0.5, 224, 3, 5), _mbv1(0.25, 96, 3, 5), _mbv1(0.25, 96, 1, 5),
    _mbv1(0.25, 224, 3, 1000), _mbv1(0.5, 224, 3, 1000), _mbv1(1.0, 224, 3, 1000),
    _mbv2(0.35, 128, 5), _mbv2(0.35, 224, 5), _mbv2(0.35, 128, 1000), _mbv2(0.35, 224, 1000),
    _mbv2(1.0, 224, 1000), _mbv2(1.4, 224, 1000),
    _Classifier(
        "vww-mbv1-0.25-96",
        lambda n: mobilenet_v1_classifier(n, 0.25, 96, 3, 2, top="dense", act="relu"),
        PublishedKey("mobilenet_v1 (VWW reference)", 0.25, 96, 96, 3, 2),
        "MLPerf Tiny Visual Wake Words reference: MobileNet v1 0.25 layout, ReLU, 96x96x3, "
        "2 classes",
        "mlcommons/tiny benchmark/training/visual_wake_words (mobilenet_v1_eembc)",
        "mobilenet_v1"),
    _Classifier(
        "person-det-mbv1-0.25-96x1",
        lambda n: mobilenet_v1_classifier(n, 0.25, 96, 1, 2, top="conv"),
        PublishedKey("TFLM person_detection model (MobileNet v1 family)", 0.25, 96, 96, 1, 2),
        "TFLite Micro person_detection: MobileNet v1 0.25, 96x96x1, 2 classes",
        "tflite-micro examples/person_detection (slim MobileNet v1 0.25; layout not verified "
        "against the .tflite)",
        "mobilenet_v1"),
    _Classifier(
        "resnet8-cifar10", lambda n: resnet8_classifier(n),
        PublishedKey("resnet8 (CIFAR-10 reference)", None, 32, 32, 3, 10),
        "MLPerf Tiny image-classification reference: ResNet-8, 32x32x3, 10 classes",
        "mlcommons/tiny benchmark/training/image_classification (resnet_v1_eembc, 16 filters)",
        "resnet"),
)


def _register_classifier(spec: _Classifier) -> None:
    register_baseline(spec.name, task=CLASSIFICATION, description=spec.description,
                      source=spec.source, family=spec.family, published=(spec.key,),
                      num_classes=spec.key.num_classes)(lambda n: spec.build(spec.name))


for _spec in _CLASSIFIERS:
    _register_classifier(_spec)
