"""Post-conversion clean-up of the int8 ``.tflite`` flatbuffer.

onnx2tf 1.29 sometimes lowers a depthwise convolution to a *grouped* ``CONV_2D`` (filter
``(C, kh, kw, 1)`` on a C-channel input): its Add "rescue" transposes some NHWC tensors back
to NCHW, and the depthwise test then compares the group count with the wrong axis. TFLite
Micro's optimised kernels (CMSIS-NN, ESP-NN) only accelerate ``DEPTHWISE_CONV_2D``, and our
estimators (like the ST and Espressif tools) assume it, so this module turns every such op
back into the depthwise op it is. The two are the same function: the filter is transposed
to ``(1, kh, kw, C * m)`` and its per-channel quantisation axis moves from 0 to 3.

It also names the model's input and outputs (``images``, ``boxes``, ``logits``), so that
firmware and :class:`nas.detector.Detector` find them by name, renames every other tensor
``t<index>`` (the converter's names join TF op locations, ~36 bytes each, mean nothing to a
firmware engineer and make the file size depend on TF's naming: short names make it
predictable to the byte), and packs the file with every constant buffer 16-byte aligned, as
the TFLite converter does.

The file is edited in the object API of :mod:`estimators.tflite`'s schema, the one every
``.tflite`` reader here uses, and its facts (builtin codes) come from there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import flatbuffers
import numpy as np

from estimators.tflite import IDENTIFIER, builtin_code, load, op_kind, opcode_builtin, schema

BUFFER_ALIGNMENT = 16
# DEPTHWISE_CONV_2D version 3 is the per-channel int8 kernel (what the converter emits).
DEPTHWISE_VERSION = 3


class _AlignedBuffer(schema.BufferT):
    """A BufferT that packs its bytes on a 16-byte boundary (the schema's force_align)."""

    def Pack(self, builder: flatbuffers.Builder) -> int:
        data = None
        if self.data is not None and len(self.data):
            raw = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(raw), BUFFER_ALIGNMENT)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        return schema.BufferEnd(builder)


def _opcode_index(model: schema.ModelT, builtin: int, version: int) -> int:
    for i, code in enumerate(model.operatorCodes):
        if opcode_builtin(code) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _is_grouped_depthwise(sg: schema.SubGraphT, op: schema.OperatorT) -> bool:
    x, w = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]]
    channels, out_channels = int(x.shape[3]), int(w.shape[0])
    return int(w.shape[3]) == 1 and channels > 1 and out_channels % channels == 0


def _to_depthwise(model: schema.ModelT, sg: schema.SubGraphT, op: schema.OperatorT,
                  depthwise_code: int) -> None:
    x, w = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]]
    out_channels, kh, kw, _ = (int(d) for d in w.shape)
    buf = model.buffers[w.buffer]
    data = np.asarray(buf.data, dtype=np.uint8).reshape(out_channels, kh, kw)
    buf.data = np.ascontiguousarray(data.transpose(1, 2, 0)).reshape(-1)
    w.shape = np.asarray([1, kh, kw, out_channels], dtype=np.int32)
    if w.quantization is not None:
        w.quantization.quantizedDimension = 3
    conv = op.builtinOptions
    dw = schema.DepthwiseConv2DOptionsT()
    dw.padding, dw.strideW, dw.strideH = conv.padding, conv.strideW, conv.strideH
    dw.fusedActivationFunction = conv.fusedActivationFunction
    dw.dilationWFactor, dw.dilationHFactor = conv.dilationWFactor, conv.dilationHFactor
    dw.depthMultiplier = out_channels // int(x.shape[3])
    op.opcodeIndex = depthwise_code
    op.builtinOptionsType = schema.BuiltinOptions.DepthwiseConv2DOptions
    op.builtinOptions = dw


def depthwise_from_grouped(model: schema.ModelT) -> int:
    """Rewrite grouped CONV_2D ops with one input channel per group; returns how many."""
    sg = model.subgraphs[0]
    buffer_users = Counter(t.buffer for t in sg.tensors)
    candidates = [op for op in sg.operators
                  if builtin_code(model, op) == schema.BuiltinOperator.CONV_2D
                  and _is_grouped_depthwise(sg, op)]
    if not candidates:
        return 0
    code = _opcode_index(model, schema.BuiltinOperator.DEPTHWISE_CONV_2D, DEPTHWISE_VERSION)
    for op in candidates:
        if buffer_users[sg.tensors[op.inputs[1]].buffer] != 1:
            raise RuntimeError("a grouped convolution shares its filter buffer; refusing to "
                               "transpose it in place")
        _to_depthwise(model, sg, op, code)
    return len(candidates)


def rename_io(model: schema.ModelT, inputs: Mapping[int, str], outputs: Mapping[int, str]
              ) -> None:
    """Name subgraph input / output tensors by their position in the subgraph's lists, and
    every other tensor ``t<index>``."""
    sg = model.subgraphs[0]
    for i, tensor in enumerate(sg.tensors):
        tensor.name = f"t{i}".encode()
    for position, name in inputs.items():
        sg.tensors[sg.inputs[position]].name = name.encode()
    for position, name in outputs.items():
        sg.tensors[sg.outputs[position]].name = name.encode()


def pack(model: schema.ModelT) -> bytes:
    model.buffers = [_aligned(b) for b in model.buffers]
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=IDENTIFIER)
    return bytes(builder.Output())


def _aligned(buffer: schema.BufferT) -> _AlignedBuffer:
    if buffer.offset or buffer.size:
        raise RuntimeError("models with external (offset) buffers are not supported")
    out = _AlignedBuffer()
    out.data = buffer.data
    return out


def op_histogram(data: bytes) -> dict[str, int]:
    """Builtin op name -> count, for reports and tests."""
    model = load(data)
    return dict(Counter(op_kind(model, op) for op in model.subgraphs[0].operators))
