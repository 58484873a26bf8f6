"""nas.export.rewrite: grouped convolutions back to depthwise, tensor names, the packed file.

Hand-built flatbuffers check each rewrite exactly and fast; the real export checks that undoing
and redoing the depthwise rewrite on a converted file gives back the same bytes.
"""

from __future__ import annotations

import numpy as np
import pytest

from estimators import tflite
from estimators.tflite import schema
from nas.export import rewrite
from nas.export.files import LAYOUT

CONV, DEPTHWISE = schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D


def _tensor(name: str, shape: tuple[int, ...], buffer: int = 0,
            scales: int = 0) -> schema.TensorT:
    t = schema.TensorT()
    t.name, t.shape, t.buffer, t.type = name.encode(), list(shape), buffer, schema.TensorType.INT8
    if scales:
        t.quantization = schema.QuantizationParametersT()
        t.quantization.scale = [0.1] * scales
        t.quantization.zeroPoint = [0] * scales
        t.quantization.quantizedDimension = 0
    return t


def _buffer(data: np.ndarray | None = None) -> schema.BufferT:
    b = schema.BufferT()
    b.data = None if data is None else np.asarray(data, dtype=np.uint8).reshape(-1)
    return b


def _conv(filter_tensor: int, x: int, y: int, stride: int = 2) -> schema.OperatorT:
    options = schema.Conv2DOptionsT()
    options.padding, options.strideH, options.strideW = schema.Padding.SAME, stride, stride
    options.fusedActivationFunction = schema.ActivationFunctionType.RELU6
    options.dilationHFactor = options.dilationWFactor = 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [x, filter_tensor, -1], [y]
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.Conv2DOptions, options
    return op


def _grouped_model(channels: int = 3, multiplier: int = 2) -> schema.ModelT:
    """input (1,4,4,C) -> grouped CONV_2D 2x2/2, one input channel per group, C*m outputs ->
    ordinary CONV_2D 1x1 -> output. Filter bytes count up so a transposition is visible."""
    out_c = channels * multiplier
    grouped = np.arange(out_c * 2 * 2, dtype=np.uint8).reshape(out_c, 2, 2, 1)
    model = schema.ModelT()
    model.version = 3
    model.buffers = [_buffer(), _buffer(grouped), _buffer(np.ones((4, 1, 1, out_c)))]
    sg = schema.SubGraphT()
    sg.tensors = [_tensor("in", (1, 4, 4, channels)),
                  _tensor("w_grouped", (out_c, 2, 2, 1), buffer=1, scales=out_c),
                  _tensor("mid", (1, 2, 2, out_c)),
                  _tensor("w_1x1", (4, 1, 1, out_c), buffer=2, scales=4),
                  _tensor("out", (1, 2, 2, 4))]
    sg.operators = [_conv(1, 0, 2), _conv(3, 2, 4, stride=1)]
    sg.inputs, sg.outputs = [0], [4]
    model.subgraphs = [sg]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = CONV
    code.version = 3
    model.operatorCodes = [code]
    return model


def test_a_grouped_conv_becomes_the_depthwise_conv_it_is():
    model = tflite.load(rewrite.pack(_grouped_model(channels=3, multiplier=2)))
    before = np.asarray(model.buffers[1].data).reshape(6, 2, 2)
    assert rewrite.depthwise_from_grouped(model) == 1
    sg = model.subgraphs[0]
    grouped, plain = sg.operators
    assert tflite.op_kind(model, grouped) == "DEPTHWISE_CONV_2D"
    assert tflite.op_kind(model, plain) == "CONV_2D"  # a real 1x1 conv is left alone
    options = grouped.builtinOptions
    assert options.depthMultiplier == 2 and (options.strideH, options.strideW) == (2, 2)
    assert options.padding == schema.Padding.SAME
    assert options.fusedActivationFunction == schema.ActivationFunctionType.RELU6
    w = sg.tensors[1]
    assert list(w.shape) == [1, 2, 2, 6] and w.quantization.quantizedDimension == 3
    after = np.asarray(model.buffers[1].data).reshape(2, 2, 6)
    assert np.array_equal(after, before.transpose(1, 2, 0))  # tap (i, j) of output channel c
    code = model.operatorCodes[grouped.opcodeIndex]
    assert tflite.opcode_builtin(code) == DEPTHWISE and code.version == rewrite.DEPTHWISE_VERSION
    # Packed and read back, the file holds the same.
    again = tflite.load(rewrite.pack(model))
    assert rewrite.op_histogram(rewrite.pack(again)) == {"DEPTHWISE_CONV_2D": 1, "CONV_2D": 1}


def test_nothing_to_rewrite_leaves_the_model_as_it_was():
    model = _grouped_model()
    model.subgraphs[0].operators = model.subgraphs[0].operators[1:]
    before = rewrite.pack(model)
    assert rewrite.depthwise_from_grouped(model) == 0
    assert rewrite.pack(model) == before and len(model.operatorCodes) == 1


def test_a_shared_filter_is_not_transposed_in_place():
    model = _grouped_model()
    sg = model.subgraphs[0]
    shared = _tensor("w_shared", (6, 2, 2, 1), buffer=1, scales=6)
    sg.tensors.append(shared)
    with pytest.raises(RuntimeError, match="shares its filter buffer"):
        rewrite.depthwise_from_grouped(model)


def test_io_keeps_its_names_and_every_other_tensor_is_numbered():
    model = _grouped_model()
    rewrite.rename_io(model, {0: "images"}, {0: "logits"})
    names = [t.name.decode() for t in model.subgraphs[0].tensors]
    assert names == ["images", "t1", "t2", "t3", "logits"]


def test_packed_buffers_are_16_byte_aligned_and_identified():
    data = rewrite.pack(_grouped_model())
    assert data[4:8] == tflite.IDENTIFIER
    root = schema.Model.GetRootAs(data, 0)
    starts = []
    for i in range(root.BuffersLength()):
        buffer = root.Buffers(i)
        if buffer.DataLength():
            starts.append(buffer._tab.Vector(buffer._tab.Offset(4)))
    assert len(starts) == 2
    assert all(start % rewrite.BUFFER_ALIGNMENT == 0 for start in starts)


def test_offset_buffers_are_refused():
    model = _grouped_model()
    model.buffers[1].offset, model.buffers[1].size = 4096, 24
    with pytest.raises(RuntimeError, match="external"):
        rewrite.pack(model)


def _as_grouped(model: schema.ModelT, op: schema.OperatorT, conv_code: int) -> None:
    """Undo the depthwise rewrite of one op: what onnx2tf sometimes emits."""
    sg = model.subgraphs[0]
    w = sg.tensors[op.inputs[1]]
    _, kh, kw, out_c = (int(d) for d in w.shape)
    buf = model.buffers[w.buffer]
    data = np.asarray(buf.data, dtype=np.uint8).reshape(kh, kw, out_c)
    buf.data = np.ascontiguousarray(data.transpose(2, 0, 1)).reshape(-1)
    w.shape = np.asarray([out_c, kh, kw, 1], dtype=np.int32)
    w.quantization.quantizedDimension = 0
    dw = op.builtinOptions
    conv = schema.Conv2DOptionsT()
    conv.padding, conv.strideW, conv.strideH = dw.padding, dw.strideW, dw.strideH
    conv.fusedActivationFunction = dw.fusedActivationFunction
    conv.dilationWFactor, conv.dilationHFactor = dw.dilationWFactor, dw.dilationHFactor
    op.opcodeIndex = conv_code
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.Conv2DOptions, conv


@pytest.mark.slow
def test_redoing_the_rewrite_on_a_real_export_gives_back_its_bytes(tiny_int8_export):
    out, _ = tiny_int8_export
    data = (out / LAYOUT.model).read_bytes()
    model = tflite.load(data)
    conv_code = next(i for i, c in enumerate(model.operatorCodes)
                     if tflite.opcode_builtin(c) == CONV)
    depthwise = [op for op in model.subgraphs[0].operators
                 if tflite.builtin_code(model, op) == DEPTHWISE]
    assert depthwise
    for op in depthwise:
        _as_grouped(model, op, conv_code)
    assert rewrite.op_histogram(rewrite.pack(model)).get("DEPTHWISE_CONV_2D", 0) == 0
    assert rewrite.depthwise_from_grouped(model) == len(depthwise)
    assert rewrite.pack(model) == rewrite.pack(tflite.load(data)) == data
