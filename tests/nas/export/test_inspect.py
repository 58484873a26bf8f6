from __future__ import annotations

import flatbuffers
import numpy as np
import pytest

from estimators.deploy import deployed
from estimators.latency.features import Kernel, kernels
from estimators.tflite import schema
from nas.export.files import LAYOUT
from nas.export.inspect import kernels_from_tflite


@pytest.mark.slow
def test_our_export_gives_exactly_the_deployed_graphs_kernels(tiny_int8_export, tiny_spec):
    out, _ = tiny_int8_export
    real = kernels_from_tflite((out / LAYOUT.model).read_bytes())
    ours = kernels(deployed(tiny_spec.lower().graph))
    assert real == ours
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD"} <= {k.kind for k in real}
    assert "PAD" not in {k.kind for k in real}  # strided convs pad as TF SAME, inside the op


# -- hand-built flatbuffers: what a file from elsewhere may hold, without a conversion ----------
def _tensor(shape: tuple[int, ...], buffer: int = 0) -> schema.TensorT:
    t = schema.TensorT()
    t.shape, t.buffer, t.type = list(shape), buffer, schema.TensorType.INT8
    return t


def _operator(opcode: int, inputs: list[int], outputs: list[int],
              options: object = None, options_type: int = 0) -> schema.OperatorT:
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, inputs, outputs
    op.builtinOptions, op.builtinOptionsType = options, options_type
    return op


def _code(builtin: int, custom: bytes | None = None) -> schema.OperatorCodeT:
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode = builtin, min(builtin, 127)
    code.customCode = custom
    return code


def _buffer(nbytes: int) -> schema.BufferT:
    buffer = schema.BufferT()
    buffer.data = np.ones(nbytes, dtype=np.uint8) if nbytes else None
    return buffer


def _pack(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _foreign_model() -> schema.ModelT:
    """MAX_POOL 2x2/2 -> FULLY_CONNECTED on the 4-D map (no bias: operand -1) -> custom op."""
    pool = schema.Pool2DOptionsT()
    pool.filterHeight = pool.filterWidth = pool.strideH = pool.strideW = 2
    sg = schema.SubGraphT()
    sg.tensors = [_tensor((1, 8, 8, 4)), _tensor((1, 4, 4, 4)), _tensor((10, 64), buffer=1),
                  _tensor((1, 10)), _tensor((1, 10))]
    sg.inputs, sg.outputs = [0], [4]
    sg.operators = [
        _operator(0, [0], [1], pool, schema.BuiltinOptions.Pool2DOptions),
        _operator(1, [1, 2, -1], [3]),
        _operator(2, [3], [4]),
    ]
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = [_code(schema.BuiltinOperator.MAX_POOL_2D),
                           _code(schema.BuiltinOperator.FULLY_CONNECTED),
                           _code(schema.BuiltinOperator.CUSTOM, b"MyPostProcess")]
    model.subgraphs = [sg]
    model.buffers = [_buffer(0), _buffer(640)]
    return model


def test_a_foreign_file_is_read_with_our_conventions():
    assert kernels_from_tflite(_pack(_foreign_model())) == [
        Kernel("MAX_POOL_2D", (1, 8, 8, 4), (1, 4, 4, 4), kernel=2, stride=2),
        Kernel("FULLY_CONNECTED", (1, 4, 4, 4), (1, 10), macs=640),
        Kernel("MyPostProcess", (1, 10), (1, 10)),
    ]


@pytest.mark.parametrize("data", [b"", b"not a model", b"\x00" * 64,
                                  b"\x10\x00\x00\x00TFL3" + b"\xff" * 40])
def test_garbage_is_refused_with_one_line(data):
    with pytest.raises(ValueError, match="TFLite") as info:
        kernels_from_tflite(data)
    assert "\n" not in str(info.value)


def test_several_subgraphs_are_refused():
    model = _foreign_model()
    model.subgraphs = model.subgraphs * 2
    with pytest.raises(ValueError, match="2 subgraphs"):
        kernels_from_tflite(_pack(model))
