from __future__ import annotations

from estimators.counting import macs, macs_seed, params
from search_space.model import lower


def test_tiny_params(tiny_graph):
    # stem conv 4*3*3*3 = 108, bn 2*4 = 8
    # dw 4*1*3*3 = 36, bn 8; pw 8*4 + 8 bias = 40, bn 2*8 = 16
    # skip 8*4 + 8 = 40; fc 2*8 + 2 = 18
    assert params(tiny_graph) == 108 + 8 + 36 + 8 + 40 + 16 + 40 + 18 == 274


def test_tiny_macs(tiny_graph):
    # stem: out 4x4x4 = 64 elements x (3 in * 3 * 3) = 1728
    # dw: 64 x (1 * 3 * 3) = 576; pw and skip: 8x4x4 = 128 x 4 = 512 each; fc: 2 x 8 = 16
    assert macs(tiny_graph) == 1728 + 576 + 512 + 512 + 16 == 3344


def test_tiny_macs_seed(tiny_graph):
    # + 4 per BN output element: stem bn 64, dw bn 64, pw bn 128 elements
    assert macs_seed(tiny_graph) == 3344 + 4 * (64 + 64 + 128) == 4368


def test_scope_restricts_by_dotted_prefix(tiny_graph):
    # main.*: dw 36 + bn 8 + pw 40 + bn 16 = 100 params; 576 + 512 MACs
    assert params(tiny_graph, "main") == 100
    assert macs(tiny_graph, "main") == 1088
    assert macs_seed(tiny_graph, "main") == 1088 + 4 * (64 + 128)
    # "skip" is an op name, not a scope, and still counts; a bare prefix is not a scope
    assert params(tiny_graph, "skip") == 40
    assert params(tiny_graph, "mai") == 0


def test_seed_backbone_golden(seed_genome):
    graph = lower(seed_genome, class_channels=1).graph
    assert macs_seed(graph, "backbone") == 182_673_408
    assert params(graph, "backbone") == 658_880


def test_seed_ssdlite_golden(seed_genome):
    graph = lower(seed_genome, class_channels=1).graph
    assert macs_seed(graph) == 199_144_576
    assert params(graph) == 968_022


def test_seed_conventions_differ_by_bn(seed_genome):
    graph = lower(seed_genome, class_channels=1).graph
    bn_elements = sum(graph.tensors[op.output].numel for op in graph.ops if op.kind == "bn")
    assert macs_seed(graph) - macs(graph) == 4 * bn_elements
    # Our own deployed figure (no external reference): the regression value for the seed_genome.
    assert macs(graph) == 180_447_872
