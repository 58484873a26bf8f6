from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch

from search_space.genome import AnchorGene, Genome, HeadGene, StageGene
from search_space.model import build, lower
from search_space.priors import generate_priors
from search_space.sampling import random_genomes


def seed_genome(width: float = 1.0) -> Genome:
    stages = (StageGene(width, 4, "lb", 3), StageGene(width, 4, "lb", 3),
              StageGene(width, 3, "dlb_skip", 3), StageGene(width, 3, "dlb_skip", 3))
    mins, maxs = [26, 67, 108, 149, 190, 231], [67, 108, 149, 190, 231, 256]
    ratios = [(2,), (2, 3), (2, 3), (2, 3), (2,), (2,)]
    anchors = tuple(AnchorGene(a / 256, b / 256, r)
                    for a, b, r in zip(mins, maxs, ratios, strict=True))
    return Genome(256, stages, ((2, 3), (3, 2), (4, 3)),
                  HeadGene("ssdlite", (256, 256, 256), anchors), channel_divisor=1)


def test_seed_genome_from_the_doc_equals_the_baseline():
    # Written here from etinynet-ssd.md, independently of search_space.baselines.
    from search_space.baselines import seed_genome as library_seed

    for width in (1.0, 0.75, 0.5, 0.35):
        assert library_seed(width) == seed_genome(width)


def test_seed_config_has_6132_priors():
    genome = seed_genome()
    assert genome.map_sizes() == (32, 16, 8, 4, 2, 1)
    assert genome.num_priors() == 6132
    assert lower(genome).num_priors == 6132
    assert generate_priors(genome.map_sizes(), genome.head.anchors).shape == (6132, 4)


def test_seed_widths_truncate():
    assert seed_genome(0.35).stage_channels() == (11, 44, 67, 89)
    assert seed_genome(0.35).last_channels() == 179
    assert seed_genome(0.75).stage_channels() == (24, 96, 144, 192)


def test_priors_layout_matches_the_seed():
    genome = seed_genome()
    priors = generate_priors(genome.map_sizes(), genome.head.anchors)
    # First cell of the 32x32 map: min square, sqrt(min*max) square, ratio-2 pair.
    first = priors[:4]
    np.testing.assert_allclose(first[:, :2], 0.5 / 32)
    np.testing.assert_allclose(first[0, 2:], 26 / 256)
    np.testing.assert_allclose(first[1, 2:], np.sqrt(26 * 67) / 256)
    np.testing.assert_allclose(first[2, 2:], [26 / 256 * np.sqrt(2), 26 / 256 / np.sqrt(2)],
                               rtol=1e-6)
    # Cells are row-major: the second cell moves along x.
    np.testing.assert_allclose(priors[4, :2], [1.5 / 32, 0.5 / 32])
    assert priors.min() >= 0.0 and priors.max() <= 1.0
    # The last prior is the 1x1 map's sqrt(231*256) square, clamped to 1 at most.
    np.testing.assert_allclose(priors[-1, :2], 0.5)


@pytest.mark.parametrize("genome", random_genomes(50, seed=2026), ids=lambda g: f"r{g.resolution}")
def test_sampled_genomes_build_with_matching_prior_counts(genome):
    num_classes = 3
    arch = lower(genome, num_classes)
    boxes, logits = (arch.graph.shape(t) for t in arch.graph.outputs)
    assert boxes == (1, genome.num_priors(), 4)
    assert logits == (1, genome.num_priors(), num_classes + 1)


@pytest.mark.parametrize("genome", random_genomes(6, seed=11), ids=lambda g: f"r{g.resolution}")
def test_torch_forward_shapes(genome):
    model = build(genome, num_classes=2).eval()
    with torch.no_grad():
        boxes, logits = model(torch.zeros(2, genome.input_channels, genome.resolution,
                                          genome.resolution))
    assert boxes.shape == (2, genome.num_priors(), 4)
    assert logits.shape == (2, genome.num_priors(), 3)
    assert model.priors.shape == (genome.num_priors(), 4)


def test_conv_bn_relu_order_and_module_names():
    model = build(seed_genome(0.35))
    names = [n for n, _ in model.named_modules()]
    assert "net.backbone.stem.conv" in names and "net.backbone.stem.bn" in names
    ops = model.arch.graph.ops
    kinds = [op.kind for op in ops[:3]]
    assert kinds == ["conv", "bn", "relu"]
    # BN always directly follows a conv, so it folds at export.
    for prev, op in pairwise(ops):
        if op.kind == "bn":
            assert prev.kind == "conv" and op.inputs == (prev.output,)


def test_head_is_nhwc_ordered():
    # One 2x2 map, one class channel: logits must follow (cell row-major, anchor) order.
    genome = Genome(96, (StageGene(0.25, 1),) * 4, ((4, 1),),
                    HeadGene("ssd", (), (AnchorGene(0.3, 0.6, ()),)))
    model = build(genome, num_classes=1).eval()
    with torch.no_grad():
        x = torch.randn(1, 3, 96, 96)
        boxes, _ = model(x)
        feats = {}
        conv = model.net.get_submodule("head.0.loc")
        conv.register_forward_hook(lambda m, i, o: feats.setdefault("loc", o))
        model(x)
    loc = feats["loc"]  # (1, A*4, 3, 3)
    a = 2
    expected = loc.permute(0, 2, 3, 1).reshape(1, 9 * a, 4)
    torch.testing.assert_close(boxes, expected)


def test_graphnet_runs_ops_that_read_a_tensor_twice():
    from estimators.ir import GraphBuilder
    from search_space.model import CLASSIFICATION, Architecture, GraphNet

    b = GraphBuilder()
    x = b.input((1, 2, 4, 4))
    y = b.act(x)
    z = b.concat([b.add(y, y), y], axis=1)
    net = GraphNet(Architecture("twice", CLASSIFICATION, b.finish([z]), 2))
    inp = torch.randn(1, 2, 4, 4)
    out = net(inp)
    torch.testing.assert_close(out, torch.cat([2 * inp.relu(), inp.relu()], dim=1))


def test_graphnet_upsample_and_pad_match_torch():
    import torch.nn.functional as F

    from estimators.ir import GraphBuilder
    from search_space.model import CLASSIFICATION, Architecture, GraphNet

    b = GraphBuilder()
    x = b.input((2, 3, 4, 5))
    up = b.upsample(x, 2)
    out = b.pad(up, (1, 0, 2, 3))  # top, bottom, left, right
    net = GraphNet(Architecture("up_pad", CLASSIFICATION, b.finish([up, out]), 2))
    inp = torch.randn(2, 3, 4, 5)
    got_up, got = net(inp)
    expected_up = F.interpolate(inp, scale_factor=2, mode="nearest")
    torch.testing.assert_close(got_up, expected_up)
    torch.testing.assert_close(got, F.pad(expected_up, (2, 3, 1, 0)))
    assert got.shape == (2, 3, 9, 15)
    assert torch.equal(got[:, :, 0], torch.zeros(2, 3, 15))  # the padded top row
    torch.testing.assert_close(got[:, :, 1:, 2:12], expected_up)


def test_anchor_gene_cell_boxes_order_and_cap():
    boxes = AnchorGene(0.5, 0.9, (3.0,)).cell_boxes()
    r3 = np.sqrt(3)
    expected = [(0.5, 0.5), (np.sqrt(0.45), np.sqrt(0.45)), (min(0.5 * r3, 1.0), 0.5 / r3),
                (0.5 / r3, min(0.5 * r3, 1.0))]
    np.testing.assert_allclose(boxes, expected)
    assert len(boxes) == AnchorGene(0.5, 0.9, (3.0,)).boxes_per_cell


def test_priors_take_any_anchor_spec():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class TwoBoxes:
        boxes_per_cell: int = 2

        def cell_boxes(self) -> list[tuple[float, float]]:
            return [(0.2, 0.4), (1.5, 0.1)][: self.boxes_per_cell]

    priors = generate_priors([2], [TwoBoxes()])
    assert priors.shape == (8, 4)
    np.testing.assert_allclose(priors[:2], [[0.25, 0.25, 0.2, 0.4], [0.25, 0.25, 1.5, 0.1]])
    with pytest.raises(ValueError, match="boxes_per_cell"):
        generate_priors([2], [TwoBoxes(boxes_per_cell=3)])
