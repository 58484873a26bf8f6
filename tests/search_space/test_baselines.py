from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import estimators
from estimators.counting import macs, macs_seed, params
from estimators.deploy import (
    ADD,
    CONCATENATION,
    CONV_2D,
    DEPTHWISE_CONV_2D,
    MEAN,
    PAD,
    RESHAPE,
    RESIZE_NEAREST_NEIGHBOR,
    deployed,
)
from estimators.ir import Graph
from search_space import baselines
from search_space.baselines import (
    BaselineError,
    baseline_for_row,
    baseline_for_run,
    build_baseline,
    get_baseline,
    list_baselines,
    seed_genome,
)
from search_space.model import CLASSIFICATION, DETECTION, Architecture, GraphNet, lower

CSV_PATH = Path(estimators.__file__).parent / "data" / "published_device_runs.csv"
ALL = [info.name for info in list_baselines()]


# -- local counting helpers ---------------------------------------------------------------
def weights_and_biases(graph: Graph) -> tuple[int, int]:
    """(weights, biases) after BN folding: a conv gets one bias per output channel if it has
    a bias or a BN after it (folding creates one)."""
    bn_inputs = {op.inputs[0] for op in graph.ops if op.kind == "bn"}
    weights = biases = 0
    for op in graph.ops:
        if op.kind not in ("conv", "linear"):
            continue
        c_in, c_out = graph.in_shape(op)[1], graph.out_shape(op)[1]
        k2 = op.kernel * op.kernel if op.kind == "conv" else 1
        weights += c_out * (c_in // op.groups) * k2
        if op.bias or op.output in bn_inputs:
            biases += c_out
    return weights, biases


def int8_weight_bytes(graph: Graph) -> int:
    """X-CUBE-AI's "weights flash" of an int8 model: 1 byte per weight, 4 per int32 bias."""
    weights, biases = weights_and_biases(graph)
    return weights + 4 * biases


def deployed_params(graph: Graph) -> int:
    return sum(weights_and_biases(graph))


def bn_channels(graph: Graph) -> int:
    return sum(graph.out_shape(op)[1] for op in graph.ops if op.kind == "bn")


# -- registry -------------------------------------------------------------------------------
EXPECTED_DETECTORS = {
    "etn-w1.0-ssdlite", "etn-w0.75-ssdlite", "etn-w0.5-ssdlite", "etn-w0.35-ssdlite",
    "mbv2-w0.35-ssdlite", "squeezenet1.1-ssd",
    "ssd-mbv1-0.25-192", "ssd-mbv1-0.25-224", "ssd-mbv1-0.25-256",
}


def test_registry_lists_the_required_baselines():
    detectors = {i.name for i in list_baselines(DETECTION)}
    assert detectors == EXPECTED_DETECTORS
    classifiers = {i.name for i in list_baselines(CLASSIFICATION)}
    assert {"mbv1-0.25-224-c5", "mbv1-0.25-96x1-c5", "mbv2-0.35-128-c1000", "resnet8-cifar10",
            "vww-mbv1-0.25-96", "person-det-mbv1-0.25-96x1"} <= classifiers
    assert len(ALL) == len(set(ALL))
    for info in list_baselines():
        assert info.description and info.source and info.family
        assert (info.task == CLASSIFICATION) == bool(info.published)


def test_get_baseline_is_cached_and_build_is_fresh():
    assert get_baseline("etn-w0.5-ssdlite") is get_baseline("etn-w0.5-ssdlite")
    a, b = build_baseline("resnet8-cifar10"), build_baseline("resnet8-cifar10")
    assert isinstance(a, GraphNet) and a is not b


def test_unknown_name_error_is_one_line_and_suggests():
    with pytest.raises(BaselineError) as err:
        get_baseline("etn-w1.0-ssd")
    message = str(err.value)
    assert "\n" not in message
    assert "'etn-w1.0-ssd'" in message and "etn-w1.0-ssdlite" in message
    assert isinstance(err.value, ValueError)
    with pytest.raises(BaselineError, match="zzz"):
        get_baseline("zzz")


def test_registering_a_name_twice_fails():
    with pytest.raises(ValueError, match="registered twice"):
        baselines.register_baseline("resnet8-cifar10", task=CLASSIFICATION, description="x",
                                    source="y", num_classes=10
                                    )(lambda n: get_baseline("resnet8-cifar10"))


@pytest.mark.parametrize("name", ["etn-w0.35-ssdlite", "ssd-mbv1-0.25-192",
                                  "mbv2-w0.35-ssdlite", "squeezenet1.1-ssd"])
def test_detector_baselines_take_the_users_class_count(name):
    arch = get_baseline(name, 3)
    assert arch.num_classes == 3
    assert arch.graph.shape(arch.graph.outputs[1])[2] == 4
    assert arch.num_priors == get_baseline(name).num_priors


def test_classifier_baselines_keep_their_published_class_count():
    assert get_baseline("resnet8-cifar10", 10).num_classes == 10
    with pytest.raises(BaselineError, match="cannot be built for 3 classes"):
        get_baseline("resnet8-cifar10", 3)
    with pytest.raises(BaselineError, match="num_classes=0"):
        get_baseline("etn-w0.35-ssdlite", 0)


@pytest.mark.parametrize("name", ALL)
def test_every_baseline_lowers_with_consistent_outputs(name):
    arch = get_baseline(name)
    assert isinstance(arch, Architecture) and arch.name == name
    outputs = [arch.graph.shape(t) for t in arch.graph.outputs]
    if arch.task == DETECTION:
        p = arch.num_priors
        assert outputs == [(1, p, 4), (1, p, arch.num_classes + 1)]
        assert len(arch.map_sizes) == len(arch.anchors)
        assert arch.priors().shape == (p, 4)
    else:
        assert outputs == [(1, arch.num_classes)]
    # Every baseline has a backbone scope the estimators can split on.
    assert any(arch.graph.in_scope(op, arch.backbone_scope) for op in arch.graph.ops)


@pytest.mark.parametrize("name", ["etn-w0.35-ssdlite", "ssd-mbv1-0.25-192", "ssd-mbv1-0.25-224",
                                  "mbv2-w0.35-ssdlite"])
def test_detector_forward_shapes(name):
    model = build_baseline(name).eval()
    arch = model.arch
    with torch.no_grad():
        boxes, logits = model(torch.zeros(arch.input_shape))
    assert boxes.shape == (1, arch.num_priors, 4)
    assert logits.shape == (1, arch.num_priors, arch.num_classes + 1)
    assert model.priors.shape == (arch.num_priors, 4)


@pytest.mark.parametrize("name", ["resnet8-cifar10", "vww-mbv1-0.25-96",
                                  "person-det-mbv1-0.25-96x1", "mbv2-0.35-128-c5"])
def test_classifier_forward_shapes(name):
    model = build_baseline(name).eval()
    with torch.no_grad():
        logits = model(torch.zeros(model.arch.input_shape))
    assert logits.shape == (1, model.arch.num_classes)


def test_detection_defaults():
    for name in EXPECTED_DETECTORS:
        arch = get_baseline(name)
        expected = 1 if name.startswith("ssd-mbv1") else 20
        assert arch.num_classes == expected, name


# -- the seed ----------------------------------------------------------------------------
def test_seed_figures_reproduce_the_seed_table():
    arch = lower(seed_genome(1.0), num_classes=20, class_channels=1)
    assert round(macs_seed(arch.graph) / 1e6, 3) == 199.145
    assert params(arch.graph) == 968_022
    assert round(macs_seed(arch.graph, "backbone") / 1e6, 3) == 182.673
    assert params(arch.graph, "backbone") == 658_880


def test_seed_baselines_are_the_seed_genome():
    for width in baselines.SEED_WIDTHS:
        arch = get_baseline(f"etn-w{width}-ssdlite")
        assert arch.graph == lower(seed_genome(width), num_classes=20).graph
        assert arch.num_priors == 6132
        assert arch.input_size == 256


def _etinynet_backbone_seed_counts(width: float) -> tuple[int, int]:
    """(params, MACs) of the seed backbone in the seed convention, written from the table of
    docs/etinynet-ssd.md without the builder: an independent check of every width."""
    c0, c1, c2, c3, c4 = (int(c * width) for c in (32, 128, 192, 256, 512))
    p = m = 0

    def conv(c_in: int, c_out: int, k: int, size: int, groups: int = 1, bias: bool = False,
             bn: bool = True) -> None:
        nonlocal p, m
        p += c_out * (c_in // groups) * k * k + (c_out if bias else 0) + (2 * c_out if bn else 0)
        m += size * size * c_out * (c_in // groups) * k * k + (4 * size * size * c_out if bn else 0)

    def block(c_in: int, c_out: int, size: int, skip: bool) -> None:
        conv(c_in, c_in, 3, size, groups=c_in)
        conv(c_in, c_out, 1, size)
        conv(c_out, c_out, 3, size, groups=c_out)
        if skip:  # the long-skip projection when shapes differ
            conv(c_in, c_in, 1, size, groups=c_in, bias=True)
            conv(c_in, c_out, 1, size, bias=True, bn=False)

    conv(3, c0, 3, 128)
    for _ in range(4):
        block(c0, c0, 64, False)
    block(c0, c1, 32, False)
    for _ in range(3):
        block(c1, c1, 32, False)
    block(c1, c2, 16, True)
    block(c2, c2, 16, False)
    block(c2, c2, 16, False)
    block(c2, c3, 8, True)
    block(c3, c3, 8, False)
    block(c3, c4, 8, c3 != c4)
    return p, m


@pytest.mark.parametrize("width", [1.0, 0.75, 0.5, 0.35])
def test_seed_backbone_counts_match_the_documented_layout(width):
    graph = get_baseline(f"etn-w{width}-ssdlite").graph
    p, m = _etinynet_backbone_seed_counts(width)
    assert params(graph, "backbone") == p
    assert macs_seed(graph, "backbone") == m
    if width == 1.0:
        assert (p, round(m / 1e6, 3)) == (658_880, 182.673)


# -- published counts --------------------------------------------------------------------
# Well-known figures: MobileNet v1 / v2 papers and Keras applications (params in millions,
# MACs in millions, at the precision they are published), MLPerf Tiny (ResNet-8: 12.5M MACs).
# Tolerance 1%: the published figures are rounded to 2-3 significant digits.
PUBLISHED_COUNTS = {
    "mbv1-1.0-224-c1000": (4.2, 569),
    "mbv1-0.5-224-c1000": (1.32, 149),
    "mbv1-0.25-224-c1000": (0.47, 41),
    "mbv2-1.0-224-c1000": (3.47, 300),
    "mbv2-0.35-224-c1000": (1.66, 59),
    "resnet8-cifar10": (0.078, 12.5),
}


@pytest.mark.parametrize(("name", "expected"), PUBLISHED_COUNTS.items())
def test_classifier_counts_match_published(name, expected):
    graph = get_baseline(name).graph
    mparams, mmacs = expected
    assert deployed_params(graph) / 1e6 == pytest.approx(mparams, rel=0.01)
    assert macs(graph) / 1e6 == pytest.approx(mmacs, rel=0.01)


def test_keras_parameter_totals():
    # Keras counts conv weights + conv biases + 4 per BN channel (gamma, beta, mean, var).
    # MLPerf Tiny references: every conv has a bias, folded here, so Keras = folded + 4 * BN.
    vww = get_baseline("vww-mbv1-0.25-96").graph
    assert deployed_params(vww) + 4 * bn_channels(vww) == 221_794
    resnet = get_baseline("resnet8-cifar10").graph
    assert deployed_params(resnet) + 4 * bn_channels(resnet) == 78_666
    # Keras MobileNet 1.0 (no conv biases): 4,253,864 parameters.
    mbv1 = get_baseline("mbv1-1.0-224-c1000").graph
    weights, _ = weights_and_biases(mbv1)
    assert weights + 1000 + 4 * bn_channels(mbv1) == 4_253_864


def _csv_rows() -> list[dict[str, str]]:
    with CSV_PATH.open(newline="") as f:
        return list(csv.DictReader(f))


def test_packaged_csv_is_there():
    rows = _csv_rows()
    assert len(rows) > 30
    assert {"model", "alpha", "input_h", "weights_flash_kib", "latency_ms"} <= set(rows[0])


def test_every_published_run_maps_to_a_baseline():
    for row in _csv_rows():
        name = baseline_for_row(row)
        assert name is not None, row
        arch = get_baseline(name)
        h, w, c = int(row["input_h"]), int(row["input_w"]), int(row["input_c"])
        assert arch.input_shape == (1, c, h, w)
        assert arch.num_classes == int(row["num_classes"])


def test_every_classifier_has_a_published_run():
    published = {baseline_for_row(row) for row in _csv_rows()}
    assert published == {i.name for i in list_baselines(CLASSIFICATION)}


def test_baseline_for_run_keys():
    assert baseline_for_run("mobilenet_v1", 0.25, 96, 96, 1, 5) == "mbv1-0.25-96x1-c5"
    assert baseline_for_run("mobilenet_v2", 1.4, 224, 224, 3, 1000) == "mbv2-1.4-224-c1000"
    assert baseline_for_run("resnet8 (CIFAR-10 reference)", None, 32, 32, 3, 10) == \
        "resnet8-cifar10"
    assert baseline_for_run("mobilenet_v1", 0.75, 224, 224, 3, 1000) is None
    assert baseline_for_run("resnet8 (CIFAR-10 reference)", 1.0, 32, 32, 3, 10) is None


def test_weights_flash_matches_published_int8_models():
    """X-CUBE-AI's weights flash is int8 weights + int32 biases (BN folded), so a faithful
    rebuild reproduces it to the table's rounding (0.01 KiB). One ST row (7.3.0, mobilenet_v1
    0.25 96x96x3) is printed in kB instead of KiB (219.84 = 214.69 * 1.024); both are accepted.
    """
    checked = 0
    for row in _csv_rows():
        if not row["weights_flash_kib"]:
            continue
        nbytes = int8_weight_bytes(get_baseline(baseline_for_row(row)).graph)
        published = float(row["weights_flash_kib"])
        assert (abs(nbytes / 1024 - published) <= 0.01
                or abs(nbytes / 1000 - published) <= 0.01), (row["model"], nbytes, published)
        checked += 1
    assert checked >= 25


# -- the ST SSD -----------------------------------------------------------------------------
# ST's published figures (stm32ai-modelzoo object_detection READMEs): MACCs (M) from
# STM32Cube.AI 8.1.0, weights flash (KiB) as in the 7.3.0 / 9.1.0 tables.
ST_MACC = {192: 40.54, 224: 59.83, 256: 72.40}
ST_WEIGHTS_KIB = {192: 438.28, 224: 595.66}
ST_CONV_MACS = {192: 39_942_272, 224: 59_115_840, 256: 71_597_760}


@pytest.mark.parametrize("resolution", [192, 224, 256])
def test_st_ssd_layout(resolution):
    arch = get_baseline(f"ssd-mbv1-0.25-{resolution}")
    expected = {192: (24, 12, 6, 3, 1), 224: (32, 16, 8, 4, 2, 1), 256: (32, 16, 8, 4, 2, 1)}
    assert arch.map_sizes == expected[resolution]
    assert all(a.boxes_per_cell == 5 for a in arch.anchors)
    assert arch.num_priors == 5 * sum(s * s for s in arch.map_sizes)


def test_st_ssd_priors_follow_st_gen_anchors():
    # gen_anchors: the first size at ratios 1, 2, 1/2, 1/3 (w = s sqrt(r), h = s / sqrt(r)),
    # then the second size square; cells row-major; clip_boxes=False.
    priors = get_baseline("ssd-mbv1-0.25-224").priors()
    s0, s1, r2, r3 = 0.1, 0.16, math.sqrt(2), math.sqrt(3)
    first = [(s0, s0), (s0 * r2, s0 / r2), (s0 / r2, s0 * r2), (s0 / r3, s0 * r3), (s1, s1)]
    np.testing.assert_allclose(priors[:5], [(0.5 / 32, 0.5 / 32, w, h) for w, h in first],
                               rtol=1e-6)
    np.testing.assert_allclose(priors[5, :2], [1.5 / 32, 0.5 / 32])
    # The 1x1 map's ratio-1/3 box (size 0.9) is taller than the image and stays so.
    np.testing.assert_allclose(priors[-2], [0.5, 0.5, 0.9 / r3, 0.9 * r3], rtol=1e-6)


@pytest.mark.parametrize("resolution", [192, 224])
def test_st_ssd_weights_reproduce_st_exactly(resolution):
    # ST's Keras model outputs its anchors, so the file also holds them: an int8 constant,
    # 4 bytes per prior.
    arch = get_baseline(f"ssd-mbv1-0.25-{resolution}")
    nbytes = int8_weight_bytes(arch.graph) + 4 * arch.num_priors
    assert nbytes / 1024 == pytest.approx(ST_WEIGHTS_KIB[resolution], abs=0.01)


@pytest.mark.parametrize("resolution", [192, 224, 256])
def test_st_ssd_macs_just_below_st_maccs(resolution):
    conv_macs = macs(get_baseline(f"ssd-mbv1-0.25-{resolution}").graph)
    assert conv_macs == ST_CONV_MACS[resolution]
    # X-CUBE-AI's MACC also charges layers that do no multiply-accumulates here (input
    # conversion, adds, resizes, mean, softmax): conv MACs come 1.1-1.5% below, never above.
    st = ST_MACC[resolution] * 1e6
    assert 0.01 < (st - conv_macs) / st < 0.015


def test_st_ssd_deploys_native_resize_and_pad():
    kinds = Counter(deployed(get_baseline("ssd-mbv1-0.25-224").graph).kinds)
    # PAD: ST's three tap paddings only; the stem and the six strided depthwise convs pad
    # as TF SAME does, inside the kernel (the real file shows the same op list).
    # RESHAPE: one per predictor (the NHWC permutes vanish).
    assert kinds == {CONV_2D: 36, DEPTHWISE_CONV_2D: 17, PAD: 3, ADD: 5,
                     RESIZE_NEAREST_NEIGHBOR: 5, MEAN: 1, RESHAPE: 12, CONCATENATION: 2}


def test_mbv2_ssdlite_and_squeezenet_taps():
    mbv2 = get_baseline("mbv2-w0.35-ssdlite")
    assert mbv2.map_sizes == (16, 8, 4, 2, 1)
    channels = {op.name: mbv2.graph.out_shape(op)[1] for op in mbv2.graph.ops}
    assert channels["backbone.block_13.expand.conv"] == 192
    assert channels["backbone.conv_last.conv"] == 1280
    squeeze = get_baseline("squeezenet1.1-ssd")
    assert squeeze.map_sizes == (31, 15, 8, 4, 2, 1)
    assert squeeze.anchors == baselines.seed_anchors()
    assert not any(op.kind == "bn" for op in squeeze.graph.ops if op.name.startswith("backbone"))
    assert math.isclose(squeeze.anchors[0].min_scale, 26 / 256)
