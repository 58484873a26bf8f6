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
    # (input, pad, stem, dw, pw, skip, add, mean, fc = 9; the flatten folds into the FC) and
    # one per output channel for every weight and bias tensor (2 * 26)
    assert b.quant_params == 12 * (9 + 2 * 26) == 732
    # int32 operands: pad widths 4x2, mean axes 2
    assert b.aux_constants == 4 * (8 + 2) == 40


def test_tiny_structure_follows_the_constants(tiny_graph):
    b = flash_breakdown(deployed(tiny_graph))
    tensors, ops = 21, 8  # 9 activations, 5 weights, 5 biases, 2 int32 operands
    # names: 4-byte length + "t0".."t20" + NUL = 7 or 8 bytes, padded to 8 (t100 takes 12)
    names = 21 * 8
    # each constant: 4-byte prefix, data padded to 16:
    # weights 108, 36, 32, 32, 16; biases 16, 16, 32, 32, 8; operands 32, 8
    stored = [112, 48, 48, 48, 32, 32, 32, 48, 48, 16, 48, 16]
    data = [108, 36, 32, 32, 16, 16, 16, 32, 32, 8, 32, 8]
    expected = (fl.FILE_FIXED_BYTES + tensors * fl.TENSOR_BYTES + ops * fl.OPERATOR_BYTES
                + names + sum(stored) - sum(data))
    assert b.structure == expected
    # the offline memory plan: 3 header words + one int32 per tensor, and its metadata entry
    assert b.offline_plan == 4 * (3 + 21) + fl.PLAN_FIXED_BYTES
    assert b.total == 224 + 104 + 732 + 40 + expected + b.offline_plan \
        == tflite_bytes(deployed(tiny_graph))
    assert tflite_bytes(deployed(tiny_graph), offline_plan=False) == b.total - b.offline_plan


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
