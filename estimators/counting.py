"""Parameter and MAC counts of a layer graph.

Two MAC conventions are reported, because both are in use and they differ by a lot:

* :func:`macs` is what an int8 runtime executes: multiply-accumulates of convolutions
  (depthwise included) and fully connected layers. BN is folded into the conv weights at export
  and element-wise ops (add, pool, activations) are not multiply-accumulates.
* :func:`macs_seed` is the seed project's table convention (the rule of the thop release it
  used): conv MACs without bias, plus 4 per BatchNorm output element, plus linear MACs.
"""

from __future__ import annotations

from estimators.ir import Graph, Op

# The seed's thop release charged BN as 4 operations per output element.
SEED_BN_OPS_PER_ELEMENT = 4


def _ops(graph: Graph, scope: str | None) -> tuple[Op, ...] | list[Op]:
    if scope is None:
        return graph.ops
    return [op for op in graph.ops if graph.in_scope(op, scope)]


def op_params(graph: Graph, op: Op) -> int:
    """Trainable parameters of one op (BN: gamma and beta; running stats are not trained)."""
    if op.kind == "conv":
        c_in = graph.in_shape(op)[1]
        c_out = graph.out_shape(op)[1]
        return c_out * (c_in // op.groups) * op.kernel * op.kernel + (c_out if op.bias else 0)
    if op.kind == "bn":
        return 2 * graph.out_shape(op)[1]
    if op.kind == "linear":
        c_in = graph.in_shape(op)[1]
        c_out = graph.out_shape(op)[1]
        return c_out * c_in + (c_out if op.bias else 0)
    return 0


def op_macs(graph: Graph, op: Op) -> int:
    """Deployed multiply-accumulates of one op: conv and linear only, bias not counted."""
    if op.kind == "conv":
        c_in = graph.in_shape(op)[1]
        return graph.tensors[op.output].numel * (c_in // op.groups) * op.kernel * op.kernel
    if op.kind == "linear":
        return graph.tensors[op.output].numel * graph.in_shape(op)[1]
    return 0


def params(graph: Graph, scope: str | None = None) -> int:
    """Trainable parameters of the ops in ``scope`` (all ops when None)."""
    return sum(op_params(graph, op) for op in _ops(graph, scope))


def macs(graph: Graph, scope: str | None = None) -> int:
    """MACs the deployed (BN-folded) network executes."""
    return sum(op_macs(graph, op) for op in _ops(graph, scope))


def macs_seed(graph: Graph, scope: str | None = None) -> int:
    """The seed table's convention: conv/linear MACs + 4 per BN output element."""
    total = 0
    for op in _ops(graph, scope):
        if op.kind == "bn":
            total += SEED_BN_OPS_PER_ELEMENT * graph.tensors[op.output].numel
        else:
            total += op_macs(graph, op)
    return total
