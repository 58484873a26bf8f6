"""The lowered layer graph (IR) every estimator reads.

A network is written once against :class:`GraphBuilder`; the result is a flat, ordered
:class:`Graph` of ops over tensors with static shapes (batch 1, NCHW as in PyTorch). The
torch module and every estimate are derived from that one graph, so they cannot disagree
about what the network is.

Op kinds and their fields:

==============  ============================================================
``conv``        kernel, stride, padding or same, groups, bias; weight (out, in/groups, k, k)
``bn``          batch norm over channels (folds into the preceding conv at export)
``relu``        ``relu6``
``maxpool``     kernel, stride, padding, ceil_mode
``gap``         global average pool to (N, C, 1, 1)
``add``         element-wise sum of two or more tensors of equal shape
``concat``      along ``dims[0]``
``linear``      fully connected, bias; weight (out, in)
``flatten``     (N, ...) -> (N, prod(...))
``permute``     axis order ``dims``
``reshape``     to shape ``dims``
``upsample``    nearest-neighbour, H and W times the integer ``stride`` (the scale)
``pad``         zeros around H and W, ``dims`` = (top, bottom, left, right)
==============  ============================================================

Convolution padding is either PyTorch's symmetric ``padding`` (the same number of zeros on
every side) or, with ``same=True``, TensorFlow's SAME: the output is ``ceil(in / stride)`` and
the zeros the window needs are split with the odd one after (bottom / right), see
:func:`same_pads`. The two agree on stride-1 convolutions and on strided windows over odd maps;
on an even map a stride-2 3x3 SAME pads 0 before and 1 after where PyTorch's ``padding=1``
pads 1 and 1. The int8 runtimes implement SAME inside the convolution kernel, so a SAME
network needs no separate PAD operator (and no second full-size buffer) for it. The builder
makes every conv without an explicit ``padding`` SAME.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

OP_KINDS = frozenset(
    {"conv", "bn", "relu", "relu6", "maxpool", "gap", "add", "concat", "linear", "flatten",
     "permute", "reshape", "upsample", "pad"}
)
ACTIVATIONS = frozenset({"relu", "relu6"})


@dataclass(frozen=True, slots=True)
class Tensor:
    id: int
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True, slots=True)
class Op:
    name: str
    kind: str
    inputs: tuple[int, ...]
    output: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1
    bias: bool = False
    ceil_mode: bool = False
    dims: tuple[int, ...] = ()
    same: bool = False  # conv: TF SAME padding (``padding`` is then 0 and unused)

    def __post_init__(self) -> None:
        if self.kind not in OP_KINDS:
            raise ValueError(f"unknown op kind {self.kind!r}; valid: {sorted(OP_KINDS)}")


@dataclass(frozen=True)
class Graph:
    """Ops in execution order; ``tensors[i].id == i``."""

    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def shape(self, tensor_id: int) -> tuple[int, ...]:
        return self.tensors[tensor_id].shape

    def in_shape(self, op: Op, index: int = 0) -> tuple[int, ...]:
        return self.tensors[op.inputs[index]].shape

    def out_shape(self, op: Op) -> tuple[int, ...]:
        return self.tensors[op.output].shape

    def in_scope(self, op: Op, scope: str) -> bool:
        return op.name == scope or op.name.startswith(scope + ".")


def conv_out(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    """Output length of a conv / pool window, with PyTorch's ceil-mode rule."""
    span = size + 2 * padding - kernel
    if span < 0:
        raise ValueError(f"kernel {kernel} does not fit input {size} with padding {padding}")
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    # PyTorch drops a last window that would start entirely in the right padding.
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zeros of TF SAME padding along one axis of length ``size``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_pads(graph: Graph, op: Op) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zeros a conv or pool window reads around its input."""
    _, _, h, w = graph.in_shape(op)
    if op.same:
        return (*same_pads(h, op.kernel, op.stride), *same_pads(w, op.kernel, op.stride))
    return (op.padding,) * 4


def symmetric_padding(graph: Graph) -> Graph:
    """The graph with every SAME conv given PyTorch's symmetric ``kernel // 2`` padding: how
    networks were built before SAME padding (checkpoints of format 1 were trained so). The
    shapes do not change for odd kernels; an even-kernel SAME conv has no symmetric twin."""
    ops = []
    for op in graph.ops:
        if op.kind == "conv" and op.same:
            if op.kernel % 2 == 0:
                raise ValueError(f"{op.name}: an even kernel has no symmetric padding with the "
                                 "same output shape")
            op = replace(op, same=False, padding=op.kernel // 2)
        ops.append(op)
    return replace(graph, ops=tuple(ops))


@dataclass
class GraphBuilder:
    """Records ops with shape inference. Names are dotted scopes, unique per graph."""

    _tensors: list[Tensor] = field(default_factory=list)
    _ops: list[Op] = field(default_factory=list)
    _inputs: list[int] = field(default_factory=list)
    _scope: list[str] = field(default_factory=list)
    _names: set[str] = field(default_factory=set)

    # -- plumbing -------------------------------------------------------------------
    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def shape(self, x: int) -> tuple[int, ...]:
        return self._tensors[x].shape

    def channels(self, x: int) -> int:
        return self._tensors[x].shape[1]

    def _new_tensor(self, shape: tuple[int, ...]) -> int:
        if any(d <= 0 for d in shape):
            raise ValueError(f"tensor shape {shape} has an empty dimension")
        self._tensors.append(Tensor(len(self._tensors), tuple(shape)))
        return len(self._tensors) - 1

    def _unique(self, name: str) -> str:
        full = ".".join([*self._scope, name])
        candidate, n = full, 1
        while candidate in self._names:
            candidate, n = f"{full}_{n}", n + 1
        self._names.add(candidate)
        return candidate

    def _emit(self, kind: str, name: str, inputs: tuple[int, ...], shape: tuple[int, ...],
              **attrs: object) -> int:
        out = self._new_tensor(shape)
        self._ops.append(Op(self._unique(name), kind, inputs, out, **attrs))  # type: ignore[arg-type]
        return out

    def input(self, shape: tuple[int, ...]) -> int:
        x = self._new_tensor(shape)
        self._inputs.append(x)
        return x

    def finish(self, outputs: tuple[int, ...] | list[int]) -> Graph:
        return Graph(tuple(self._tensors), tuple(self._ops), tuple(self._inputs), tuple(outputs))

    # -- ops ------------------------------------------------------------------------
    def conv(self, x: int, out_channels: int, kernel: int, stride: int = 1,
             padding: int | None = None, groups: int = 1, bias: bool = False,
             name: str = "conv") -> int:
        """``padding=None``: TF SAME (see the module docstring); an int: symmetric zeros."""
        n, c, h, w = self.shape(x)
        if c % groups or out_channels % groups:
            raise ValueError(
                f"{name}: channels {c}->{out_channels} not divisible by groups {groups}")
        if padding is None:
            shape = (n, out_channels, -(-h // stride), -(-w // stride))
            return self._emit("conv", name, (x,), shape, kernel=kernel, stride=stride,
                              same=True, groups=groups, bias=bias)
        shape = (n, out_channels, conv_out(h, kernel, stride, padding),
                 conv_out(w, kernel, stride, padding))
        return self._emit("conv", name, (x,), shape, kernel=kernel, stride=stride,
                          padding=padding, groups=groups, bias=bias)

    def dwconv(self, x: int, kernel: int, stride: int = 1, bias: bool = False,
               name: str = "dw") -> int:
        c = self.channels(x)
        return self.conv(x, c, kernel, stride, groups=c, bias=bias, name=name)

    def bn(self, x: int, name: str = "bn") -> int:
        return self._emit("bn", name, (x,), self.shape(x))

    def act(self, x: int, kind: str = "relu", name: str | None = None) -> int:
        if kind not in ACTIVATIONS:
            raise ValueError(f"unknown activation {kind!r}; valid: {sorted(ACTIVATIONS)}")
        return self._emit(kind, name or kind, (x,), self.shape(x))

    def maxpool(self, x: int, kernel: int, stride: int, padding: int = 0,
                ceil_mode: bool = False, name: str = "pool") -> int:
        n, c, h, w = self.shape(x)
        shape = (n, c, conv_out(h, kernel, stride, padding, ceil_mode),
                 conv_out(w, kernel, stride, padding, ceil_mode))
        return self._emit("maxpool", name, (x,), shape, kernel=kernel, stride=stride,
                          padding=padding, ceil_mode=ceil_mode)

    def gap(self, x: int, name: str = "gap") -> int:
        n, c, _, _ = self.shape(x)
        return self._emit("gap", name, (x,), (n, c, 1, 1))

    def add(self, *xs: int, name: str = "add") -> int:
        shapes = {self.shape(x) for x in xs}
        if len(xs) < 2 or len(shapes) != 1:
            raise ValueError(f"{name}: add needs >= 2 tensors of one shape, got {sorted(shapes)}")
        return self._emit("add", name, tuple(xs), self.shape(xs[0]))

    def concat(self, xs: list[int], axis: int, name: str = "concat") -> int:
        shapes = [list(self.shape(x)) for x in xs]
        total = sum(s[axis] for s in shapes)
        for s in shapes:
            s[axis] = 0
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"{name}: shapes differ off axis {axis}")
        out = list(self.shape(xs[0]))
        out[axis] = total
        return self._emit("concat", name, tuple(xs), tuple(out), dims=(axis,))

    def linear(self, x: int, out_features: int, bias: bool = True, name: str = "fc") -> int:
        n, _ = self.shape(x)
        return self._emit("linear", name, (x,), (n, out_features), bias=bias)

    def flatten(self, x: int, name: str = "flatten") -> int:
        shape = self.shape(x)
        return self._emit("flatten", name, (x,), (shape[0], math.prod(shape[1:])))

    def permute(self, x: int, dims: tuple[int, ...], name: str = "permute") -> int:
        shape = self.shape(x)
        return self._emit("permute", name, (x,), tuple(shape[d] for d in dims), dims=dims)

    def reshape(self, x: int, shape: tuple[int, ...], name: str = "reshape") -> int:
        if math.prod(shape) != math.prod(self.shape(x)):
            raise ValueError(f"{name}: cannot reshape {self.shape(x)} to {shape}")
        return self._emit("reshape", name, (x,), tuple(shape), dims=tuple(shape))

    def upsample(self, x: int, scale: int = 2, name: str = "up") -> int:
        """Nearest-neighbour upsampling of H and W by an integer ``scale``."""
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"{name}: scale must be a positive integer, got {scale!r}")
        n, c, h, w = self.shape(x)
        return self._emit("upsample", name, (x,), (n, c, h * scale, w * scale), stride=scale)

    def pad(self, x: int, pads: tuple[int, int, int, int], name: str = "pad") -> int:
        """Zero padding of H and W; ``pads`` = (top, bottom, left, right), any of them 0."""
        dims = tuple(pads)
        if len(dims) != 4 or any(not isinstance(p, int) or p < 0 for p in dims):
            raise ValueError(f"{name}: pads must be 4 non-negative integers "
                             f"(top, bottom, left, right), got {pads!r}")
        top, bottom, left, right = dims
        n, c, h, w = self.shape(x)
        shape = (n, c, h + top + bottom, w + left + right)
        return self._emit("pad", name, (x,), shape, dims=dims)
