"""Backbones. Each takes the input tensor and returns the :class:`Feature` maps a head may use."""

from __future__ import annotations

from estimators.ir import GraphBuilder
from search_space.genome import STAGE_STRIDES, Genome
from search_space.layers import Feature, conv_bn, dw_bn, etinynet_block


def etinynet(b: GraphBuilder, x: int, genome: Genome) -> list[Feature]:
    """EtinyNet with per-stage width, depth, block type and kernel; returns the genome's taps.

    Stem: 3x3 conv s2 + 2x2 max-pool s2 to the stage-1 width. Stages 2-4 open with a stride-2
    block; the last block of stage 4 widens to 512 * width (the backbone output).
    """
    channels = genome.stage_channels()
    taps = set(genome.taps)
    features: list[Feature] = []
    with b.scope("backbone"):
        y = conv_bn(b, x, channels[0], 3, 2, name="stem")
        y = b.maxpool(y, 2, 2, name="stem_pool")
        for s, (stage, out) in enumerate(zip(genome.stages, channels, strict=True), start=1):
            for i in range(1, stage.depth + 1):
                stride = 2 if s > 1 and i == 1 else 1
                width = genome.last_channels() if (s, i) == (4, stage.depth) else out
                y = etinynet_block(b, y, stage.block, width, stride, stage.kernel, f"s{s}.b{i}")
                if (s, i) in taps:
                    features.append(Feature(y, width, STAGE_STRIDES[s - 1]))
    return features


# -- reference backbones for the baselines -----------------------------------------------------
# Each takes the names of the points a head needs (``taps``) and returns them as Features in
# network order. Tap names follow the reference implementation's layer names so a reader can
# check them against it. Strides are nominal (input / map size for inputs divisible by 32).


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: nearest multiple of ``divisor``, never more than 10% down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _check_taps(taps: tuple[str, ...], valid: list[str], net: str) -> None:
    unknown = [t for t in taps if t not in valid]
    if unknown:
        raise ValueError(f"{net}: unknown taps {unknown}; valid: {', '.join(valid)}")
    if [t for t in valid if t in taps] != list(taps):
        raise ValueError(f"{net}: taps {list(taps)} must be distinct and in network order")


# (pointwise filters at alpha 1, depthwise stride) of Keras MobileNet's 13 separable blocks.
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def mobilenet_v1(b: GraphBuilder, x: int, alpha: float, taps: tuple[str, ...] = ("conv_pw_13",),
                 act: str = "relu6") -> list[Feature]:
    """MobileNet v1 in the Keras-applications layout: conv 3x3 s2, then 13 depthwise-separable
    blocks (dw 3x3 + BN + act, pw 1x1 + BN + act); every width is ``int(c * alpha)``.

    Taps are Keras layer names: ``conv1`` (the stem) or ``conv_pw_{i}`` (block i, 1..13).
    ``act="relu"`` gives the MLPerf Tiny VWW reference, which otherwise has the same layout.
    """
    valid = ["conv1"] + [f"conv_pw_{i}" for i in range(1, 14)]
    _check_taps(taps, valid, "mobilenet_v1")
    features: list[Feature] = []
    with b.scope("backbone"):
        y = conv_bn(b, x, int(32 * alpha), 3, 2, act=act, name="conv1")
        stride = 2
        _tap(b, features, taps, "conv1", y, stride)
        for i, (filters, s) in enumerate(MOBILENET_V1_BLOCKS, start=1):
            stride *= s
            with b.scope(f"b{i}"):
                y = dw_bn(b, y, 3, s, act=act, name="dw")
                y = conv_bn(b, y, int(filters * alpha), 1, act=act, name="pw")
            _tap(b, features, taps, f"conv_pw_{i}", y, stride)
    return features


def _tap(b: GraphBuilder, features: list[Feature], taps: tuple[str, ...], name: str, y: int,
         stride: int) -> None:
    if name in taps:
        features.append(Feature(y, b.channels(y), stride))


# (expansion t, filters c at alpha 1, repeats n, first stride s): the MobileNetV2 paper's table.
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
MOBILENET_V2_LAST = 1280


def mobilenet_v2_taps() -> list[str]:
    """Tap names in network order: ``block_{i}_expand`` (expansion output of block i, i >= 1,
    before its depthwise, so at the block's input stride), ``block_{i}`` and ``out_relu``."""
    names = ["block_0"]
    for i in range(1, sum(n for _, _, n, _ in MOBILENET_V2_SETTINGS)):
        names += [f"block_{i}_expand", f"block_{i}"]
    return [*names, "out_relu"]


def mobilenet_v2(b: GraphBuilder, x: int, alpha: float, taps: tuple[str, ...] = ("out_relu",)
                 ) -> list[Feature]:
    """MobileNetV2 in the Keras-applications layout (ReLU6, widths rounded to multiples of 8).

    The last 1x1 conv keeps 1280 channels for alpha <= 1, as in Keras and the paper.
    """
    _check_taps(taps, mobilenet_v2_taps(), "mobilenet_v2")
    features: list[Feature] = []
    with b.scope("backbone"):
        y = conv_bn(b, x, make_divisible(32 * alpha), 3, 2, act="relu6", name="conv1")
        stride, block = 2, 0
        for t, c, n, s in MOBILENET_V2_SETTINGS:
            for i in range(n):
                step = s if i == 0 else 1
                name = f"block_{block}"
                expanded, y = _inverted_residual(b, y, make_divisible(int(c * alpha)), step, t,
                                                 name)
                if expanded is not None:
                    _tap(b, features, taps, f"{name}_expand", expanded, stride)
                stride *= step
                _tap(b, features, taps, name, y, stride)
                block += 1
        last = MOBILENET_V2_LAST if alpha <= 1.0 else make_divisible(MOBILENET_V2_LAST * alpha)
        y = conv_bn(b, y, last, 1, act="relu6", name="conv_last")
        _tap(b, features, taps, "out_relu", y, stride)
    return features


def _inverted_residual(b: GraphBuilder, x: int, out: int, stride: int, expansion: int,
                       name: str) -> tuple[int | None, int]:
    """Expand 1x1 (none for t = 1) -> dw 3x3 -> linear 1x1; residual when shapes match.

    Returns the expansion output (a tap point of SSDLite) and the block output.
    """
    c_in = b.channels(x)
    with b.scope(name):
        expanded = None
        if expansion != 1:
            expanded = conv_bn(b, x, c_in * expansion, 1, act="relu6", name="expand")
        y = dw_bn(b, x if expanded is None else expanded, 3, stride, act="relu6", name="dw")
        y = conv_bn(b, y, out, 1, act=None, name="project")
        if stride == 1 and c_in == out:
            y = b.add(x, y, name="residual")
    return expanded, y


# (squeeze, expand per branch) of SqueezeNet 1.1's fire modules.
SQUEEZENET_FIRES = {"fire2": (16, 64), "fire3": (16, 64), "fire4": (32, 128), "fire5": (32, 128),
                    "fire6": (48, 192), "fire7": (48, 192), "fire8": (64, 256),
                    "fire9": (64, 256)}
_SQUEEZENET_POOL_AFTER = ("fire3", "fire5")


def squeezenet1_1(b: GraphBuilder, x: int, taps: tuple[str, ...] = ("fire9",)) -> list[Feature]:
    """SqueezeNet 1.1 (torchvision layout): conv 3x3 s2 (no padding, bias, ReLU), max-pools
    3x3 s2 with ceil_mode after conv1, fire3 and fire5; biased convs and no BatchNorm.

    Taps: ``conv1`` (before its pool) or ``fire2`` .. ``fire9``. At 256 input the maps are
    127 (conv1), 63 (fire2-3), 31 (fire4-5) and 15 (fire6-9).
    """
    _check_taps(taps, ["conv1", *SQUEEZENET_FIRES], "squeezenet1_1")
    features: list[Feature] = []
    with b.scope("backbone"):
        y = b.act(b.conv(x, 64, 3, 2, padding=0, bias=True, name="conv1"), name="conv1_relu")
        _tap(b, features, taps, "conv1", y, 2)
        y = b.maxpool(y, 3, 2, ceil_mode=True, name="pool1")
        stride = 4
        for name, (squeeze, expand) in SQUEEZENET_FIRES.items():
            y = _fire(b, y, squeeze, expand, name)
            _tap(b, features, taps, name, y, stride)
            if name in _SQUEEZENET_POOL_AFTER:
                y = b.maxpool(y, 3, 2, ceil_mode=True, name=f"pool_{name}")
                stride *= 2
    return features


def _fire(b: GraphBuilder, x: int, squeeze: int, expand: int, name: str) -> int:
    with b.scope(name):
        s = b.act(b.conv(x, squeeze, 1, bias=True, name="squeeze"), name="squeeze_relu")
        e1 = b.act(b.conv(s, expand, 1, bias=True, name="expand1x1"), name="expand1x1_relu")
        e3 = b.act(b.conv(s, expand, 3, bias=True, name="expand3x3"), name="expand3x3_relu")
        return b.concat([e1, e3], axis=1)


def resnet8(b: GraphBuilder, x: int, filters: int = 16) -> list[Feature]:
    """MLPerf Tiny's CIFAR-10 ResNet (``resnet_v1_eembc``): conv 3x3 + BN + ReLU, then three
    residual stacks of ``filters`` x 1, 2, 4 (stride 1, 2, 2). A strided stack's shortcut is a
    1x1 strided conv with bias and no BN, as in the reference. Returns the last stack."""
    with b.scope("backbone"):
        y = conv_bn(b, x, filters, 3, name="conv1")
        stride = 1
        for i, (mult, s) in enumerate(((1, 1), (2, 2), (4, 2)), start=1):
            stride *= s
            y = _basic_block(b, y, filters * mult, s, f"stack{i}")
    return [Feature(y, b.channels(y), stride)]


def _basic_block(b: GraphBuilder, x: int, out: int, stride: int, name: str) -> int:
    with b.scope(name):
        y = conv_bn(b, x, out, 3, stride, name="conv1")
        y = conv_bn(b, y, out, 3, act=None, name="conv2")
        shortcut = x if stride == 1 else b.conv(x, out, 1, stride, bias=True, name="shortcut")
        return b.act(b.add(shortcut, y, name="residual"))
