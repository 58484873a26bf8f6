"""Latency features: one kernel per deployed op, and the terms each kernel adds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from estimators.deploy import (
    ADD,
    AVERAGE_POOL_2D,
    CONCATENATION,
    CONV_2D,
    DEPTHWISE_CONV_2D,
    FULLY_CONNECTED,
    MAX_POOL_2D,
    MEAN,
    PAD,
    RESHAPE,
    deployed,
)
from estimators.latency.features import (
    FEATURES,
    GROUPS,
    INDEX,
    Kernel,
    feature_vector,
    graph_features,
    kernel_terms,
    kernels,
)
from search_space.baselines import get_baseline
from search_space.model import lower
from search_space.sampling import random_genomes

POOLS = {MAX_POOL_2D, AVERAGE_POOL_2D, MEAN}
COMPUTE = {CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD} | POOLS


def _graphs() -> list[tuple[str, object]]:
    found = [(name, deployed(get_baseline(name).graph))
             for name in ("squeezenet1.1-ssd", "resnet8-cifar10", "ssd-mbv1-0.25-192")]
    found += [(f"genome-{i}", deployed(lower(g, 3).graph))
              for i, g in enumerate(random_genomes(3, seed=11))]
    return found


GRAPHS = _graphs()
IDS = [name for name, _ in GRAPHS]


def test_every_feature_belongs_to_a_group():
    assert set(GROUPS) == set(FEATURES)
    assert set(GROUPS.values()) == {"conv", "depthwise", "other"}
    assert {name: i for i, name in enumerate(FEATURES)} == INDEX
    assert len(set(FEATURES)) == len(FEATURES)
    assert GROUPS["fc.macs"] == "conv" and GROUPS["dw.macs"] == "depthwise"
    assert GROUPS["invoke"] == "other" and GROUPS["move.elems"] == "other"


@pytest.mark.parametrize(("name", "dep"), GRAPHS, ids=IDS)
def test_one_kernel_per_deployed_op(name, dep):
    found = kernels(dep)
    assert [k.kind for k in found] == dep.kinds
    for k, op in zip(found, dep.ops, strict=True):
        acts = dep.activation_inputs(op)
        assert k.in_shape == dep.tensors[acts[0]].shape
        assert k.out_shape == dep.tensors[op.output].shape
        assert (k.kernel, k.stride, k.macs, k.inputs) == (op.kernel, op.stride, op.macs,
                                                          len(acts))


@pytest.mark.parametrize(("name", "dep"), GRAPHS, ids=IDS)
def test_feature_vector_is_the_sum_of_kernel_terms(name, dep):
    found = kernels(dep)
    expected = dict.fromkeys(FEATURES, 0.0)
    expected["invoke"] = 1.0
    for k in found:
        for feature, value in kernel_terms(k).items():
            expected[feature] += value
    x = feature_vector(found)
    assert x.shape == (len(FEATURES),)
    np.testing.assert_array_equal(x, [expected[f] for f in FEATURES])
    np.testing.assert_array_equal(graph_features(dep), x)


@pytest.mark.parametrize(("name", "dep"), GRAPHS, ids=IDS)
def test_features_count_what_the_deployed_graph_does(name, dep):
    x = dict(zip(FEATURES, graph_features(dep), strict=True))
    convs = [op for op in dep.ops if op.kind == CONV_2D]
    one = [op for op in convs if op.kernel == 1]
    assert x["conv1x1.macs"] + x["convkxk.macs"] == sum(op.macs for op in convs)
    assert x["conv1x1.macs"] == sum(op.macs for op in one)
    assert x["dw.macs"] == sum(op.macs for op in dep.ops if op.kind == DEPTHWISE_CONV_2D)
    assert x["fc.macs"] == sum(op.macs for op in dep.ops if op.kind == FULLY_CONNECTED)
    assert sum(x[f] for f in FEATURES if f.endswith(".macs")) == dep.macs
    kinds = Counter(dep.kinds)
    assert x["conv1x1.ops"] == len(one) and x["convkxk.ops"] == len(convs) - len(one)
    assert x["dw.ops"] == kinds[DEPTHWISE_CONV_2D] and x["fc.ops"] == kinds[FULLY_CONNECTED]
    assert x["add.ops"] == kinds[ADD]
    assert x["pool.ops"] == sum(kinds[k] for k in POOLS)
    assert x["move.ops"] == sum(n for k, n in kinds.items() if k not in COMPUTE)
    assert sum(x[f] for f in FEATURES if f.endswith(".ops")) == len(dep.ops)
    assert x["invoke"] == 1.0
    assert x["conv1x1.out"] == sum(dep.tensors[op.output].numel for op in one)
    assert x["convkxk.taps"] == sum(dep.tensors[op.output].numel * op.kernel ** 2
                                    for op in convs if op.kernel > 1)
    assert (np.asarray(list(x.values())) >= 0).all()
    for prefix in ("conv1x1", "convkxk", "dw"):  # padded channel tiles never do less work
        assert x[f"{prefix}.tiled"] >= x[f"{prefix}.macs"]


def test_hand_computed_features_of_the_tiny_graph(tiny_graph):
    dep = deployed(tiny_graph)
    # PAD 8x8x3 -> 10x10x3; conv k3 s2 -> 4x4x4; dw k3 4x4x4; two 1x1 convs 4 -> 8 channels
    # (main path and skip); ADD; MEAN -> 1x1x8; FULLY_CONNECTED 8 -> 2.
    assert dep.kinds == [PAD, CONV_2D, DEPTHWISE_CONV_2D, CONV_2D, CONV_2D, ADD, MEAN,
                         FULLY_CONNECTED]
    expected = {
        "conv1x1.macs": 2 * 16 * 8 * 4, "conv1x1.out": 2 * 128, "conv1x1.in": 2 * 64,
        "conv1x1.ops": 2,
        "convkxk.macs": 64 * 9 * 3, "convkxk.taps": 64 * 9, "convkxk.out": 64,
        "convkxk.in": 300, "convkxk.ops": 1,
        "dw.macs": 64 * 9, "dw.out": 64, "dw.in": 64, "dw.ops": 1,
        # Channel tiles: outputs padded to 16, inputs to 8 (GEMM); depthwise channels to 16.
        "conv1x1.tiled": 2 * 16 * 16 * 8, "convkxk.tiled": 16 * 16 * 8 * 9,
        "dw.tiled": 16 * 16 * 9,
        "fc.macs": 16, "fc.ops": 1,
        "add.elems": 128 * 3, "add.ops": 1,   # two inputs read, one output written
        "pool.elems": 128, "pool.ops": 1,     # MEAN reads its whole input
        "move.elems": 192 + 300, "move.ops": 1,  # PAD reads 192, writes 300
        "invoke": 1,
    }
    assert dict(zip(FEATURES, graph_features(dep), strict=True)) == expected


def test_concatenation_reads_what_it_writes():
    concat = Kernel(CONCATENATION, in_shape=(1, 10, 4), out_shape=(1, 30, 4), inputs=3)
    assert kernel_terms(concat) == {"move.elems": 240, "move.ops": 1}
    reshape = Kernel(RESHAPE, in_shape=(1, 2, 3, 4), out_shape=(1, 24))
    assert kernel_terms(reshape) == {"move.elems": 48, "move.ops": 1}
    pad = Kernel(PAD, in_shape=(1, 4, 4, 2), out_shape=(1, 6, 6, 2))
    assert kernel_terms(pad) == {"move.elems": 32 + 72, "move.ops": 1}


@pytest.mark.parametrize(("name", "dep"), GRAPHS, ids=IDS)
def test_real_concatenations_count_their_output_twice(name, dep):
    concats = [k for k in kernels(dep) if k.kind == CONCATENATION]
    for k in concats:
        assert k.inputs > 1
        assert kernel_terms(k)["move.elems"] == 2 * k.out_elems


def test_each_kind_of_kernel_by_hand():
    conv1 = Kernel(CONV_2D, (1, 8, 8, 16), (1, 8, 8, 32), kernel=1, macs=8 * 8 * 32 * 16)
    assert kernel_terms(conv1) == {"conv1x1.macs": 32768, "conv1x1.out": 2048,
                                   "conv1x1.in": 1024, "conv1x1.ops": 1,
                                   "conv1x1.tiled": 32768}  # 32 and 16 channels: whole tiles
    conv5 = Kernel(CONV_2D, (1, 9, 9, 2), (1, 4, 4, 8), kernel=5, stride=2, macs=16 * 8 * 50)
    assert kernel_terms(conv5) == {"convkxk.macs": 6400, "convkxk.taps": 128 * 25,
                                   "convkxk.out": 128, "convkxk.in": 162, "convkxk.ops": 1,
                                   "convkxk.tiled": 16 * 16 * 8 * 25}  # 8 -> 16, 2 -> 8
    dw = Kernel(DEPTHWISE_CONV_2D, (1, 8, 8, 4), (1, 4, 4, 4), kernel=3, stride=2, macs=576)
    assert kernel_terms(dw) == {"dw.macs": 576, "dw.out": 64, "dw.in": 256, "dw.ops": 1,
                                "dw.tiled": 16 * 16 * 9}
    fc = Kernel(FULLY_CONNECTED, (1, 64), (1, 10), macs=640)
    assert kernel_terms(fc) == {"fc.macs": 640, "fc.ops": 1}
    add = Kernel(ADD, (1, 4, 4, 8), (1, 4, 4, 8), inputs=2)
    assert kernel_terms(add) == {"add.elems": 384, "add.ops": 1}
    pool = Kernel(MAX_POOL_2D, (1, 8, 8, 4), (1, 4, 4, 4), kernel=3, stride=2)
    assert kernel_terms(pool) == {"pool.elems": 64 * 9, "pool.ops": 1}
    mean = Kernel(MEAN, (1, 6, 6, 10), (1, 1, 1, 10))
    assert kernel_terms(mean) == {"pool.elems": 360, "pool.ops": 1}
    for k in (conv1, conv5, dw, fc, add, pool, mean):
        assert set(kernel_terms(k)) <= set(FEATURES)


def test_empty_model_is_one_invoke():
    x = feature_vector([])
    assert x[INDEX["invoke"]] == 1.0 and x.sum() == 1.0
