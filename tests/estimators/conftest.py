"""Graphs shared by the estimator tests: a tiny hand-computed one and two genomes."""

from __future__ import annotations

import pytest

from estimators.ir import Graph, GraphBuilder
from search_space.baselines import seed_genome as _seed
from search_space.genome import AnchorGene, Genome, HeadGene, StageGene


def _tiny() -> Graph:
    """Input 1x3x8x8 -> conv 3->4 k3 s2 + bn + relu -> (dw k3 + bn + relu6 -> pw 4->8 (bias)
    + bn) + (skip pw 4->8 (bias), no bn) -> add -> gap -> flatten -> linear 8->2 (bias).

    The stem pads symmetrically (an explicit ``padding=1``, PyTorch's rule, which TF's SAME
    cannot express on an even map), so the explicit-PAD path of the deploy rules stays covered;
    every other conv is SAME. Every figure the tests assert about it is worked out by hand in
    the test's comments.
    """
    b = GraphBuilder()
    x = b.input((1, 3, 8, 8))  # tensor 0
    with b.scope("stem"):
        t = b.act(b.bn(b.conv(x, 4, 3, 2, padding=1, name="conv")))  # (1,4,4,4)
    with b.scope("main"):
        y = b.act(b.bn(b.dwconv(t, 3, name="dw"), name="dw_bn"), "relu6")
        y = b.bn(b.conv(y, 8, 1, bias=True, name="pw"), name="pw_bn")  # (1,8,4,4)
    s = b.conv(t, 8, 1, bias=True, name="skip")
    y = b.add(y, s, name="add")
    y = b.flatten(b.gap(y, name="gap"), name="flatten")
    return b.finish([b.linear(y, 2, name="fc")])


def _small() -> Genome:
    """A resolution-96 genome with every block type and both kernels, for fast torch tests."""
    st = (StageGene(0.5, 2, "lb", 3), StageGene(0.5, 2, "dlb", 5),
          StageGene(0.5, 2, "dlb_skip", 3), StageGene(0.5, 2, "dlb_skip", 3))
    anchors = tuple(AnchorGene(a, a + 0.2, (2.0,)) for a in (0.1, 0.3, 0.5, 0.7))
    head = HeadGene("ssdlite", (128,), anchors)
    return Genome(96, st, ((2, 2), (3, 2), (4, 2)), head, channel_divisor=8)


@pytest.fixture(scope="session")
def tiny_graph() -> Graph:
    return _tiny()


@pytest.fixture(scope="session")
def seed_genome() -> Genome:
    return _seed(1.0)


@pytest.fixture(scope="session")
def small_genome() -> Genome:
    return _small()
