"""What training-free proxies look at: a fixed batch of real images at the model's own input
size, and the model's activations on it.

Real images at the model's resolution, not Gaussian noise at a common one: on the demo data the
same network goes from 56.6 to 82.4 AP50 between 128 and 256 px because most objects are small,
so a proxy that does not see the model at its resolution cannot rank resolutions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from objectives.augment import resize
from objectives.data.dataset import DetectionDataset
from search_space.detection import normalise
from search_space.model import GraphNet
from search_space.spec import ModelSpec

ACTIVATION_KINDS = ("relu", "relu6")
MODULE_KINDS = ("conv", "bn", "linear")  # the ops GraphNet runs as nn.Modules


def probe_indices(num_images: int, count: int, seed: int) -> list[int]:
    """``count`` distinct image indices drawn from the seed (all of them if there are fewer)."""
    rng = np.random.default_rng([seed, 7])
    return sorted(rng.permutation(num_images)[:count].tolist())


def probe_batch(dataset: DetectionDataset, size: int, count: int, seed: int,
                channels: int = 3) -> torch.Tensor:
    """A fixed batch (N, C, size, size): the evaluation transform (whole image resized), no
    augmentation, so the batch depends on the seed and the size only."""
    images = [resize(dataset.sample(i), size).image
              for i in probe_indices(len(dataset), count, seed)]
    return torch.from_numpy(normalise(np.stack(images), channels))


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch for a block without changing the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_seeded(spec: ModelSpec, seed: int) -> GraphNet:
    with seeded(seed):
        return spec.build()


@dataclass(frozen=True)
class Taps:
    """Where to listen in a :class:`GraphNet`: the module computing each activation's input
    (ReLUs are functional in GraphNet, so the producing conv or BatchNorm is hooked), and the
    first module of each head predictor (its input is a feature map the head predicts on)."""

    pre_activations: tuple[nn.Module, ...]
    head_inputs: tuple[nn.Module, ...]

    @classmethod
    def of(cls, net: GraphNet) -> Taps:
        graph = net.arch.graph
        producer = {op.output: op for op in graph.ops}
        modules = {op.name: net.net.get_submodule(op.name) for op in graph.ops
                   if op.kind in MODULE_KINDS}
        pre = []
        for op in graph.ops:
            if op.kind in ACTIVATION_KINDS:
                source = producer.get(op.inputs[0])
                if source is not None and source.name in modules:
                    pre.append(modules[source.name])
        head, seen = [], set()
        for op in graph.ops:
            # A predictor's first op reads a map made outside the head (a tap or an extra).
            source = producer.get(op.inputs[0]) if op.inputs else None
            if (op.name.startswith("head.") and op.name in modules and source is not None
                    and not source.name.startswith("head.") and op.inputs[0] not in seen):
                seen.add(op.inputs[0])
                head.append(modules[op.name])
        return cls(tuple(pre), tuple(head))


@contextmanager
def record_outputs(modules: tuple[nn.Module, ...], inputs: bool = False
                   ) -> Iterator[list[torch.Tensor]]:
    """Collect each module's output (or first input) during forward passes in the block, in
    call order."""
    found: list[torch.Tensor] = []
    if inputs:
        handles = [m.register_forward_pre_hook(lambda _m, args: found.append(args[0]))
                   for m in modules]
    else:
        handles = [m.register_forward_hook(lambda _m, _args, out: found.append(out))
                   for m in modules]
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()
