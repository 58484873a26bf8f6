"""Our counts against thop and fvcore on the torch module built from the same graph.

BN conventions, as the installed versions actually behave (checked in their sources:
thop ``vision/basic_hooks.count_normalization`` and fvcore ``jit_handles.batchnorm_flop_jit``):

* thop 0.1.1.post2209072238 charges 2 per BN element and doubles it for an affine BN: 4 per
  element for ``nn.BatchNorm2d`` as built here, which is exactly the seed's convention, so
  thop's total equals :func:`macs_seed`. Conv bias is not counted.
* fvcore 0.1.5 charges an eval-mode BN 1 per element, doubled when affine: 2 per element here.
* The often-quoted "thop 2, fvcore 1" are the non-affine figures;
  :func:`test_non_affine_bn_is_half` shows them.
Neither counts adds or max-pooling (fvcore warns about them; silenced here); fvcore charges a
global average pool 1 per input element, so only its conv and linear entries are compared.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import nn

from estimators.counting import macs, macs_seed, params
from estimators.ir import Graph
from search_space.model import CLASSIFICATION, Architecture, GraphNet, PaddedConv2d, lower


@contextmanager
def _quiet() -> Iterator[None]:
    """thop (distutils LooseVersion) and fvcore (torch.jit.script) use APIs that warn as
    deprecated on import and call; both libraries are imported and run inside this."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _zero(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
    module.total_ops += torch.zeros(1, dtype=torch.float64)


def _thop(net: nn.Module, x: torch.Tensor, count_bn: bool = True) -> int:
    with _quiet():
        import thop
        from thop.vision.basic_hooks import count_convNd

        # thop finds its counters by exact module type: the SAME-padded conv subclass is a conv.
        custom = {PaddedConv2d: count_convNd}
        if not count_bn:
            custom[nn.BatchNorm2d] = _zero

        total, _ = thop.profile(net, (x,), custom_ops=custom, verbose=False)
    return int(total)


def _fvcore(net: nn.Module, x: torch.Tensor) -> dict[str, int]:
    with _quiet():
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(net, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return {k: int(v) for k, v in analysis.by_operator().items()}


def _bn_elements(graph: Graph) -> int:
    return sum(graph.tensors[op.output].numel for op in graph.ops if op.kind == "bn")


def _net(arch: Architecture) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return GraphNet(arch).eval(), torch.zeros(arch.input_shape)


@pytest.fixture(scope="module")
def detector(small_genome) -> Architecture:
    return lower(small_genome, class_channels=1)


@pytest.fixture(scope="module")
def classifier(tiny_graph) -> Architecture:
    # the tiny graph has the linear layer the detector lacks
    return Architecture("tiny", CLASSIFICATION, tiny_graph, num_classes=2)


@pytest.mark.parametrize("which", ["detector", "classifier"])
def test_thop_conv_and_linear_equal_our_macs(which, request):
    arch = request.getfixturevalue(which)
    net, x = _net(arch)
    assert _thop(net, x, count_bn=False) == macs(arch.graph)


@pytest.mark.parametrize("which", ["detector", "classifier"])
def test_thop_total_is_the_seed_convention(which, request):
    arch = request.getfixturevalue(which)
    net, x = _net(arch)
    total = _thop(net, x)
    assert total - macs(arch.graph) == 4 * _bn_elements(arch.graph)
    assert total == macs_seed(arch.graph)


@pytest.mark.parametrize("which", ["detector", "classifier"])
def test_fvcore_conv_and_linear_equal_our_macs(which, request):
    arch = request.getfixturevalue(which)
    net, x = _net(arch)
    counts = _fvcore(net, x)
    assert counts.get("conv", 0) + counts.get("linear", 0) == macs(arch.graph)
    # fvcore: 2 per affine BN element, so the seed convention is 2 per element above it
    assert counts["batch_norm"] == 2 * _bn_elements(arch.graph)
    fv_conv_bn = counts["conv"] + counts.get("linear", 0) + counts["batch_norm"]
    assert macs_seed(arch.graph) - fv_conv_bn == 2 * _bn_elements(arch.graph)


@pytest.mark.parametrize("which", ["detector", "classifier"])
def test_torch_parameter_count_equals_ours(which, request):
    arch = request.getfixturevalue(which)
    net, _ = _net(arch)
    assert sum(p.numel() for p in net.parameters()) == params(arch.graph)


def test_non_affine_bn_is_half():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False),
                        nn.BatchNorm2d(4, affine=False)).eval()
    x = torch.zeros(1, 3, 8, 8)
    conv, bn_elements = 4 * 8 * 8 * 27, 4 * 8 * 8
    assert _thop(net, x) == conv + 2 * bn_elements
    assert _fvcore(net, x) == {"conv": conv, "batch_norm": bn_elements}
