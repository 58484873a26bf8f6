"""The one reader of ``.tflite`` flatbuffers: what the file says, read one way everywhere.

Every module that looks inside a TFLite file goes through this one: reading kernels and the
whole graph back (``nas.export.inspect``), matching the file's operators to the deployed graph
(``nas.export.schedule``), the post-conversion rewrite (``nas.export.rewrite``, which also
writes with this schema's object API) and the offline memory plan (``nas.export.memory_plan``).
The facts it holds:

* **builtin code** of an operator (:func:`builtin_code`, :func:`op_kind`): builtins past 127
  live in ``builtinCode`` only, older files fill ``deprecatedBuiltinCode`` only;
* **constant tensors** (:func:`is_constant`): data stored in the file, whether inline (a
  non-empty buffer), after the flatbuffer (an offset buffer, files over 2 GB) or in an
  external buffer group; buffer 0 is the schema's empty sentinel;
* **activation inputs** of an operator (:func:`activation_inputs`): its operands with no
  constant data, an absent optional operand (index -1) skipped. The deployed graph's tensors
  carry the same fact as a role (:data:`estimators.deploy.ACTIVATION`), set from
  :func:`is_constant` when the graph is read from a file, so both count the same inputs;
* **subgraph inputs and outputs** (:func:`subgraph_io`), of the single subgraph :func:`load`
  accepts (no control flow).

The schema is LiteRT's (``ai_edge_litert``): it is TensorFlow's plus the newer fields (external
buffers), and importing it does not load TensorFlow (about 7 s), which a calibration from a
CSV or ``estimate MODEL.tflite`` does not need.
"""

from __future__ import annotations

from collections.abc import Iterable

from ai_edge_litert import schema_py_generated as schema

IDENTIFIER = b"TFL3"  # the flatbuffer file identifier of every TFLite model
OP_NAMES: dict[int, str] = {code: name for name, code in vars(schema.BuiltinOperator).items()
                            if not name.startswith("_")}
# Bytes per element of the tensor types an int8 model holds.
TYPE_BYTES: dict[int, int] = {
    schema.TensorType.INT8: 1, schema.TensorType.UINT8: 1, schema.TensorType.BOOL: 1,
    schema.TensorType.INT16: 2, schema.TensorType.FLOAT16: 2,
    schema.TensorType.INT32: 4, schema.TensorType.FLOAT32: 4,
    schema.TensorType.INT64: 8,
}
# A buffer ``offset`` of 1 is the schema's placeholder for "no data after the flatbuffer".
_NO_EXTERNAL_OFFSET = 1


def load(data: bytes) -> schema.ModelT:
    """The model's object API (``ModelT``), editable and packable.

    Raises ValueError (one line) for bytes that are not a TFLite flatbuffer or a model with
    more or fewer than one subgraph.
    """
    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise ValueError(f"not a TFLite model (no {IDENTIFIER.decode()!r} flatbuffer "
                         "identifier)")
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # a corrupt flatbuffer fails anywhere in the generated reader
        raise ValueError(f"corrupt TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
    count = len(model.subgraphs or [])
    if count != 1:
        raise ValueError(f"TFLite model has {count} subgraphs; only single-subgraph models "
                         "(no control flow) are supported")
    return model


def opcode_builtin(code: schema.OperatorCodeT) -> int:
    """An operator code's builtin code."""
    # Builtins past 127 live in builtinCode only (deprecatedBuiltinCode holds the placeholder
    # 127); older files fill deprecatedBuiltinCode only.
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def builtin_code(model: schema.ModelT, op: schema.OperatorT) -> int:
    """The operator's builtin code."""
    return opcode_builtin(model.operatorCodes[op.opcodeIndex])


def op_kind(model: schema.ModelT, op: schema.OperatorT) -> str:
    """The operator's name as the deployed graph spells it (``CONV_2D``); a custom op's own
    name ("CUSTOM" alone would hide which op it is)."""
    builtin = builtin_code(model, op)
    code = model.operatorCodes[op.opcodeIndex]
    if builtin == schema.BuiltinOperator.CUSTOM and code.customCode:
        return code.customCode.decode()
    return OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def is_constant(model: schema.ModelT, tensor: schema.TensorT) -> bool:
    """True if the file stores the tensor's data (weights, biases, int32 operands)."""
    if tensor.externalBuffer:
        return True
    if not 0 < tensor.buffer < len(model.buffers or []):
        return False  # buffer 0 is the schema's empty sentinel
    buffer = model.buffers[tensor.buffer]
    return (buffer.data is not None and len(buffer.data) > 0) \
        or buffer.offset > _NO_EXTERNAL_OFFSET


def indices(vector: Iterable[int] | None) -> list[int]:
    """A flatbuffer index vector (None when absent, else a numpy array) as a list."""
    return [] if vector is None else [int(i) for i in vector]


def activation_inputs(model: schema.ModelT, op: schema.OperatorT) -> list[int]:
    """The tensor indices of the operator's activation inputs, in operand order."""
    tensors = model.subgraphs[0].tensors
    return [i for i in indices(op.inputs) if i >= 0 and not is_constant(model, tensors[i])]


def shape(tensor: schema.TensorT) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.shape) if tensor.shape is not None else ()


def subgraph_io(model: schema.ModelT) -> tuple[list[int], list[int]]:
    """(input tensor indices, output tensor indices) of the model's subgraph."""
    sg = model.subgraphs[0]
    return indices(sg.inputs), indices(sg.outputs)
