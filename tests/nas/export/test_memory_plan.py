"""Exported files: no PAD for strided convs, an offline plan TFLite Micro honours, and the
padding the PyTorch model trains with is the one the int8 file computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from estimators import tflite
from estimators.deploy import deployed
from estimators.ram import arena_plan
from estimators.tflite import schema
from nas.export import memory_plan, rewrite, runtimes
from nas.export.convert import cosine, float_outputs
from nas.export.files import LAYOUT
from search_space.model import GraphNet, with_symmetric_padding

pytestmark = pytest.mark.slow  # the shared tiny export takes ~10 s once per session


def _file(tiny_int8_export) -> bytes:
    out, _ = tiny_int8_export
    return (out / LAYOUT.model).read_bytes()


def test_no_pad_op_and_strided_convs_are_same(tiny_int8_export):
    model = tflite.load(_file(tiny_int8_export))
    assert "PAD" not in rewrite.op_histogram(_file(tiny_int8_export))
    sg = model.subgraphs[0]
    strided = [op for op in sg.operators
               if op.builtinOptionsType in (schema.BuiltinOptions.Conv2DOptions,
                                            schema.BuiltinOptions.DepthwiseConv2DOptions)
               and op.builtinOptions.strideH == 2 and sg.tensors[op.inputs[1]].shape[1] > 1]
    assert len(strided) >= 4  # the stem and the first block of stages 2-4, 3x3 windows
    assert all(op.builtinOptions.padding == schema.Padding.SAME for op in strided)


def test_offline_plan_is_in_the_metadata_and_tflm_allocates_it(tiny_int8_export, make_scenes):
    data = _file(tiny_int8_export)
    model = tflite.load(data)
    offsets = memory_plan.read(model)
    sg = model.subgraphs[0]
    assert offsets is not None and len(offsets) == len(sg.tensors)
    buffers = memory_plan.file_buffers(model)
    planned = set(buffers.tensors)
    assert all((offsets[t] >= 0) == (t in planned) for t in range(len(sg.tensors)))
    head = max(int(offsets[t]) + s for t, s in zip(buffers.tensors, buffers.sizes, strict=True))
    # TFLM places the head exactly as planned; without the plan it runs its own greedy plan
    assert runtimes.tflm_arena(data).head_bytes == head
    memory_plan.strip(model)
    unplanned = rewrite.pack(model)
    assert memory_plan.read(tflite.load(unplanned)) is None
    assert runtimes.tflm_arena(unplanned).head_bytes == buffers.greedy_head_bytes() >= head
    x = runtimes.quantised_inputs(data, make_scenes(1, 96, seed=4))[0]
    for a, b in zip(runtimes.tflm_outputs(data, x), runtimes.tflm_outputs(unplanned, x),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    # the RAM estimator plans the same head from the IR
    _, net = tiny_int8_export
    assert arena_plan(deployed(net.arch.graph)).head_bytes == head


def test_int8_file_computes_same_padding_not_symmetric(tiny_int8_export, make_scenes):
    """Padding parity: the int8 file follows the SAME-padded float model it came from; the
    same weights with PyTorch's symmetric padding are measurably further away."""
    out, net = tiny_int8_export
    data = (out / LAYOUT.model).read_bytes()
    images = make_scenes(4, 96, seed=6)
    names = runtimes.output_names(data)
    q = dict(zip(names, runtimes.litert_outputs(data, images), strict=True))
    legacy = GraphNet(with_symmetric_padding(net.arch))
    legacy.load_state_dict(net.state_dict())
    ref, off = float_outputs(net, images), float_outputs(legacy.eval(), images)
    assert not torch.equal(torch.from_numpy(ref["boxes"]), torch.from_numpy(off["boxes"]))
    same_err = np.abs(q["boxes"] - ref["boxes"]).mean()
    symmetric_err = np.abs(q["boxes"] - off["boxes"]).mean()
    assert cosine(q["boxes"], ref["boxes"]) > 0.99
    assert same_err < 0.5 * symmetric_err
