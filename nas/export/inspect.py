"""The kernels of a real ``.tflite`` file, as the latency predictor sees them.

:func:`kernels_from_tflite` reads any single-subgraph TFLite flatbuffer (ours, or a model a
user calibrates with that came from elsewhere) and gives one
:class:`estimators.latency.features.Kernel` per operator, in the file's order, counted with the
deployed graph's conventions (:mod:`estimators.deploy`, :func:`estimators.counting.op_macs`):

* activation inputs are :func:`estimators.tflite.activation_inputs` (the operands with no
  constant data); ``in_shape`` is the first one's, ``out_shape`` output 0's;
* ``kernel`` is the window height (filter tensor for convolutions, ``Pool2DOptions`` for
  pooling), ``stride`` the vertical stride; 1 for ops without a window;
* MACs: CONV_2D out elements x kh x kw x filter input channels, DEPTHWISE_CONV_2D out
  elements x kh x kw, FULLY_CONNECTED out elements x input features; every other op 0
  (bias, ADD, pooling and activations are not multiply-accumulates).

On our own exports the list equals ``kernels(deployed(graph))``.

The file is read with :mod:`estimators.tflite`, the one reader of ``.tflite`` files.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from estimators.deploy import (
    ACTIVATION,
    AUX,
    BIAS,
    CONV_2D,
    DEPTHWISE_CONV_2D,
    FULLY_CONNECTED,
    WEIGHT,
    DeployedGraph,
    DeployedOp,
    DTensor,
)
from estimators.latency.features import Kernel
from estimators.tflite import (
    activation_inputs,
    indices,
    is_constant,
    load,
    op_kind,
    schema,
    shape,
    subgraph_io,
)

_WINDOWED = (schema.BuiltinOptions.Conv2DOptions, schema.BuiltinOptions.DepthwiseConv2DOptions,
             schema.BuiltinOptions.Pool2DOptions)


def _window(op: schema.OperatorT, weights: schema.TensorT | None) -> tuple[int, int]:
    """(kernel height, vertical stride); (1, 1) for ops without a window."""
    if op.builtinOptionsType not in _WINDOWED:
        return 1, 1
    options = op.builtinOptions
    if op.builtinOptionsType == schema.BuiltinOptions.Pool2DOptions:
        return options.filterHeight, options.strideH
    height = shape(weights)[1] if weights is not None else 1
    return height, options.strideH


def _conv_macs(out: int, w: tuple[int, ...]) -> int:
    return out * w[1] * w[2] * w[3]  # filter (O, kh, kw, I / groups)


def _depthwise_macs(out: int, w: tuple[int, ...]) -> int:
    return out * w[1] * w[2]  # filter (1, kh, kw, C x multiplier): one tap per output


def _fc_macs(out: int, w: tuple[int, ...]) -> int:
    return out * w[-1]  # filter (units, features)


_MACS: dict[str, Callable[[int, tuple[int, ...]], int]] = {
    CONV_2D: _conv_macs, DEPTHWISE_CONV_2D: _depthwise_macs, FULLY_CONNECTED: _fc_macs,
}


def _kernel(model: schema.ModelT, op: schema.OperatorT) -> Kernel:
    tensors = model.subgraphs[0].tensors
    inputs, outputs = indices(op.inputs), indices(op.outputs)
    acts = activation_inputs(model, op)
    # Weighted ops take (input, filter[, bias]): the filter is operand 1.
    weights = tensors[inputs[1]] if len(inputs) > 1 and inputs[1] >= 0 else None
    out_shape = shape(tensors[outputs[0]]) if outputs else ()
    kind = op_kind(model, op)
    kernel, stride = _window(op, weights)
    count = _MACS.get(kind)
    macs = count(math.prod(out_shape), shape(weights)) if count and weights is not None else 0
    return Kernel(kind=kind, in_shape=shape(tensors[acts[0]]) if acts else (),
                  out_shape=out_shape, kernel=kernel, stride=stride, macs=macs,
                  inputs=len(acts))


def kernels_from_tflite(tflite: bytes) -> list[Kernel]:
    """One kernel per operator of the file's (single) subgraph, in execution order.

    Raises ValueError (one line) for bytes that are not a TFLite flatbuffer or a model with
    more or fewer than one subgraph.
    """
    model = load(tflite)
    try:
        return [_kernel(model, op) for op in model.subgraphs[0].operators or []]
    except IndexError as exc:  # an operand, opcode or dimension the file does not have
        raise ValueError(f"malformed TFLite model ({exc})") from None


# -- the whole graph, for the memory estimators ----------------------------------------------
_INT8_TYPES = (schema.TensorType.INT8, schema.TensorType.UINT8)
_FLOAT_TYPES = (schema.TensorType.FLOAT32, schema.TensorType.FLOAT16)
# Ops that may convert between a float interface and the int8 graph inside.
_BOUNDARY = frozenset({"QUANTIZE", "DEQUANTIZE"})
_TYPE_NAMES = {code: name.lower() for name, code in vars(schema.TensorType).items()
               if not name.startswith("_")}
_ACTIVATION_NAMES = {code: name for name, code in vars(schema.ActivationFunctionType).items()
                     if not name.startswith("_")}


class NotInt8Error(ValueError):
    """A model that is not full-integer int8 (float or hybrid), named with the reason."""


def _role(model: schema.ModelT, tensor: schema.TensorT) -> str:
    if not is_constant(model, tensor):
        return ACTIVATION
    if tensor.type in _INT8_TYPES:
        return WEIGHT
    quantised = tensor.quantization is not None and tensor.quantization.scale is not None
    return BIAS if tensor.type == schema.TensorType.INT32 and quantised else AUX


def _quant_channels(tensor: schema.TensorT, role: str) -> int:
    if role == AUX:
        return 0
    scales = tensor.quantization.scale if tensor.quantization is not None else None
    return 1 if scales is None else max(len(scales), 1)


def _check_int8(model: schema.ModelT) -> None:
    """Refuse float and hybrid models: every operator's data must be int8 (float only at a
    QUANTIZE / DEQUANTIZE boundary), every weight int8."""
    tensors = model.subgraphs[0].tensors
    int8_constants = any(t.type in _INT8_TYPES and is_constant(model, t) for t in tensors)
    for op in model.subgraphs[0].operators or []:
        kind = op_kind(model, op)
        for i in indices(op.inputs) + indices(op.outputs):
            t = tensors[i] if i >= 0 else None
            if t is None or t.type not in _FLOAT_TYPES:
                continue
            constant = is_constant(model, t)
            if kind in _BOUNDARY and not constant:
                continue
            what = "hybrid (int8 weights, float activations)" if int8_constants else "float"
            name = t.name.decode(errors="replace") if isinstance(t.name, bytes) else str(t.name)
            raise NotInt8Error(
                f"is a {what} model: {kind} has the {_TYPE_NAMES.get(t.type, t.type)} "
                f"{'constant' if constant else 'tensor'} '{name}'; tinynas estimates full-int8 "
                "models (TFLiteConverter with a representative dataset and "
                "target_spec.supported_ops = [TFLITE_BUILTINS_INT8])")


def _op_attrs(model: schema.ModelT, op: schema.OperatorT, kernel: Kernel) -> dict[str, object]:
    options = op.builtinOptions
    attrs: dict[str, object] = {"kernel": kernel.kernel, "stride": kernel.stride,
                                "macs": kernel.macs}
    if options is not None and hasattr(options, "padding"):
        attrs["padding"] = "SAME" if options.padding == schema.Padding.SAME else "VALID"
    if options is not None and hasattr(options, "fusedActivationFunction"):
        attrs["activation"] = _ACTIVATION_NAMES.get(options.fusedActivationFunction, "NONE")
    if options is not None and hasattr(options, "depthMultiplier"):
        attrs["depth_multiplier"] = max(int(options.depthMultiplier), 1)
    if options is not None and hasattr(options, "axis"):
        attrs["axis"] = int(options.axis)
    return attrs


def deployed_from_tflite(tflite: bytes) -> DeployedGraph:
    """The file's graph in the deployed-graph form the memory estimators read (tensors with
    shapes and roles, operators with their operands), for any single-subgraph int8 file.

    Raises :class:`NotInt8Error` for float and hybrid models and ValueError (one line) for
    bytes that are not a readable TFLite model.
    """
    model = load(tflite)
    _check_int8(model)
    sub = model.subgraphs[0]
    try:
        tensors = []
        for i, t in enumerate(sub.tensors or []):
            role = _role(model, t)
            tensors.append(DTensor(i, f"t{i}", shape(t), role, _quant_channels(t, role)))
        ops = []
        for k, op in enumerate(sub.operators or []):
            kernel = _kernel(model, op)
            inputs = tuple(i for i in indices(op.inputs) if i >= 0)
            outputs = indices(op.outputs)
            ops.append(DeployedOp(kernel.kind, f"op{k}", inputs, outputs[0],
                                  **_op_attrs(model, op, kernel)))  # type: ignore[arg-type]
        graph_inputs, graph_outputs = subgraph_io(model)
        return DeployedGraph(tuple(tensors), tuple(ops), tuple(graph_inputs),
                             tuple(graph_outputs))
    except IndexError as exc:
        raise ValueError(f"malformed TFLite model ({exc})") from None
