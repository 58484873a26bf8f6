"""The offline memory plan an exported ``.tflite`` carries for TensorFlow Lite Micro.

TFLM's allocator looks for a model metadata entry named ``OfflineMemoryAllocation``
(``micro_allocation_info.cc``; "Offline planned tensor allocations" in its
``docs/memory_management.md``). Its buffer holds little-endian int32s: the format version (1),
the number of subgraphs, the number of offsets that follow, which must equal the subgraph's
tensor count (else the interpreter refuses the model: "Nbr of offline buffer offsets ... not
equal nbr tensors"), then one byte offset into the arena head per tensor, ``-1`` for a tensor
left to the online planner. TFLM's ``GreedyMemoryPlanner`` places those buffers at exactly
those offsets without checking them, so the plan must be valid; it ignores the offsets of
tensors it does not plan (constants).

The plan is computed from the file itself, as TFLM sees it: the tensors that need arena memory
(no constant data, not variables, non-empty), their sizes rounded up to the 16-byte arena
alignment, their lifetimes from the file's own operator order (:func:`estimators.ram.lifetimes`'
convention), placed by :func:`estimators.memplan.plan`, the same planner the RAM estimator runs
on the deployed graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from estimators.memplan import MemoryPlan, conflicts, floor_bytes, plan, tflm_greedy
from estimators.ram import align
from estimators.tflite import TYPE_BYTES, indices, is_constant, schema, shape, subgraph_io

METADATA_NAME = b"OfflineMemoryAllocation"
PLAN_VERSION = 1
ONLINE = -1


class OfflinePlanError(RuntimeError):
    """The offline plan is invalid or TFLite Micro does not allocate what it says."""


@dataclass(frozen=True)
class FileBuffers:
    """The tensors of a file that TFLM plans in the arena head."""

    tensors: tuple[int, ...]  # tensor indices in subgraph 0
    sizes: tuple[int, ...]  # aligned bytes
    spans: tuple[tuple[int, int], ...]  # (first op, last op)
    tensor_count: int

    @property
    def floor_bytes(self) -> int:
        return floor_bytes(self.sizes, self.spans)

    def greedy_head_bytes(self) -> int:
        """The head TFLM's default planner gives the file without a plan."""
        offsets = tflm_greedy(self.sizes, self.spans)
        return max((o + s for o, s in zip(offsets, self.sizes, strict=True)), default=0)


def _nbytes(tensor: schema.TensorT) -> int:
    if tensor.type not in TYPE_BYTES:
        raise OfflinePlanError(f"tensor {tensor.name!r}: type {tensor.type} has no known size")
    return math.prod(shape(tensor)) * TYPE_BYTES[tensor.type]


def file_buffers(model: schema.ModelT) -> FileBuffers:
    """What TFLM plans for subgraph 0: inputs from op 0, outputs to the last op, every other
    tensor from the op writing it to the last op reading it."""
    sg = model.subgraphs[0]
    last_op = max(len(sg.operators) - 1, 0)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    graph_inputs, graph_outputs = subgraph_io(model)
    for t in graph_inputs:
        first[t] = last[t] = 0
    for i, op in enumerate(sg.operators):
        for t in indices(op.inputs):
            if t >= 0 and t in first:
                last[t] = i
        for t in indices(op.outputs):
            first.setdefault(t, i)
            last[t] = i
    for t in graph_outputs:
        first.setdefault(t, 0)
        last[t] = last_op
    planned = sorted(t for t in first
                     if not is_constant(model, sg.tensors[t])
                     and not sg.tensors[t].isVariable and _nbytes(sg.tensors[t]) > 0)
    return FileBuffers(tuple(planned), tuple(align(_nbytes(sg.tensors[t])) for t in planned),
                       tuple((first[t], last[t]) for t in planned), len(sg.tensors))


def plan_file(model: schema.ModelT) -> tuple[FileBuffers, MemoryPlan]:
    buffers = file_buffers(model)
    found = plan(buffers.sizes, buffers.spans)
    clash = conflicts(buffers.sizes, buffers.spans, found.offsets)
    if clash:
        i, j = clash[0]
        raise OfflinePlanError(f"memory plan overlaps tensors {buffers.tensors[i]} and "
                               f"{buffers.tensors[j]}, alive at the same time")
    return buffers, found


def metadata_words(buffers: FileBuffers, found: MemoryPlan) -> np.ndarray:
    """The int32 words of the ``OfflineMemoryAllocation`` buffer."""
    offsets = np.full(buffers.tensor_count, ONLINE, dtype=np.int64)
    offsets[list(buffers.tensors)] = found.offsets
    words = np.concatenate([[PLAN_VERSION, 1, buffers.tensor_count], offsets])
    return words.astype("<i4")


def strip(model: schema.ModelT) -> bool:
    """Remove any offline plan (the metadata entry; its buffer is emptied). True if found."""
    kept, found = [], False
    for entry in model.metadata or []:
        if entry.name == METADATA_NAME:
            model.buffers[entry.buffer].data = None
            found = True
        else:
            kept.append(entry)
    model.metadata = kept
    return found


def embed(model: schema.ModelT) -> MemoryPlan:
    """Plan the file and write the plan into its metadata (replacing an older one)."""
    strip(model)
    buffers, found = plan_file(model)
    data = schema.BufferT()
    data.data = np.frombuffer(metadata_words(buffers, found).tobytes(), dtype=np.uint8)
    model.buffers.append(data)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return found


def read(model: schema.ModelT) -> np.ndarray | None:
    """The offsets of the file's offline plan (one per tensor), or None without one."""
    for entry in model.metadata or []:
        if entry.name == METADATA_NAME:
            raw = np.asarray(model.buffers[entry.buffer].data, dtype=np.uint8).tobytes()
            words = np.frombuffer(raw, dtype="<i4")
            return words[3:3 + int(words[2])].copy()
    return None
