from __future__ import annotations

import pytest

from estimators import flash as fl
from estimators.deploy import deployed
from estimators.flash import FlashBreakdown, flash_breakdown, tflite_bytes
from search_space.model import lower


def test_tiny_payload_exact(tiny_graph):
    b = flash_breakdown(deployed(tiny_graph))
    # int8 weights: stem 4*3*3*3 = 108, dw 1*3*3*4 = 36, pw 8*4 = 32, skip 32, fc 2*8 = 16
    assert b.weights == 108 + 36 + 32 + 32 + 16 == 224
    # int32 biases (stem and dw get theirs from BN folding): 4 + 4 + 8 + 8 + 2 channels
    assert b.biases == 4 * (4 + 4 + 8 + 8 + 2) == 104
    # (float32 scale, int64 zero point) = 12 bytes per pair: one per activation tensor
    # (input, pad, stem, dw, pw, skip, add, mean, reshape, fc = 10) and one per output
    # channel for every weight and bias tensor (2 * 26)
    assert b.quant_params == 12 * (10 + 2 * 26) == 744
    # int32 operands: pad widths 4x2, mean axes 2, reshape shape 2
    assert b.aux_constants == 4 * (8 + 2 + 2) == 48


def test_tiny_structure_follows_the_constants(tiny_graph):
    b = flash_breakdown(deployed(tiny_graph))
    tensors = 23  # 10 activations, 5 weights, 5 biases, 3 int32 operands
    dims = 36 + 18 + 5 + 3  # activations 8 x 4-D + 2 x 2-D; weights 4 x 4-D + 1 x 2-D; 1-D rest
    quantised, constants = 20, 13
    operands = 3 + 4 + 4 + 4 + 4 + 3 + 3 + 3 + 4  # inputs + the output, per op
    options = (fl.OPTIONS_BYTES["PAD"] + 3 * fl.OPTIONS_BYTES["CONV_2D"]
               + fl.OPTIONS_BYTES["DEPTHWISE_CONV_2D"] + fl.OPTIONS_BYTES["ADD"]
               + fl.OPTIONS_BYTES["MEAN"] + fl.OPTIONS_BYTES["RESHAPE"]
               + fl.OPTIONS_BYTES["FULLY_CONNECTED"])
    expected = (fl.FILE_FIXED_BYTES + 7 * fl.OPERATOR_CODE_BYTES
                + tensors * (fl.TENSOR_TABLE_BYTES + fl.TENSOR_NAME_BYTES
                             + fl.SHAPE_VECTOR_BYTES + fl.BUFFER_ENTRY_BYTES)
                + dims * fl.SHAPE_BYTES_PER_DIM + quantised * fl.QUANT_TABLE_BYTES
                + constants * fl.CONSTANT_DATA_OVERHEAD
                + 9 * fl.OPERATOR_TABLE_BYTES + operands * fl.OPERATOR_BYTES_PER_OPERAND
                + options)
    assert b.structure == expected
    assert b.total == 224 + 104 + 744 + 48 + expected == tflite_bytes(deployed(tiny_graph))


def test_seed_payload_matches_the_layer_graph(seed_genome):
    graph = lower(seed_genome, class_channels=1).graph
    b = flash_breakdown(deployed(graph))
    convs = [op for op in graph.ops if op.kind == "conv"]
    weights = sum(graph.out_shape(op)[1] * graph.in_shape(op)[1] // op.groups * op.kernel ** 2
                  for op in convs)
    assert b.weights == weights
    # every conv of the seed has a bias or a BN, so every conv has one int32 per channel
    assert b.biases == 4 * sum(graph.out_shape(op)[1] for op in convs)
    # the payload dominates: structure is a few percent of the file
    assert b.structure < 0.1 * b.total


def test_wider_network_is_a_bigger_file(seed_genome, small_genome):
    assert (tflite_bytes(deployed(lower(seed_genome).graph))
            > tflite_bytes(deployed(lower(small_genome).graph)))


def test_breakdown_total_is_checked():
    assert FlashBreakdown(1, 2, 3, 4, 5).total == 15
    with pytest.raises(ValueError, match="sum of the parts"):
        FlashBreakdown(1, 2, 3, 4, 5, total=14)
