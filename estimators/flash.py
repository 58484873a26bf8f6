"""Size of the int8 ``.tflite`` file a deployed graph becomes.

The payload (weights, biases, quantisation parameters, int32 operands) is counted exactly from
the deployed graph, and so are the bytes that follow from it: each constant's length prefix and
16-byte alignment, and the tensor names (the export names every tensor ``t<index>``, see
``nas.export.rewrite``). The rest of the flatbuffer (tensor and operator tables, vtables,
shape and operand vectors, quantisation tables, operator codes, metadata) is a per-tensor and
per-operator cost **fitted on 45 real exports** (every baseline and 20 sampled genomes,
``scripts/bench_estimators.py``, 2026-11-21): within 0.15% of the file on every one of them.
The offline memory plan the export writes (``OfflineMemoryAllocation`` metadata, one int32
per tensor after a 3-word header, :mod:`nas.export.memory_plan`) is counted exactly, plus its
metadata entry, name and buffer table (64-72 bytes measured on four exports, 2026-12-02).
"""

from __future__ import annotations

from dataclasses import dataclass

from estimators.deploy import (
    ACTIVATION,
    AUX,
    BIAS,
    WEIGHT,
    DeployedGraph,
    DTensor,
)

# -- payload (exact) ------------------------------------------------------------------------
# The schema stores each quantisation scale as float32 and each zero point as int64.
QUANT_PAIR_BYTES = 4 + 8

# -- flatbuffer structure ----------------------------------------------------------------
# Constant data vectors: a 4-byte length prefix, the data aligned to 16 bytes.
LENGTH_PREFIX_BYTES = 4
BUFFER_ALIGNMENT = 16
# Least-squares fit over the 45 exports (residual <= 912 bytes, <= 0.15% of the file): file
# header, subgraph, metadata and operator codes; each tensor's table, shape vector, buffer
# entry and quantisation table; each operator's table, operand vectors and options.
FILE_FIXED_BYTES = 852
TENSOR_BYTES = 80
OPERATOR_BYTES = 57
# The offline plan: header words (version, subgraphs, count), then an offset per tensor; the
# metadata table, its name and the buffer entry around them (measured: 64-72 bytes).
PLAN_HEADER_WORDS = 3
PLAN_FIXED_BYTES = 72


@dataclass(frozen=True)
class FlashBreakdown:
    """Bytes of a ``.tflite`` file by what they hold; ``total`` is their sum."""

    weights: int
    biases: int
    quant_params: int
    aux_constants: int
    structure: int
    total: int = -1
    offline_plan: int = 0

    def __post_init__(self) -> None:
        parts = (self.weights + self.biases + self.quant_params + self.aux_constants
                 + self.structure + self.offline_plan)
        if self.total == -1:
            object.__setattr__(self, "total", parts)
        elif self.total != parts:
            raise ValueError(f"total {self.total} != sum of the parts {parts}")


def _name_bytes(index: int) -> int:
    """``t<index>`` as a flatbuffer string: length prefix, characters, NUL, 4-byte padding."""
    return -(-(LENGTH_PREFIX_BYTES + len(f"t{index}") + 1) // 4) * 4


def _constant_overhead(t: DTensor) -> int:
    stored = -(-(t.nbytes + LENGTH_PREFIX_BYTES) // BUFFER_ALIGNMENT) * BUFFER_ALIGNMENT
    return stored - t.nbytes


def offline_plan_bytes(graph: DeployedGraph) -> int:
    """What the ``OfflineMemoryAllocation`` metadata adds to the file."""
    return 4 * (PLAN_HEADER_WORDS + len(graph.tensors)) + PLAN_FIXED_BYTES


def flash_breakdown(graph: DeployedGraph, offline_plan: bool = True) -> FlashBreakdown:
    """``offline_plan``: the file carries the arena plan (every export does by default)."""
    by_role = {ACTIVATION: 0, WEIGHT: 0, BIAS: 0, AUX: 0}
    quant = 0
    structure = FILE_FIXED_BYTES + OPERATOR_BYTES * len(graph.ops)
    for t in graph.tensors:
        if t.is_constant:
            by_role[t.role] += t.nbytes
            structure += _constant_overhead(t)
        quant += QUANT_PAIR_BYTES * t.quant_channels
        structure += TENSOR_BYTES + _name_bytes(t.id)
    plan = offline_plan_bytes(graph) if offline_plan else 0
    return FlashBreakdown(by_role[WEIGHT], by_role[BIAS], quant, by_role[AUX], structure,
                          offline_plan=plan)


def tflite_bytes(graph: DeployedGraph, offline_plan: bool = True) -> int:
    """Estimated ``.tflite`` file size in bytes."""
    return flash_breakdown(graph, offline_plan).total
