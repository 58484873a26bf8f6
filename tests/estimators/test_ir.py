from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from estimators.ir import GraphBuilder, Op, conv_out, conv_pads


@pytest.mark.parametrize("size", [5, 6, 7, 13, 14, 55])
@pytest.mark.parametrize(("kernel", "stride", "padding"), [(3, 2, 0), (3, 2, 1), (2, 2, 0),
                                                             (5, 1, 2), (1, 2, 0)])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_conv_out_matches_torch(size, kernel, stride, padding, ceil_mode):
    if padding > kernel // 2:
        pytest.skip("torch requires padding <= kernel / 2 for pooling")
    x = torch.zeros(1, 1, size, size)
    y = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)
    assert conv_out(size, kernel, stride, padding, ceil_mode) == y.shape[-1]


def test_builder_infers_shapes_and_scopes_names():
    b = GraphBuilder()
    x = b.input((1, 3, 32, 32))
    with b.scope("stem"):
        y = b.conv(x, 8, 3, 2)
        y = b.act(b.bn(y))
    z = b.conv(y, 8, 3, groups=8, name="dw")
    z = b.add(z, y)
    g = b.finish([z])
    assert g.shape(z) == (1, 8, 16, 16)
    assert [op.name for op in g.ops] == ["stem.conv", "stem.bn", "stem.relu", "dw", "add"]
    assert g.ops[0].same and conv_pads(g, g.ops[0]) == (0, 1, 0, 1)  # TF SAME on an even map
    assert g.in_scope(g.ops[1], "stem") and not g.in_scope(g.ops[3], "stem")
    assert all(t.id == i for i, t in enumerate(g.tensors))


def test_duplicate_names_get_suffixes():
    b = GraphBuilder()
    x = b.input((1, 4, 8, 8))
    b.act(b.act(x))
    assert [op.name for op in b.finish([]).ops] == ["relu", "relu_1"]


def test_builder_rejects_inconsistent_ops():
    b = GraphBuilder()
    x = b.input((1, 6, 8, 8))
    with pytest.raises(ValueError, match="not divisible by groups"):
        b.conv(x, 8, 3, groups=4)
    with pytest.raises(ValueError, match="one shape"):
        b.add(x, b.conv(x, 4, 1))
    with pytest.raises(ValueError, match="cannot reshape"):
        b.reshape(x, (1, 7))
    with pytest.raises(ValueError, match="does not fit"):
        b.conv(b.input((1, 3, 2, 2)), 4, 5, padding=0)
    with pytest.raises(ValueError, match="unknown op kind"):
        Op("x", "softmax", (0,), 1)


def test_head_reshape_concat_shapes():
    b = GraphBuilder()
    x = b.input((1, 12, 4, 4))
    y = b.reshape(b.permute(x, (0, 2, 3, 1)), (1, 48, 4))
    z = b.concat([y, y], axis=1)
    assert b.shape(z) == (1, 96, 4)


def test_upsample_and_pad_shapes_and_attributes():
    b = GraphBuilder()
    x = b.input((1, 4, 3, 5))
    up = b.upsample(x, 2, name="up")
    padded = b.pad(up, (1, 0, 2, 3), name="pad")
    g = b.finish([padded])
    assert g.shape(up) == (1, 4, 6, 10)
    assert g.shape(padded) == (1, 4, 7, 15)
    up_op, pad_op = g.ops
    assert (up_op.kind, up_op.stride) == ("upsample", 2)
    assert (pad_op.kind, pad_op.dims) == ("pad", (1, 0, 2, 3))
    assert b.shape(b.upsample(x, 3)) == (1, 4, 9, 15)


def test_upsample_and_pad_reject_bad_arguments():
    b = GraphBuilder()
    x = b.input((1, 4, 3, 3))
    for scale in (0, -2, 1.5):
        with pytest.raises(ValueError, match="scale must be a positive integer"):
            b.upsample(x, scale)  # type: ignore[arg-type]
    for pads in ((1, 1, 1), (0, -1, 0, 0), (0, 0, 0.5, 0)):
        with pytest.raises(ValueError, match="pads must be 4 non-negative integers"):
            b.pad(x, pads)  # type: ignore[arg-type]
