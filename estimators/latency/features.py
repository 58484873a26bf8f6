"""What a latency predictor sees of a network: one :class:`Kernel` per int8 operator.

A kernel is what a runtime actually executes: the deployed op (fused conv + BN + activation,
explicit PAD, ...) with its activation shapes. Kernels come from our own deployed graph
(:func:`kernels`, at search speed) or from a real ``.tflite`` file
(``nas.export.inspect.kernels_from_tflite``); on our exports both give the same list.

Each kernel contributes to a few named features (:data:`FEATURES`), linear cost terms a
per-feature coefficient turns into time, so a model's latency is a sum over its kernels:

* convolutions: MACs, tiled MACs (see :func:`terms`), filter taps (output elements x kernel
  area: the per-tap loop setup that dominates when the input has few channels), output and
  input elements, one per op; 1x1 and spatial kernels apart, since runtimes lower them to
  different loops (GEMM vs window walk).
* depthwise: MACs, tiled MACs, output and input elements (a stride-2 window reads 4x what it
  writes), one per op.
* fully connected: MACs and one per op.
* element-wise add, pooling / mean, and data movement (pad, concat, reshape, transpose,
  resize, standalone activations): elements touched and one per op.
* ``invoke``: 1 per model, the runtime's fixed cost per inference.

The features are grouped (:data:`GROUPS`) as boards speed kernels up unevenly: an optimised
runtime gains most on convolutions, less on depthwise, little on data movement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from estimators.deploy import (
    ADD,
    AVERAGE_POOL_2D,
    CONV_2D,
    DEPTHWISE_CONV_2D,
    FULLY_CONNECTED,
    MAX_POOL_2D,
    MEAN,
    DeployedGraph,
    DeployedOp,
)


@dataclass(frozen=True, slots=True)
class Kernel:
    """One executed operator: its TFLite kind, the shape of its first activation input and of
    its output (NHWC for maps), window size and stride, MACs and activation-input count."""

    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: int = 1
    stride: int = 1
    macs: int = 0
    inputs: int = 1

    @property
    def out_elems(self) -> int:
        return math.prod(self.out_shape)

    @property
    def in_elems(self) -> int:
        return math.prod(self.in_shape)


FEATURES: tuple[str, ...] = (
    "conv1x1.macs", "conv1x1.tiled", "conv1x1.out", "conv1x1.in", "conv1x1.ops",
    "convkxk.macs", "convkxk.tiled", "convkxk.taps", "convkxk.out", "convkxk.in",
    "convkxk.ops",
    "dw.macs", "dw.tiled", "dw.out", "dw.in", "dw.ops",
    "fc.macs", "fc.ops",
    "add.elems", "add.ops",
    "pool.elems", "pool.ops",
    "move.elems", "move.ops",
    "invoke",
)
INDEX = {name: i for i, name in enumerate(FEATURES)}
CONV, DEPTHWISE, OTHER = "conv", "depthwise", "other"
GROUPS: dict[str, str] = {
    name: CONV if name.startswith(("conv", "fc.")) else DEPTHWISE if name.startswith("dw.")
    else OTHER for name in FEATURES
}


def kernels(dep: DeployedGraph) -> list[Kernel]:
    """The deployed graph's operators as kernels, in execution order."""
    return [Kernel(kind=op.kind, in_shape=dep.tensors[first].shape,
                   out_shape=dep.tensors[op.output].shape, kernel=op.kernel, stride=op.stride,
                   macs=op.macs, inputs=count)
            for op, first, count in activation_inputs(dep)]


def activation_inputs(dep: DeployedGraph) -> list[tuple[DeployedOp, int, int]]:
    """(op, its first activation input, how many it has), for every op
    (:meth:`DeployedGraph.activation_inputs`)."""
    found = []
    for op in dep.ops:
        acts = dep.activation_inputs(op)
        found.append((op, acts[0], len(acts)))
    return found


def _up(n: int, tile: int) -> int:
    return -(-n // tile) * tile


def terms(kind: str, kernel: int, macs: int, inputs: int, in_shape: tuple[int, ...],
          out_shape: tuple[int, ...]) -> dict[str, float]:
    """The features one kernel adds to its model.

    ``tiled``: the MACs an optimised kernel really issues when it works on channel tiles
    (output channels in 16s, input channels in 8s for a GEMM; channels in 16s for depthwise):
    a 3-channel stem or a 24-channel layer costs what its padded width costs.
    """
    in_elems, out_elems = math.prod(in_shape), math.prod(out_shape)
    if kind == CONV_2D:
        prefix = "conv1x1" if kernel == 1 else "convkxk"
        pixels, c_in, c_out = out_elems // out_shape[-1], in_shape[-1], out_shape[-1]
        found = {f"{prefix}.macs": macs, f"{prefix}.out": out_elems, f"{prefix}.in": in_elems,
                 f"{prefix}.ops": 1,
                 f"{prefix}.tiled": pixels * _up(c_out, 16) * _up(c_in, 8) * kernel * kernel}
        if kernel > 1:
            found["convkxk.taps"] = out_elems * kernel * kernel
        return found
    if kind == DEPTHWISE_CONV_2D:
        pixels = out_elems // out_shape[-1]
        return {"dw.macs": macs, "dw.out": out_elems, "dw.in": in_elems, "dw.ops": 1,
                "dw.tiled": pixels * _up(out_shape[-1], 16) * kernel * kernel}
    if kind == FULLY_CONNECTED:
        return {"fc.macs": macs, "fc.ops": 1}
    if kind == ADD:
        return {"add.elems": out_elems * (inputs + 1), "add.ops": 1}
    if kind in (MAX_POOL_2D, AVERAGE_POOL_2D):
        return {"pool.elems": out_elems * kernel * kernel, "pool.ops": 1}
    if kind == MEAN:
        return {"pool.elems": in_elems, "pool.ops": 1}
    # A concatenation reads exactly what it writes; its first input alone says nothing.
    read = out_elems if inputs > 1 else in_elems
    return {"move.elems": read + out_elems, "move.ops": 1}


def kernel_terms(k: Kernel) -> dict[str, float]:
    return terms(k.kind, k.kernel, k.macs, k.inputs, k.in_shape, k.out_shape)


def _vector(all_terms: list[dict[str, float]]) -> np.ndarray:
    x = [0.0] * len(FEATURES)
    x[INDEX["invoke"]] = 1.0
    for found in all_terms:
        for name, value in found.items():
            if name in INDEX:
                x[INDEX[name]] += value
    return np.asarray(x)


def feature_vector(found: list[Kernel]) -> np.ndarray:
    """The model's features: each kernel's terms summed, plus one ``invoke``."""
    return _vector([kernel_terms(k) for k in found])


def graph_features(dep: DeployedGraph) -> np.ndarray:
    """:func:`feature_vector` of :func:`kernels`, without building the kernel records."""
    shape = [t.shape for t in dep.tensors]
    return _vector([terms(op.kind, op.kernel, op.macs, count, shape[first], shape[op.output])
                    for op, first, count in activation_inputs(dep)])
