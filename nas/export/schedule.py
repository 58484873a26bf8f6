"""Give the exported file the execution order the RAM estimate planned.

TFLite Micro runs operators in the order the file lists them and plans the arena over that
order. The TFLite converter picks its own topological order (a depth-first walk keyed on TF
node names), which on branchy networks (detection heads, dense blocks) differs from the
order the estimators plan with, and the arena with it (-21% to +3% on sampled genomes). Any
topological order computes the same function, so we keep ours: every operator of the file
is matched to the deployed op it implements (same kind, same activation inputs, same output
shape) and the operator list is rewritten in the deployed graph's order.
"""

from __future__ import annotations

from collections.abc import Sequence

from estimators.deploy import DeployedGraph
from estimators.tflite import activation_inputs, op_kind, schema


class ScheduleError(RuntimeError):
    """The file's operators do not correspond one to one with the deployed graph's."""


def _same_inputs(kind: str, real: Sequence[int], wanted: Sequence[int]) -> bool:
    # ADD is commutative and the converter may swap its operands.
    if kind == "ADD":
        return sorted(real) == sorted(wanted)
    return list(real) == list(wanted)


def _candidates(model: schema.ModelT, kind: str, shape: tuple[int, ...],
                wanted: list[int], free: set[int]) -> list[int]:
    sg = model.subgraphs[0]
    return [i for i in sorted(free)
            if op_kind(model, sg.operators[i]) == kind
            and tuple(sg.tensors[sg.operators[i].outputs[0]].shape) == shape
            and _same_inputs(kind, activation_inputs(model, sg.operators[i]), wanted)]


def match(model: schema.ModelT, graph: DeployedGraph) -> list[int]:
    """For each deployed op in order, the index of the file's operator that implements it.

    Two ops can look alike (an SSDLite head's box and class depthwise convs read the same
    map and have the same shape); a wrong pick shows up later, when a consumer finds no
    match, so the search backtracks to the last such choice.
    """
    sg = model.subgraphs[0]
    if len(sg.operators) != len(graph.ops):
        raise ScheduleError(f"the file has {len(sg.operators)} operators, the deployed graph "
                            f"{len(graph.ops)}")
    real_of = dict(zip(graph.inputs, sg.inputs, strict=True))
    free = set(range(len(sg.operators)))
    order: list[int] = []
    pending: list[list[int]] = []  # untried candidates for each matched position
    deepest = (0, "")
    while len(order) < len(graph.ops):
        op = graph.ops[len(order)]
        if len(pending) == len(order):
            wanted = [real_of[t] for t in graph.activation_inputs(op)]
            shape = tuple(graph.tensors[op.output].shape)
            pending.append(_candidates(model, op.kind, shape, wanted, free))
        if pending[-1]:
            pick = pending[-1].pop(0)
            free.discard(pick)
            order.append(pick)
            real_of[op.output] = sg.operators[pick].outputs[0]
            continue
        deepest = max(deepest, (len(order), f"{op.kind} {op.name}"))
        pending.pop()
        if not order:
            raise ScheduleError(f"no operator of the file implements {deepest[1]}")
        free.add(order.pop())
    return order


def reorder(model: schema.ModelT, graph: DeployedGraph) -> bool:
    """Rewrite the operator list in the deployed graph's order; True if it changed."""
    order = match(model, graph)
    sg = model.subgraphs[0]
    if order == sorted(order):
        return False
    sg.operators = [sg.operators[i] for i in order]
    return True
