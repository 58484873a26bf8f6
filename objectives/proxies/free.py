"""Training-free proxies: scores of the untrained network (seeded weights) on a fixed batch of
real training images at the network's own input size.

``naswot`` (Mellor et al., 2021, "Neural Architecture Search without Training"): how
differently the images fall into the ReLUs' on/off regions; the log-determinant of the kernel
that counts, for each pair of images, the units in the same state. ``zen`` (after Lin et al.,
2021, "Zen-NAS"): how strongly the maps the head predicts on respond to a small perturbation of
the input, with BatchNorm normalising by batch statistics, plus the log of each BatchNorm's
batch standard deviation (the scale the normalisation removed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from objectives.proxies.base import (
    AccuracyProxy,
    ProxyData,
    ProxyError,
    Report,
    register_proxy,
)
from objectives.proxies.probe import Taps, build_seeded, probe_batch, record_outputs, seeded
from search_space.model import GraphNet
from search_space.spec import ModelSpec


def _prepare(spec: ModelSpec, data: ProxyData, images: int) -> tuple[GraphNet, torch.Tensor]:
    net = build_seeded(spec, data.seed)
    channels, size = net.arch.input_shape[1], net.arch.input_size
    if len(data.train) < 2:
        raise ProxyError(f"{data.train.source}: a training-free proxy needs at least 2 images")
    return net.train(), probe_batch(data.train, size, images, data.seed, channels)


@register_proxy
@dataclass(frozen=True)
class NaswotProxy(AccuracyProxy):
    """log det K over ``images`` training images, K[i, j] = number of ReLUs in the same on/off
    state for images i and j (BatchNorm on batch statistics, PyTorch's default init)."""

    name: ClassVar[str] = "naswot"
    training_free: ClassVar[bool] = True
    images: int = 32

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        net, batch = _prepare(spec, data, self.images)
        kernel = torch.zeros(len(batch), len(batch), dtype=torch.float64)
        with torch.no_grad(), record_outputs(Taps.of(net).pre_activations) as found:
            net(batch)
        for pre in found:
            codes = (pre.flatten(1) > 0).float()
            # Units where both images agree: both on + both off. Float32 is exact per layer
            # (counts far below 2**24); the sum over layers is kept in float64.
            same = codes @ codes.T + (1 - codes) @ (1 - codes).T
            kernel += same.double()
        return _logdet(kernel)


def _gaussian_weights(net: GraphNet, seed: int) -> None:
    """Zen-NAS's initialisation: N(0, 1) weights, zero biases. Unlike PyTorch's fan-in scaled
    default, the variance a layer passes on then grows with its width, which is what the
    BatchNorm term measures."""
    with seeded(seed + 2), torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
                module.weight.normal_()
                if module.bias is not None:
                    module.bias.zero_()


def _logdet(kernel: torch.Tensor) -> float:
    sign, value = torch.linalg.slogdet(kernel)
    # Two images with identical codes everywhere make the kernel singular: no separation.
    return float(value) if sign > 0 else -math.inf


@register_proxy
@dataclass(frozen=True)
class ZenProxy(AccuracyProxy):
    """log(mean L1 change of the predicted-on maps / epsilon) + sum over BatchNorms of
    log(batch std), with N(0, 1) weights, on ``images`` training images."""

    name: ClassVar[str] = "zen"
    training_free: ClassVar[bool] = True
    images: int = 16
    epsilon: float = 0.01

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        net, batch = _prepare(spec, data, self.images)
        _gaussian_weights(net, data.seed)
        taps = Taps.of(net)
        bn = tuple(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
        with seeded(data.seed + 1):
            noise = torch.randn_like(batch)
        with torch.no_grad():
            with record_outputs(taps.head_inputs, inputs=True) as clean, \
                    record_outputs(bn, inputs=True) as bn_inputs:
                net(batch)
            with record_outputs(taps.head_inputs, inputs=True) as moved:
                net(batch + self.epsilon * noise)
        change = sum(float((a - b).abs().flatten(1).sum(1).mean())
                     for a, b in zip(clean, moved, strict=True))
        # Batch statistics are what train-mode BatchNorm divided by; Zen-NAS adds them back
        # as log(sqrt(mean variance)) per layer.
        scale = sum(0.5 * math.log(float(x.var(dim=(0, 2, 3)).mean()) + 1e-12)
                    for x in bn_inputs)
        return math.log(change / self.epsilon + 1e-12) + scale
