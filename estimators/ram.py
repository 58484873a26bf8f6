"""TFLite-Micro tensor arena of a deployed graph.

TFLM keeps everything in one arena. The non-persistent "head" holds the activation tensors.
Every file we export carries an **offline memory plan** (``OfflineMemoryAllocation`` metadata,
written by :mod:`nas.export.memory_plan`): TFLM then puts each activation at the offset the
plan gives, and the head is the plan's. :func:`arena_plan` computes that same plan
(:func:`estimators.memplan.plan`, the best of several placements, exact for chains) from the
deployed graph, so the RAM figure the search uses is what TFLM allocates for our file. With
``offline=False`` it gives what TFLM's own ``GreedyMemoryPlanner`` does with a file without a
plan (:func:`greedy_offsets`, a re-implementation of its behaviour). Either way every buffer's
size is rounded up to the 16-byte arena alignment before planning, and the head is the largest
``offset + size``.

A tensor lives from the op that writes it (graph inputs: op 0) to the last op that reads it
(graph outputs: the last op); a tensor nobody reads lives for its producing op only.

The persistent "tail" holds the runtime's structs, estimated by :class:`TailCosts`. Kernel
scratch buffers (CMSIS-NN / ESP-NN im2col and friends, which also live in the head) are not
modelled: the reference kernels used by the ``tflite_micro`` Python package request none for
the ops of this search space.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from estimators.deploy import (
    ADD,
    CONCATENATION,
    CONV_2D,
    DEPTHWISE_CONV_2D,
    FC_PER_CHANNEL,
    FULLY_CONNECTED,
    MAX_POOL_2D,
    MEAN,
    PAD,
    RELU,
    RELU6,
    RESHAPE,
    RESIZE_NEAREST_NEIGHBOR,
    TRANSPOSE,
    DeployedGraph,
)
from estimators.memplan import floor_bytes, tflm_greedy
from estimators.memplan import plan as best_plan

ARENA_ALIGNMENT = 16  # TFLM's MicroArenaBufferAlignment()


@dataclass(frozen=True)
class TailCosts:
    """Bytes of the persistent arena section, by what TFLM allocates there.

    ``TAIL_HOST64`` is **measured**: fitted on ``print_allocations()`` of the ``tflite_micro``
    interpreter for 45 real exports (``scripts/bench_estimators.py``, 2026-11-21; every
    category matches to the byte except ``fixed``/``per_op``, within 232 bytes).
    ``TAIL_MCU32`` is derived from it for 32-bit pointers (Cortex-M, Xtensa): the
    pointer-sized structs halve, the int32 data keeps its size; no board was measured.
    """

    # Allocator, planner and subgraph bookkeeping.
    fixed: int
    # One TfLiteEvalTensor (data pointer, dims pointer, type) per tensor, constants included.
    per_tensor: int
    # NodeAndRegistration (TfLiteNode + registration pointer) and the per-node bookkeeping.
    per_op: int
    # Persistent TfLiteTensor + affine quantisation for each model input and output.
    per_io_tensor: int
    # Per-channel output multiplier and shift: two int32 arrays per per-channel kernel, each
    # allocated on its own 16-byte boundary.
    channel_entry: int
    # The kernel's OpData struct (allocated in Init / Prepare) by op kind.
    op_data: Mapping[str, int] = field(default_factory=dict)


_OP_DATA_HOST = {CONV_2D: 80, DEPTHWISE_CONV_2D: 80, FULLY_CONNECTED: 80, ADD: 64, PAD: 64,
                 MAX_POOL_2D: 48, MEAN: 48, CONCATENATION: 80, TRANSPOSE: 0, RESHAPE: 0,
                 RESIZE_NEAREST_NEIGHBOR: 0, RELU: 0, RELU6: 0}
# The tflite_micro package: a 64-bit host build (measured). ``fixed`` is the fit's 448 bytes
# plus its largest under-estimate (232 bytes, rounded up): the RAM estimate must not let a
# model that does not fit through. Without PAD ops (issue 15's rerun, 2026-12-02, same 45
# models) the tail is at most 72 bytes under on 7 of them (-0.01%), within the 1 KiB goal.
TAIL_HOST64 = TailCosts(fixed=704, per_tensor=24, per_op=88, per_io_tensor=96,
                        channel_entry=4, op_data=_OP_DATA_HOST)
# 32-bit pointers: Cortex-M (STM32H7) and Xtensa (ESP32, ESP32-S3). OpData keeps the host
# size (mostly int32 fields; an upper bound).
TAIL_MCU32 = TailCosts(fixed=704, per_tensor=12, per_op=56, per_io_tensor=56,
                       channel_entry=4, op_data=_OP_DATA_HOST)
_PER_CHANNEL_KINDS = frozenset(
    {CONV_2D, DEPTHWISE_CONV_2D} | ({FULLY_CONNECTED} if FC_PER_CHANNEL else set()))


@dataclass(frozen=True)
class ArenaPlan:
    """Where every activation tensor sits in the head, and the arena's size.

    ``floor_bytes`` is what any plan needs: the aligned bytes alive at the worst operator.
    ``method`` names the placement that won (:mod:`estimators.memplan`); ``tflm-greedy`` for
    ``offline=False``.
    """

    head_bytes: int
    tail_bytes: int
    offsets: Mapping[int, int]  # deployed tensor id -> byte offset in the head
    lifetimes: Mapping[int, tuple[int, int]]  # deployed tensor id -> (first op, last op)
    peak_op: int  # first op at which the live buffers reach head_bytes
    peak_op_name: str
    floor_bytes: int = 0
    method: str = ""

    @property
    def total_bytes(self) -> int:
        return self.head_bytes + self.tail_bytes


def align(size: int, alignment: int = ARENA_ALIGNMENT) -> int:
    return -(-size // alignment) * alignment


def lifetimes(graph: DeployedGraph) -> dict[int, tuple[int, int]]:
    """(first op, last op) of every activation tensor, in op indices."""
    last_op = max(len(graph.ops) - 1, 0)
    first = dict.fromkeys(graph.inputs, 0)
    last = dict.fromkeys(graph.inputs, 0)
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            if t in first:
                last[t] = i
        first[op.output] = i
        last[op.output] = i
    for t in graph.outputs:
        last[t] = last_op
    return {t: (first[t], last[t]) for t in first}


greedy_offsets = tflm_greedy  # TFLM's default plan (a file without an offline plan)


def peak_activation_bytes(graph: DeployedGraph) -> int:
    """Largest sum of live activation bytes at any op: a lower bound of the head."""
    spans = lifetimes(graph)
    return floor_bytes([graph.tensors[t].nbytes for t in spans], list(spans.values()))


def tail_bytes(graph: DeployedGraph, costs: TailCosts = TAIL_MCU32) -> int:
    total = costs.fixed + costs.per_tensor * len(graph.tensors)
    total += costs.per_io_tensor * (len(graph.inputs) + len(graph.outputs))
    for op in graph.ops:
        total += costs.per_op + costs.op_data.get(op.kind, 0)
        if op.kind in _PER_CHANNEL_KINDS:
            channels = graph.tensors[op.output].shape[-1]
            total += 2 * align(costs.channel_entry * channels)
    return total


def _peak_op(graph: DeployedGraph, spans: Mapping[int, tuple[int, int]],
             offsets: Mapping[int, int], sizes: Mapping[int, int], head: int) -> int:
    top = [0] * max(len(graph.ops), 1)
    for t, (first, last) in spans.items():
        end = offsets[t] + sizes[t]
        for step in range(first, last + 1):
            top[step] = max(top[step], end)
    return top.index(head) if head else 0


def arena_plan(graph: DeployedGraph, tail: TailCosts = TAIL_MCU32, offline: bool = True
               ) -> ArenaPlan:
    """Head and tail (runtime structs) of the TFLM arena. The head is our offline plan
    (``offline=True``, what an exported file carries) or TFLM's greedy default."""
    spans = lifetimes(graph)
    ids = sorted(t for t in spans if graph.tensors[t].nbytes > 0)  # TFLM adds in tensor order
    sizes = {t: align(graph.tensors[t].nbytes) for t in ids}
    size_list, span_list = [sizes[t] for t in ids], [spans[t] for t in ids]
    if offline:
        found = best_plan(size_list, span_list)
        planned, floor, method = list(found.offsets), found.floor_bytes, found.method
    else:
        planned, method = tflm_greedy(size_list, span_list), "tflm-greedy"
        floor = floor_bytes(size_list, span_list)
    offsets = dict(zip(ids, planned, strict=True))
    head = max((offsets[t] + sizes[t] for t in ids), default=0)
    peak = _peak_op(graph, spans, offsets, sizes, head)
    name = graph.ops[peak].name if graph.ops else ""
    return ArenaPlan(head, tail_bytes(graph, tail), offsets, spans, peak, name, floor, method)
