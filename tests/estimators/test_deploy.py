from __future__ import annotations

from collections import Counter

import pytest

from estimators.counting import macs
from estimators.deploy import (
    ACTIVATION,
    ADD,
    AUX,
    BIAS,
    CONCATENATION,
    CONV_2D,
    DEPTHWISE_CONV_2D,
    FULLY_CONNECTED,
    MAX_POOL_2D,
    MEAN,
    PAD,
    RELU,
    RESHAPE,
    RESIZE_NEAREST_NEIGHBOR,
    TRANSPOSE,
    WEIGHT,
    deployed,
    needs_explicit_pad,
)
from estimators.flash import flash_breakdown
from estimators.ir import GraphBuilder, symmetric_padding
from estimators.ram import TAIL_MCU32, arena_plan
from search_space.model import lower


def test_tiny_op_list(tiny_graph):
    d = deployed(tiny_graph)
    # conv k3 s2 p1 -> PAD + VALID conv; BN and activations fused; gap -> MEAN;
    # flatten of a 1x1 map read only by the linear -> nothing (FULLY_CONNECTED flattens)
    assert d.kinds == [PAD, CONV_2D, DEPTHWISE_CONV_2D, CONV_2D, CONV_2D, ADD, MEAN,
                       FULLY_CONNECTED]
    pad, stem, dw, pw, skip, add, mean, fc = d.ops
    assert d.tensors[pad.output].shape == (1, 10, 10, 3)  # 8x8 padded by 1 each side, NHWC
    assert (stem.padding, stem.stride, stem.activation) == ("VALID", 2, "RELU")
    assert (dw.padding, dw.activation, dw.depth_multiplier) == ("SAME", "RELU6", 1)
    assert (pw.activation, skip.activation) == ("NONE", "NONE")
    assert stem.inputs[0] == pad.output and skip.inputs[0] == stem.output
    assert add.inputs == (pw.output, skip.output)
    assert d.tensors[mean.output].shape == (1, 1, 1, 8)
    assert fc.inputs[0] == mean.output
    assert d.inputs == (0,) and d.outputs == (fc.output,)
    assert [op.macs for op in d.ops] == [0, 1728, 576, 512, 512, 0, 0, 16]


def test_tiny_tensors(tiny_graph):
    d = deployed(tiny_graph)
    by_role = Counter(t.role for t in d.tensors)
    # activations: input, pad, stem, dw, pw, skip, add, mean, fc; aux: paddings, mean axes
    assert by_role == {ACTIVATION: 9, WEIGHT: 5, BIAS: 5, AUX: 2}
    stem = d.ops[1]
    weight, bias = (d.tensors[t] for t in stem.inputs[1:])
    # OHWI filter, per output channel; BN folding gives the bias-free conv an int32 bias
    assert (weight.shape, weight.nbytes, weight.quant_channels) == ((4, 3, 3, 3), 108, 4)
    assert (bias.shape, bias.nbytes, bias.quant_channels) == ((4,), 16, 4)
    dw_weight = d.tensors[d.ops[2].inputs[1]]
    assert dw_weight.shape == (1, 3, 3, 4)  # depthwise filter is 1 x k x k x C_out
    assert d.tensors[0].shape == (1, 8, 8, 3) and d.tensors[0].nbytes == 192


def test_equal_int32_operands_share_one_tensor():
    # The converter folds equal constants: every PAD with the same paddings reads one tensor.
    b = GraphBuilder()
    x = b.input((1, 3, 16, 16))
    y = b.conv(b.conv(x, 4, 3, 2, padding=1, name="a"), 4, 3, 2, padding=1, name="b")
    d = deployed(b.finish([y]))
    pads = [op for op in d.ops if op.kind == PAD]
    assert len(pads) == 2 and pads[0].inputs[1] == pads[1].inputs[1]
    assert sum(t.role == AUX for t in d.tensors) == 1


def test_deployed_macs_match_counting(tiny_graph, seed_genome):
    assert deployed(tiny_graph).macs == macs(tiny_graph)
    graph = lower(seed_genome, class_channels=1).graph
    assert deployed(graph).macs == macs(graph)


def test_seed_op_mix(seed_genome):
    graph = lower(seed_genome, class_channels=1).graph
    d = deployed(graph)
    ir = Counter(op.kind for op in graph.ops)
    kinds = Counter(d.kinds)
    # every conv is SAME: no PAD at all (the stem, the first dw of stages 2-4 and the 3
    # extra-layer dws are strided 3x3 windows on even maps, 7 PADs with symmetric padding)
    assert kinds[PAD] == 0
    assert Counter(deployed(symmetric_padding(graph)).kinds)[PAD] == 7
    assert kinds[CONV_2D] + kinds[DEPTHWISE_CONV_2D] == ir["conv"]
    assert kinds[DEPTHWISE_CONV_2D] == 44
    assert kinds[ADD] == ir["add"] and kinds[MAX_POOL_2D] == 1
    assert kinds[RESHAPE] == ir["reshape"] and kinds[CONCATENATION] == 2
    # every BN and ReLU fused, every NHWC permute vanished
    assert RELU not in kinds and TRANSPOSE not in kinds
    assert len(d.ops) == len(graph.ops) - ir["bn"] - ir["relu"] - ir["permute"] + kinds[PAD]
    boxes, logits = (d.tensors[t] for t in d.outputs)
    assert boxes.shape == (1, 6132, 4) and logits.shape == (1, 6132, 1)
    assert all(op.axis == 1 for op in d.ops if op.kind == CONCATENATION)


@pytest.mark.parametrize(("stride", "kernel", "padding", "in_hw", "out_hw", "expected"), [
    (1, 3, 1, (8, 8), (8, 8), False),  # stride-1 SAME
    (1, 5, 2, (8, 8), (8, 8), False),
    (2, 3, 1, (8, 8), (4, 4), True),  # TF SAME would pad bottom/right only
    (2, 3, 1, (7, 7), (4, 4), False),  # odd map: SAME pads 1 + 1, as PyTorch (15 -> 8 seen)
    (2, 3, 1, (15, 15), (8, 8), False),
    (2, 5, 2, (7, 7), (4, 4), False),
    (2, 3, 1, (16, 16), (8, 8), True),
    (2, 1, 0, (8, 8), (4, 4), False),  # VALID
    (1, 3, 0, (8, 8), (6, 6), False),
    (1, 5, 1, (8, 8), (6, 6), True),  # neither VALID nor SAME
    (2, 2, 0, (5, 5), (3, 3), True),  # ceil-mode pool: an extra window on the right
])
def test_needs_explicit_pad(stride, kernel, padding, in_hw, out_hw, expected):
    assert needs_explicit_pad(stride, kernel, padding, in_hw, out_hw) is expected


def test_unfusable_relu_and_fused_add_relu():
    b = GraphBuilder()
    x = b.input((1, 4, 6, 6))
    c = b.conv(x, 4, 3, bias=True)  # read by relu and by add: cannot fuse the relu
    r = b.act(c)
    y = b.act(b.add(r, c))
    d = deployed(b.finish([y]))
    assert d.kinds == [CONV_2D, RELU, ADD]
    assert d.ops[0].activation == "NONE" and d.ops[2].activation == "RELU"


def test_conv_without_bias_or_bn_keeps_no_bias():
    b = GraphBuilder()
    x = b.input((1, 3, 6, 6))
    d = deployed(b.finish([b.conv(x, 4, 1)]))
    assert len(d.ops[0].inputs) == 2 and len(d.constants) == 1


def test_depth_multiplier_and_grouped_conv():
    b = GraphBuilder()
    x = b.input((1, 4, 6, 6))
    y = b.conv(x, 8, 3, groups=4)  # depthwise, multiplier 2
    z = b.conv(y, 8, 1, groups=2)  # grouped: stays CONV_2D with a grouped filter
    d = deployed(b.finish([z]))
    dw, grouped = d.ops
    assert (dw.kind, dw.depth_multiplier) == (DEPTHWISE_CONV_2D, 2)
    assert d.tensors[dw.inputs[1]].shape == (1, 3, 3, 8)
    assert grouped.kind == CONV_2D and d.tensors[grouped.inputs[1]].shape == (8, 1, 1, 4)


def test_flatten_of_a_map_needs_transpose():
    b = GraphBuilder()
    x = b.input((1, 3, 2, 2))
    d = deployed(b.finish([b.flatten(x)]))
    # NHWC (1,2,2,3) back to NCHW so the flat order is PyTorch's
    assert d.kinds == [TRANSPOSE, RESHAPE]
    assert d.tensors[d.ops[0].output].shape == (1, 3, 2, 2)


def test_permute_other_than_nhwc_is_a_transpose():
    b = GraphBuilder()
    x = b.input((1, 3, 2, 4))
    d = deployed(b.finish([b.permute(x, (0, 1, 3, 2))]))
    assert d.kinds == [TRANSPOSE]
    assert d.tensors[d.ops[0].output].shape == (1, 3, 4, 2)  # PyTorch's order, as stored


def test_concat_axis_moves_to_nhwc_and_sum_chains_adds():
    b = GraphBuilder()
    x = b.input((1, 4, 4, 4))
    y = b.concat([x, x], axis=1)
    z = b.add(y, y, y)
    d = deployed(b.finish([z]))
    assert d.kinds == [CONCATENATION, ADD, ADD]
    assert d.ops[0].axis == 3
    assert d.ops[2].inputs[0] == d.ops[1].output


def test_standalone_bn_is_rejected():
    b = GraphBuilder()
    x = b.input((1, 4, 4, 4))
    with pytest.raises(NotImplementedError, match="BatchNorm"):
        deployed(b.finish([b.bn(x)]))


def test_upsample_is_one_resize_with_an_int32_size():
    b = GraphBuilder()
    x = b.input((1, 4, 3, 5))
    d = deployed(b.finish([b.upsample(x, 2)]))
    assert d.kinds == [RESIZE_NEAREST_NEIGHBOR]
    (op,) = d.ops
    data, size = (d.tensors[t] for t in op.inputs)
    assert data.id == d.inputs[0]
    assert (size.role, size.shape, size.nbytes) == (AUX, (2,), 8)
    assert d.tensors[op.output].shape == (1, 6, 10, 4)  # NHWC
    assert op.macs == 0


def test_pad_is_one_pad_with_int32_paddings():
    b = GraphBuilder()
    x = b.input((1, 4, 7, 7))
    graph = b.finish([b.conv(b.pad(x, (1, 0, 1, 0)), 8, 1)])
    d = deployed(graph)
    # the conv after an explicit pad is a plain VALID 1x1: no second PAD
    assert d.kinds == [PAD, CONV_2D]
    pad, conv = d.ops
    paddings = d.tensors[pad.inputs[1]]
    assert (paddings.role, paddings.shape, paddings.nbytes) == (AUX, (8,), 32)
    assert d.tensors[pad.output].shape == (1, 8, 8, 4)
    assert conv.inputs[0] == pad.output and conv.padding == "VALID"
    assert pad.macs == 0 and d.macs == macs(graph) == 8 * 8 * 8 * 4


def test_pad_keeps_a_channel_major_layout():
    b = GraphBuilder()
    x = b.input((1, 2, 3, 4))
    y = b.pad(b.permute(x, (0, 1, 3, 2)), (0, 1, 0, 1))  # (1, 2, 5, 4), stored as PyTorch's
    d = deployed(b.finish([b.flatten(y)]))
    # no TRANSPOSE before the flatten: the padded map is already in PyTorch's order
    assert d.kinds == [TRANSPOSE, PAD, RESHAPE]
    assert d.tensors[d.ops[1].output].shape == (1, 2, 5, 4)


def test_upsample_of_a_channel_major_map_is_rejected():
    b = GraphBuilder()
    x = b.input((1, 2, 3, 4))
    y = b.upsample(b.permute(x, (0, 1, 3, 2)))
    with pytest.raises(NotImplementedError, match="channel-major"):
        deployed(b.finish([y]))


def test_flash_and_ram_cover_resize_and_pad():
    b = GraphBuilder()
    x = b.input((1, 8, 4, 4))
    y = b.add(b.pad(b.upsample(x), (1, 1, 1, 1)), b.input((1, 8, 10, 10)))
    d = deployed(b.finish([y]))
    assert d.kinds == [RESIZE_NEAREST_NEIGHBOR, PAD, ADD]
    assert flash_breakdown(d).aux_constants == 2 * 4 + 8 * 4
    plan = arena_plan(d)
    # peak at the ADD: padded map + second input + sum, 800 bytes each
    assert plan.head_bytes == 3 * 800
    assert RESIZE_NEAREST_NEIGHBOR in TAIL_MCU32.op_data
