"""estimators.tflite: the one reader of .tflite files, on hand-built flatbuffers (no conversion)."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest

from estimators import tflite
from estimators.tflite import schema


def _tensor(buffer: int = 0, external: int = 0) -> schema.TensorT:
    t = schema.TensorT()
    t.shape, t.buffer, t.type, t.externalBuffer = [1, 4], buffer, schema.TensorType.INT8, external
    return t


def _buffer(nbytes: int = 0, offset: int = 0, size: int = 0) -> schema.BufferT:
    b = schema.BufferT()
    b.data = np.ones(nbytes, dtype=np.uint8) if nbytes else None
    b.offset, b.size = offset, size
    return b


def _code(builtin: int, deprecated: int | None = None, custom: bytes | None = None
          ) -> schema.OperatorCodeT:
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127) if deprecated is None else deprecated
    code.customCode = custom
    return code


def _model() -> schema.ModelT:
    """Tensors: 0 input, 1 weights (inline data), 2 empty buffer, 3 offset buffer, 4 offset
    placeholder (1), 5 external buffer, 6 output; one op reading 0, 1, -1, 2, 3, 4, 5."""
    model = schema.ModelT()
    model.version = 3
    model.buffers = [_buffer(), _buffer(4), _buffer(), _buffer(offset=4096, size=4),
                     _buffer(offset=1, size=0)]
    sg = schema.SubGraphT()
    sg.tensors = [_tensor(), _tensor(1), _tensor(2), _tensor(3), _tensor(4),
                  _tensor(external=1), _tensor()]
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, -1, 2, 3, 4, 5], [6]
    sg.operators, sg.inputs, sg.outputs = [op], [0], [6]
    model.subgraphs = [sg]
    model.operatorCodes = [_code(schema.BuiltinOperator.ADD)]
    return model


def _pack(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=tflite.IDENTIFIER)
    return bytes(builder.Output())


def test_constant_tensors_include_offset_and_external_buffers():
    model = tflite.load(_pack(_model()))
    constant = [tflite.is_constant(model, t) for t in model.subgraphs[0].tensors]
    # buffer 0 and an empty buffer hold nothing; offset 1 is the "no data" placeholder.
    assert constant == [False, True, False, True, False, True, False]


def test_activation_inputs_skip_constants_and_absent_operands():
    model = tflite.load(_pack(_model()))
    op = model.subgraphs[0].operators[0]
    assert tflite.activation_inputs(model, op) == [0, 2, 4]
    assert tflite.subgraph_io(model) == ([0], [6])


def test_builtin_codes_old_new_and_custom():
    model = _model()
    op = model.subgraphs[0].operators[0]
    extended = max(v for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_"))
    model.operatorCodes = [
        _code(0, deprecated=schema.BuiltinOperator.CONV_2D),  # an old file: deprecated only
        _code(extended),  # past 127: the deprecated field holds the placeholder 127
        _code(schema.BuiltinOperator.CUSTOM, custom=b"MyOp"),
        _code(extended + 1),
    ]
    kinds = []
    for index in range(4):
        op.opcodeIndex = index
        kinds.append(tflite.op_kind(model, op))
    assert tflite.builtin_code(model, op) == extended + 1
    assert kinds == ["CONV_2D", tflite.OP_NAMES[extended], "MyOp", f"BUILTIN_{extended + 1}"]


@pytest.mark.parametrize("data", [b"", b"TFL3", b"not a model at all",
                                  b"\x10\x00\x00\x00TFL3" + b"\xff" * 40])
def test_bytes_that_are_not_a_model_are_refused_in_one_line(data):
    with pytest.raises(ValueError, match="TFLite") as info:
        tflite.load(data)
    assert "\n" not in str(info.value)


def test_only_single_subgraph_models_are_read():
    model = _model()
    model.subgraphs = model.subgraphs * 2
    with pytest.raises(ValueError, match="2 subgraphs"):
        tflite.load(_pack(model))


def test_shape_and_indices_of_absent_vectors():
    t = schema.TensorT()
    assert tflite.shape(t) == () and tflite.indices(None) == []
    assert tflite.indices(np.asarray([3, -1], dtype=np.int32)) == [3, -1]
    assert tflite.TYPE_BYTES[schema.TensorType.INT32] == 4
