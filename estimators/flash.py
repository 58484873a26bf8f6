"""Size of the int8 ``.tflite`` file a deployed graph becomes.

The payload (weights, biases, quantisation parameters, int32 operands) is counted exactly from
the deployed graph. The flatbuffer structure around it (tables, vtables, vectors, names,
alignment padding) is modelled with the per-item constants below. **They are first estimates
from the TFLite schema, not measurements: issue 3 calibrates them against files produced by
onnx2tf.** Keep every constant named here so a calibration can replace it.
"""

from __future__ import annotations

from dataclasses import dataclass

from estimators.deploy import (
    ACTIVATION,
    ADD,
    AUX,
    AVERAGE_POOL_2D,
    BIAS,
    CONCATENATION,
    CONV_2D,
    DEPTHWISE_CONV_2D,
    FULLY_CONNECTED,
    MAX_POOL_2D,
    MEAN,
    PAD,
    RELU,
    RELU6,
    RESHAPE,
    RESIZE_NEAREST_NEIGHBOR,
    TRANSPOSE,
    WEIGHT,
    DeployedGraph,
    DeployedOp,
    DTensor,
)

# -- payload (exact) ------------------------------------------------------------------------
# The schema stores each quantisation scale as float32 and each zero point as int64.
QUANT_PAIR_BYTES = 4 + 8

# -- flatbuffer structure (estimates, calibrated in issue 3) ---------------------------------
# File identifier, root Model table, the one SubGraph table, description string, the
# "min_runtime_version" and "CONVERSION_METADATA" metadata buffers and the serving signature.
FILE_FIXED_BYTES = 1024
# One OperatorCode table (builtin code twice for schema compatibility, version) per op kind.
OPERATOR_CODE_BYTES = 24
# Tensor table: vtable share, type, buffer index, offsets to shape/name/quantization.
TENSOR_TABLE_BYTES = 32
# MLIR-converted tensor names join the TF op locations ("model/tf.nn.convolution_3/...") and
# are long; this is the mean length with its length prefix and padding.
TENSOR_NAME_BYTES = 64
# ``shape`` and ``shape_signature`` vectors: two length prefixes plus 4 bytes per dim each.
SHAPE_VECTOR_BYTES = 8
SHAPE_BYTES_PER_DIM = 8
# Model.buffers entry plus an empty Buffer table; every tensor has its own buffer.
BUFFER_ENTRY_BYTES = 16
# A constant's data vector: length prefix plus mean padding to the 16-byte data alignment.
CONSTANT_DATA_OVERHEAD = 4 + 8
# QuantizationParameters table with its vtable, two vector length prefixes, quantized_dimension.
QUANT_TABLE_BYTES = 32
# Operator table, its vtable share, the inputs/outputs vectors' length prefixes, opcode index.
OPERATOR_TABLE_BYTES = 32
OPERATOR_BYTES_PER_OPERAND = 4
# Builtin options table (with vtable) by op kind; kinds without options store none.
OPTIONS_BYTES: dict[str, int] = {
    CONV_2D: 36,
    DEPTHWISE_CONV_2D: 40,
    FULLY_CONNECTED: 24,
    MAX_POOL_2D: 36,
    AVERAGE_POOL_2D: 36,
    ADD: 16,
    CONCATENATION: 20,
    MEAN: 12,
    RESHAPE: 16,
    TRANSPOSE: 8,
    PAD: 8,
    RESIZE_NEAREST_NEIGHBOR: 16,  # align_corners, half_pixel_centers
    RELU: 0,
    RELU6: 0,
}
DEFAULT_OPTIONS_BYTES = 16


@dataclass(frozen=True)
class FlashBreakdown:
    """Bytes of a ``.tflite`` file by what they hold; ``total`` is their sum."""

    weights: int
    biases: int
    quant_params: int
    aux_constants: int
    structure: int
    total: int = -1

    def __post_init__(self) -> None:
        parts = self.weights + self.biases + self.quant_params + self.aux_constants + self.structure
        if self.total == -1:
            object.__setattr__(self, "total", parts)
        elif self.total != parts:
            raise ValueError(f"total {self.total} != sum of the parts {parts}")


def _tensor_structure(t: DTensor) -> int:
    size = (TENSOR_TABLE_BYTES + TENSOR_NAME_BYTES + SHAPE_VECTOR_BYTES
            + SHAPE_BYTES_PER_DIM * len(t.shape) + BUFFER_ENTRY_BYTES)
    if t.quant_channels:
        size += QUANT_TABLE_BYTES
    if t.is_constant:
        size += CONSTANT_DATA_OVERHEAD
    return size


def _op_structure(op: DeployedOp) -> int:
    operands = len(op.inputs) + 1
    return (OPERATOR_TABLE_BYTES + OPERATOR_BYTES_PER_OPERAND * operands
            + OPTIONS_BYTES.get(op.kind, DEFAULT_OPTIONS_BYTES))


def flash_breakdown(graph: DeployedGraph) -> FlashBreakdown:
    by_role = {ACTIVATION: 0, WEIGHT: 0, BIAS: 0, AUX: 0}
    quant = structure = 0
    for t in graph.tensors:
        if t.is_constant:
            by_role[t.role] += t.nbytes
        quant += QUANT_PAIR_BYTES * t.quant_channels
        structure += _tensor_structure(t)
    structure += sum(_op_structure(op) for op in graph.ops)
    structure += OPERATOR_CODE_BYTES * len({op.kind for op in graph.ops})
    structure += FILE_FIXED_BYTES
    return FlashBreakdown(by_role[WEIGHT], by_role[BIAS], quant, by_role[AUX], structure)


def tflite_bytes(graph: DeployedGraph) -> int:
    """Estimated ``.tflite`` file size in bytes."""
    return flash_breakdown(graph).total
