"""The layer graph as an int8 TFLite / TFLite-Micro runtime sees it.

The export path is PyTorch -> ONNX -> onnx2tf -> full-integer int8 TFLite (per-channel weights).
:func:`deployed` predicts the resulting flat op list without running any of it, so the flash and
RAM estimators can work at search speed. Tensors are int8 activations (1 byte per element, one
per-tensor scale / zero point), int8 weights and int32 biases (per-channel scale / zero point for
conv, depthwise and fully connected), and small int32 constants some ops take as inputs
(reshape shape, mean axes, pad widths, transpose permutation, resize size).

Mapping table (IR op -> deployed ops). Issue 3 compares it with real converted files; each row
is one ``_lower_*`` function registered in ``_LOWERING`` below, so a row can change alone.

==========================  ==============================================================
IR op(s)                    deployed op(s)
==========================  ==============================================================
conv [-> bn] [-> act]       [PAD] CONV_2D, BN folded, activation fused; int32 bias if the conv
                            has a bias or a BN (BN folding creates one), none otherwise
conv, groups == c_in > 1    [PAD] DEPTHWISE_CONV_2D, depth_multiplier = c_out / c_in
conv, 1 < groups < c_in     [PAD] CONV_2D with a grouped filter (unverified: TFLM support)
bn not after a conv         not supported (nothing in the search space produces it)
add [-> act]                n - 1 chained ADD ops for n inputs, activation fused into the last
relu / relu6 (not fused)    RELU / RELU6
maxpool                     [PAD] MAX_POOL_2D
gap                         MEAN over H, W (keepdims), axes as an int32 constant
concat                      CONCATENATION, axis moved to NHWC for 4-D maps
linear                      FULLY_CONNECTED
flatten, reshape            [TRANSPOSE] RESHAPE, new shape as an int32 constant; nothing for
                            a flatten read only by a linear (FULLY_CONNECTED flattens itself)
permute NCHW -> NHWC        nothing: TFLite maps are NHWC already (the tensor is aliased)
permute, any other          one TRANSPOSE (composed with the NHWC layout), perm as int32
upsample                    RESIZE_NEAREST_NEIGHBOR, output (H, W) as an int32 constant
pad                         PAD, paddings as an int32 constant (zeros: the zero point)
==========================  ==============================================================

``[PAD]``: a conv built with TF SAME padding (``Op.same``, what the builder makes by default)
deploys with ``padding=SAME`` and no PAD (VALID when SAME adds no zeros, e.g. a 1x1). A window
with PyTorch's symmetric ``padding`` (an explicit padding, a model of spec format 1, a pool)
gets an explicit PAD and a VALID op whenever TF's SAME, which pads the bottom / right first
when the total is odd, cannot reproduce it (see :func:`needs_explicit_pad`).
``[TRANSPOSE]``: flattening a 4-D map in PyTorch's channel-major order needs the NHWC map moved
back to NCHW first, unless the map is 1x1 or has one channel (then both orders agree).

``upsample`` and ``pad`` follow onnx2tf's ``Resize`` and ``Pad``: PyTorch exports nearest
``F.interpolate`` as ``Resize`` (asymmetric coordinates, floor rounding), which becomes
``tf.compat.v1.image.resize_nearest_neighbor`` without align_corners or half-pixel centres, the
size taken from the ONNX output shape; ``F.pad`` exports as a constant ``Pad``, which becomes
``tf.pad`` with int32 paddings permuted to NHWC. Neither does multiply-accumulates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from estimators.counting import op_macs
from estimators.ir import ACTIVATIONS, Graph, Op, conv_pads

# -- deployed op kinds (TFLite builtin operator names) -------------------------------------
CONV_2D = "CONV_2D"
DEPTHWISE_CONV_2D = "DEPTHWISE_CONV_2D"
FULLY_CONNECTED = "FULLY_CONNECTED"
PAD = "PAD"
MAX_POOL_2D = "MAX_POOL_2D"
AVERAGE_POOL_2D = "AVERAGE_POOL_2D"
MEAN = "MEAN"
ADD = "ADD"
CONCATENATION = "CONCATENATION"
RESHAPE = "RESHAPE"
TRANSPOSE = "TRANSPOSE"
RESIZE_NEAREST_NEIGHBOR = "RESIZE_NEAREST_NEIGHBOR"
RELU = "RELU"
RELU6 = "RELU6"
WEIGHTED_KINDS = frozenset({CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED})

# -- tensor roles and element sizes --------------------------------------------------------
ACTIVATION = "activation"
WEIGHT = "weight"
BIAS = "bias"
AUX = "aux"  # int32 shape / axis / padding / permutation operands
ITEMSIZE = {ACTIVATION: 1, WEIGHT: 1, BIAS: 4, AUX: 4}

# The converter's default since TF 2.15 quantises dense weights per output channel too
# (``_experimental_disable_per_channel_quantization_for_dense_layers`` defaults to False).
FC_PER_CHANNEL = True

_FUSED_ACT = {"relu": RELU, "relu6": RELU6}
_NCHW_TO_NHWC_AXIS = (0, 3, 1, 2)


@dataclass(frozen=True, slots=True)
class DTensor:
    """A tensor of the deployed graph; 4-D maps are NHWC.

    ``quant_channels`` is the number of (scale, zero point) pairs the file stores for it:
    1 for activations, one per output channel for per-channel weights and biases, 0 for
    plain int32 operands.
    """

    id: int
    name: str
    shape: tuple[int, ...]
    role: str
    quant_channels: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * ITEMSIZE[self.role]

    @property
    def is_constant(self) -> bool:
        return self.role != ACTIVATION


@dataclass(frozen=True, slots=True)
class DeployedOp:
    """One operator of the deployed graph.

    ``inputs`` follow TFLite operand order: data inputs first, then filter and bias (conv,
    depthwise, fully connected) or the int32 operand (shape, axes, paddings, permutation).
    ``name`` is the IR op it comes from (the conv for a fused conv / BN / activation).
    """

    kind: str
    name: str
    inputs: tuple[int, ...]
    output: int
    kernel: int = 1
    stride: int = 1
    padding: str = ""
    activation: str = "NONE"
    depth_multiplier: int = 1
    axis: int = 0
    macs: int = 0


@dataclass(frozen=True)
class DeployedGraph:
    tensors: tuple[DTensor, ...]
    ops: tuple[DeployedOp, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def nbytes(self, tensor_id: int) -> int:
        return self.tensors[tensor_id].nbytes

    @cached_property
    def _constant(self) -> tuple[bool, ...]:
        # Looked up once per graph, not once per operand: the search asks per genome.
        return tuple([t.role != ACTIVATION for t in self.tensors])

    def activation_inputs(self, op: DeployedOp) -> tuple[int, ...]:
        """The op's operands that are activations: those with no constant data, as in the
        file (:func:`estimators.tflite.activation_inputs`)."""
        constant = self._constant
        return tuple([t for t in op.inputs if not constant[t]])

    @property
    def activations(self) -> list[DTensor]:
        return [t for t in self.tensors if not t.is_constant]

    @property
    def constants(self) -> list[DTensor]:
        return [t for t in self.tensors if t.is_constant]

    @property
    def kinds(self) -> list[str]:
        return [op.kind for op in self.ops]

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)


def needs_explicit_pad(stride: int, kernel: int, padding: int, in_hw: tuple[int, int],
                       out_hw: tuple[int, int]) -> bool:
    """True when onnx2tf emits PAD + VALID rather than folding the padding into the op.

    VALID reproduces padding 0 when the output size is the floor-mode one. TF's SAME pads
    ``total = (out - 1) * stride + kernel - in`` with the odd pixel at the bottom / right, so
    it reproduces PyTorch's symmetric ``padding`` only when ``out = ceil(in / stride)`` and
    ``total = 2 * padding``: stride-1 "same" convs always, a stride-2 3x3 on an odd-sized map
    (15 -> 8), but not on an even one (16 -> 8 pads one pixel, PyTorch two).
    """
    if padding == 0:
        return any(o != (i - kernel) // stride + 1 for i, o in zip(in_hw, out_hw, strict=True))
    return not all(o == -(-i // stride) and (o - 1) * stride + kernel - i == 2 * padding
                   for i, o in zip(in_hw, out_hw, strict=True))


def _window_padding(padding: int) -> str:
    return "VALID" if padding == 0 else "SAME"


@dataclass
class _Deployer:
    """Walks the IR once, emitting deployed tensors and ops."""

    graph: Graph
    tensors: list[DTensor] = field(default_factory=list)
    ops: list[DeployedOp] = field(default_factory=list)
    mapped: dict[int, int] = field(default_factory=dict)  # IR tensor -> deployed tensor
    plain: set[int] = field(default_factory=set)  # IR 4-D tensors already in NHWC order
    absorbed: set[int] = field(default_factory=set)  # IR op indices fused into another op
    consumers: dict[int, list[int]] = field(default_factory=dict)
    producer: dict[int, int] = field(default_factory=dict)
    constants: dict[tuple[int, ...], int] = field(default_factory=dict)  # aux value -> tensor
    pads: dict[tuple[int, tuple[int, ...]], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, op in enumerate(self.graph.ops):
            self.producer[op.output] = i
            for t in op.inputs:
                self.consumers.setdefault(t, []).append(i)

    # -- tensors ---------------------------------------------------------------------
    def new_tensor(self, name: str, shape: tuple[int, ...], role: str = ACTIVATION,
                   quant_channels: int = 1) -> int:
        tid = len(self.tensors)
        self.tensors.append(DTensor(tid, name, tuple(shape), role, quant_channels))
        return tid

    def is_nhwc_map(self, ir_tensor: int) -> bool:
        return len(self.graph.shape(ir_tensor)) == 4 and ir_tensor not in self.plain

    def deployed_shape(self, ir_tensor: int) -> tuple[int, ...]:
        shape = self.graph.shape(ir_tensor)
        if self.is_nhwc_map(ir_tensor):
            n, c, h, w = shape
            return (n, h, w, c)
        return shape

    def activation(self, ir_tensor: int, name: str) -> int:
        tid = self.new_tensor(name, self.deployed_shape(ir_tensor))
        self.mapped[ir_tensor] = tid
        return tid

    def aux(self, name: str, value: tuple[int, ...]) -> int:
        """An int32 operand. The converter folds equal constants into one tensor (all the
        PADs of a network with the same paddings share one), so equal values share here."""
        if value not in self.constants:
            self.constants[value] = self.new_tensor(name, (len(value),), AUX, quant_channels=0)
        return self.constants[value]

    def emit(self, kind: str, name: str, inputs: tuple[int, ...], output: int,
             **attrs: object) -> None:
        self.ops.append(DeployedOp(kind, name, inputs, output, **attrs))  # type: ignore[arg-type]

    # -- fusion ----------------------------------------------------------------------
    def sole_consumer(self, ir_tensor: int, kinds: frozenset[str] | set[str]) -> int | None:
        """Index of the op that alone reads ``ir_tensor``, if it has one of ``kinds``."""
        users = self.consumers.get(ir_tensor, [])
        if len(users) != 1 or ir_tensor in self.graph.outputs:
            return None
        return users[0] if self.graph.ops[users[0]].kind in kinds else None

    def absorb(self, ir_tensor: int, kinds: frozenset[str] | set[str]) -> tuple[int, Op | None]:
        """Fuse the sole consumer of ``ir_tensor`` if it is one of ``kinds``."""
        index = self.sole_consumer(ir_tensor, kinds)
        if index is None:
            return ir_tensor, None
        self.absorbed.add(index)
        op = self.graph.ops[index]
        return op.output, op

    def absorb_activation(self, ir_tensor: int) -> tuple[int, str]:
        out, act = self.absorb(ir_tensor, ACTIVATIONS)
        return out, _FUSED_ACT[act.kind] if act else "NONE"

    # -- shared pieces ---------------------------------------------------------------
    def pad(self, x: int, op: Op, out_hw: tuple[int, int]) -> int:
        """Explicit PAD: ``padding`` before, and after as much as the window needs."""
        n, h, w, c = self.tensors[x].shape
        after = [max(op.padding, (o - 1) * op.stride + op.kernel - i - op.padding)
                 for i, o in zip((h, w), out_hw, strict=True)]
        shape = (n, h + op.padding + after[0], w + op.padding + after[1], c)
        paddings = (0, 0, op.padding, after[0], op.padding, after[1], 0, 0)
        return self.emit_pad(op.name, x, paddings, lambda: self.new_tensor(f"{op.name}.pad",
                                                                            shape))

    def emit_pad(self, name: str, x: int, paddings: tuple[int, ...],
                 output: Callable[[], int]) -> int:
        """One PAD per (input, paddings): the converter merges identical ops on one tensor
        (ST's neck pads a map exactly as the next strided conv does: one PAD remains)."""
        key = (x, paddings)
        if key not in self.pads:
            y = output()
            self.emit(PAD, name, (x, self.aux(f"{name}.paddings", paddings)), y)
            self.pads[key] = y
        return self.pads[key]

    def windowed_input(self, op: Op) -> tuple[int, str]:
        """The (possibly padded) input of a conv / pool and the padding mode left for it."""
        x = self.mapped[op.inputs[0]]
        if op.same:  # TF SAME is the runtime's own: VALID when it adds no zeros
            return x, "SAME" if any(conv_pads(self.graph, op)) else "VALID"
        _, _, h, w = self.graph.in_shape(op)
        out_hw = self.graph.out_shape(op)[2:]
        if needs_explicit_pad(op.stride, op.kernel, op.padding, (h, w), out_hw):
            return self.pad(x, op, out_hw), "VALID"
        return x, _window_padding(op.padding)

    def to_channel_major(self, x_ir: int, name: str) -> int:
        """TRANSPOSE an NHWC map back to NCHW when its element order differs from PyTorch's."""
        x = self.mapped[x_ir]
        if not self.is_nhwc_map(x_ir):
            return x
        n, c, h, w = self.graph.shape(x_ir)
        if c == 1 or h * w == 1:
            return x
        y = self.new_tensor(f"{name}.nchw", (n, c, h, w))
        self.emit(TRANSPOSE, name, (x, self.aux(f"{name}.perm", (0, 3, 1, 2))), y)
        return y


# -- mapping table rows ----------------------------------------------------------------
def _lower_conv(d: _Deployer, op: Op) -> None:
    x, padding = d.windowed_input(op)
    out_ir, bn = d.absorb(op.output, {"bn"})
    out_ir, act = d.absorb_activation(out_ir)
    c_in = d.graph.in_shape(op)[1]
    c_out = d.graph.out_shape(op)[1]
    depthwise = op.groups == c_in and c_in > 1
    if depthwise:
        kind, filter_shape = DEPTHWISE_CONV_2D, (1, op.kernel, op.kernel, c_out)
    else:
        kind, filter_shape = CONV_2D, (c_out, op.kernel, op.kernel, c_in // op.groups)
    inputs = [x, d.new_tensor(f"{op.name}.weight", filter_shape, WEIGHT, c_out)]
    if op.bias or bn is not None:
        inputs.append(d.new_tensor(f"{op.name}.bias", (c_out,), BIAS, c_out))
    y = d.activation(out_ir, op.name)
    d.emit(kind, op.name, tuple(inputs), y, kernel=op.kernel, stride=op.stride,
           padding=padding, activation=act,
           depth_multiplier=c_out // c_in if depthwise else 1, macs=op_macs(d.graph, op))


def _lower_linear(d: _Deployer, op: Op) -> None:
    out_ir, act = d.absorb_activation(op.output)
    c_in = d.graph.in_shape(op)[1]
    c_out = d.graph.out_shape(op)[1]
    channels = c_out if FC_PER_CHANNEL else 1
    inputs = [d.mapped[op.inputs[0]],
              d.new_tensor(f"{op.name}.weight", (c_out, c_in), WEIGHT, channels)]
    if op.bias:
        inputs.append(d.new_tensor(f"{op.name}.bias", (c_out,), BIAS, channels))
    y = d.activation(out_ir, op.name)
    d.emit(FULLY_CONNECTED, op.name, tuple(inputs), y, activation=act,
           macs=op_macs(d.graph, op))


def _lower_bn(d: _Deployer, op: Op) -> None:
    raise NotImplementedError(
        f"{op.name}: a BatchNorm that does not follow a single-use conv cannot be folded; "
        "the deploy mapping has no row for it")


def _lower_activation(d: _Deployer, op: Op) -> None:
    y = d.activation(op.output, op.name)
    d.emit(_FUSED_ACT[op.kind], op.name, (d.mapped[op.inputs[0]],), y)


def _lower_add(d: _Deployer, op: Op) -> None:
    out_ir, act = d.absorb_activation(op.output)
    acc = d.mapped[op.inputs[0]]
    last = len(op.inputs) - 1
    for k, t in enumerate(op.inputs[1:], start=1):
        if k == last:
            y = d.activation(out_ir, op.name)
        else:
            y = d.new_tensor(f"{op.name}.partial{k}", d.deployed_shape(op.output))
        d.emit(ADD, op.name, (acc, d.mapped[t]), y, activation=act if k == last else "NONE")
        acc = y


def _lower_maxpool(d: _Deployer, op: Op) -> None:
    x, padding = d.windowed_input(op)
    y = d.activation(op.output, op.name)
    d.emit(MAX_POOL_2D, op.name, (x,), y, kernel=op.kernel, stride=op.stride, padding=padding)


def _lower_gap(d: _Deployer, op: Op) -> None:
    y = d.activation(op.output, op.name)
    d.emit(MEAN, op.name, (d.mapped[op.inputs[0]], d.aux(f"{op.name}.axes", (1, 2))), y)


def _lower_concat(d: _Deployer, op: Op) -> None:
    axis = op.dims[0]
    if d.is_nhwc_map(op.inputs[0]):
        axis = _NCHW_TO_NHWC_AXIS[axis]
    y = d.activation(op.output, op.name)
    d.emit(CONCATENATION, op.name, tuple(d.mapped[t] for t in op.inputs), y, axis=axis)


def _lower_reshape(d: _Deployer, op: Op) -> None:
    if op.kind == "flatten" and d.sole_consumer(op.output, {"linear"}) is not None \
            and d.graph.in_shape(op)[2:] == (1, 1):
        d.mapped[op.output] = d.mapped[op.inputs[0]]  # the converter folds it into the FC
        return
    x = d.to_channel_major(op.inputs[0], op.name)
    d.plain.add(op.output)
    y = d.activation(op.output, op.name)
    d.emit(RESHAPE, op.name, (x, d.aux(f"{op.name}.shape", d.graph.out_shape(op))), y)


def _lower_permute(d: _Deployer, op: Op) -> None:
    if op.dims == (0, 2, 3, 1) and d.is_nhwc_map(op.inputs[0]):
        d.mapped[op.output] = d.mapped[op.inputs[0]]
        d.plain.add(op.output)
        return
    # One TRANSPOSE straight from the stored layout: the two permutations compose.
    d.plain.add(op.output)
    y = d.activation(op.output, op.name)
    perm = _stored_permutation(d, op)
    d.emit(TRANSPOSE, op.name, (d.mapped[op.inputs[0]], d.aux(f"{op.name}.perm", perm)), y)


def _stored_permutation(d: _Deployer, op: Op) -> tuple[int, ...]:
    """``op.dims`` applied to the tensor as stored (NHWC for a map, as-is otherwise)."""
    if d.is_nhwc_map(op.inputs[0]):
        nhwc_of_nchw = (0, 2, 3, 1)  # stored axis k holds NCHW axis nhwc_of_nchw[k]
        return tuple(nhwc_of_nchw.index(a) for a in op.dims)
    return tuple(op.dims)


def _lower_upsample(d: _Deployer, op: Op) -> None:
    if not d.is_nhwc_map(op.inputs[0]):
        raise NotImplementedError(
            f"{op.name}: upsampling a map stored channel-major (after a permute or reshape) "
            "has no row in the deploy mapping")
    y = d.activation(op.output, op.name)
    d.emit(RESIZE_NEAREST_NEIGHBOR, op.name,
           (d.mapped[op.inputs[0]], d.aux(f"{op.name}.size", d.graph.out_shape(op)[2:])), y)


def _lower_pad(d: _Deployer, op: Op) -> None:
    # PAD works in any layout (only the paddings operand differs), so the output keeps the
    # input's element order.
    if not d.is_nhwc_map(op.inputs[0]):
        d.plain.add(op.output)
    top, bottom, left, right = op.dims
    paddings = ((0, 0, top, bottom, left, right, 0, 0) if d.is_nhwc_map(op.inputs[0])
                else (0, 0, 0, 0, top, bottom, left, right))
    y = d.emit_pad(op.name, d.mapped[op.inputs[0]], paddings,
                   lambda: d.activation(op.output, op.name))
    d.mapped[op.output] = y


_LOWERING: dict[str, Callable[[_Deployer, Op], None]] = {
    "conv": _lower_conv,
    "bn": _lower_bn,
    "relu": _lower_activation,
    "relu6": _lower_activation,
    "add": _lower_add,
    "maxpool": _lower_maxpool,
    "gap": _lower_gap,
    "concat": _lower_concat,
    "linear": _lower_linear,
    "flatten": _lower_reshape,
    "reshape": _lower_reshape,
    "permute": _lower_permute,
    "upsample": _lower_upsample,
    "pad": _lower_pad,
}


def deployed(graph: Graph) -> DeployedGraph:
    """The int8 TFLite graph onnx2tf would produce from ``graph`` (BN folded, NHWC)."""
    d = _Deployer(graph)
    for t in graph.inputs:
        d.activation(t, "input")
    for i, op in enumerate(graph.ops):
        if i not in d.absorbed:
            _LOWERING[op.kind](d, op)
    return DeployedGraph(tuple(d.tensors), tuple(d.ops), tuple(d.mapped[t] for t in graph.inputs),
                         tuple(d.mapped[t] for t in graph.outputs))
