"""From an architecture's layer graph to a trainable ``torch.nn.Module``.

:func:`lower` turns a genome into an :class:`Architecture` (its layer graph plus what a
detector needs to decode: map sizes and anchors). :func:`build` instantiates the same graph as
a :class:`GraphNet`, whose parameters are nested by the graph's dotted op names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from estimators.ir import Graph, GraphBuilder, Op, conv_pads, symmetric_padding
from search_space.backbones import etinynet
from search_space.detection import Detections, PostProcess, normalise, postprocess
from search_space.genome import Genome, GenomeError, HeadGene
from search_space.heads import detection_head
from search_space.layers import Feature
from search_space.priors import AnchorSpec, count_priors, generate_priors

DETECTION = "detection"
CLASSIFICATION = "classification"


@dataclass(frozen=True)
class Architecture:
    """One network, lowered: the graph every estimator reads, and how to read its outputs.

    ``num_classes`` counts foreground classes; a detector's logits have ``num_classes + 1``
    channels (background first). ``anchors`` holds one anchor set per map: the genome's
    :class:`~search_space.genome.AnchorGene`, or any other :class:`AnchorSpec` (a published
    network's own scheme).
    """

    name: str
    task: str
    graph: Graph
    num_classes: int
    map_sizes: tuple[int, ...] = ()
    anchors: tuple[AnchorSpec, ...] = ()
    backbone_scope: str = "backbone"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.graph.shape(self.graph.inputs[0])

    @property
    def input_size(self) -> int:
        return self.input_shape[-1]

    @property
    def num_priors(self) -> int:
        return count_priors(self.map_sizes, self.anchors) if self.task == DETECTION else 0

    def priors(self) -> np.ndarray:
        if self.task != DETECTION:
            raise ValueError(f"{self.name} is a {self.task} network and has no priors")
        return generate_priors(self.map_sizes, self.anchors)


Backbone = Callable[[GraphBuilder, int], list[Feature]]


def detector_architecture(name: str, input_shape: tuple[int, int, int], backbone: Backbone,
                          head: HeadGene, num_classes: int, class_channels: int | None = None
                          ) -> Architecture:
    """Attach an SSD / SSDLite ``head`` to any backbone's features and lower the detector."""
    b = GraphBuilder()
    x = b.input((1, *input_shape))
    features = backbone(b, x)
    channels = num_classes + 1 if class_channels is None else class_channels
    boxes, logits, maps = detection_head(b, features, head, channels)
    graph = b.finish((boxes, logits))
    sizes = tuple(graph.shape(m)[2] for m in maps)
    return Architecture(name, DETECTION, graph, num_classes, sizes, head.anchors)


def lower(genome: Genome, num_classes: int = 1, name: str = "genome",
          class_channels: int | None = None) -> Architecture:
    """The genome's detector as a layer graph. ``class_channels`` overrides C + 1."""
    if num_classes < 1:
        raise GenomeError(f"num_classes={num_classes}: a detector needs at least 1 class")
    arch = detector_architecture(name, (genome.input_channels, genome.resolution,
                                        genome.resolution),
                                 lambda b, x: etinynet(b, x, genome), genome.head, num_classes,
                                 class_channels)
    if arch.map_sizes != genome.map_sizes():
        raise AssertionError(f"builder maps {arch.map_sizes} != genome maps {genome.map_sizes()}")
    return arch


def build(genome: Genome, num_classes: int = 1) -> GraphNet:
    """A trainable detector: ``forward(images) -> (boxes (N, P, 4), logits (N, P, C + 1))``."""
    return GraphNet(lower(genome, num_classes))


def with_symmetric_padding(arch: Architecture) -> Architecture:
    """``arch`` with PyTorch's symmetric padding instead of SAME (see
    :func:`estimators.ir.symmetric_padding`): the network as models of spec format 1 were
    trained. Same parameters and shapes; strided convs on even maps read one more zero row and
    column before the map, and their export needs explicit PAD operators."""
    return replace(arch, graph=symmetric_padding(arch.graph))


class PaddedConv2d(nn.Conv2d):
    """A convolution whose zero padding differs before and after (TF SAME on an even map):
    ``pads`` = (left, right, top, bottom), applied by ``F.pad``, then an unpadded conv. The
    parameters are an ``nn.Conv2d``'s, so state dicts do not depend on the padding. In ONNX
    this is a Pad followed by a Conv, which the converter turns into one SAME convolution."""

    def __init__(self, *args: object, pads: tuple[int, int, int, int], **kwargs: object
                 ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.pads = pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))


def _conv_module(op: Op, graph: Graph) -> nn.Conv2d:
    _, c_in, _, _ = graph.in_shape(op)
    c_out = graph.out_shape(op)[1]
    top, bottom, left, right = conv_pads(graph, op)
    if top == bottom == left == right:
        return nn.Conv2d(c_in, c_out, op.kernel, op.stride, top, groups=op.groups,
                         bias=op.bias)
    return PaddedConv2d(c_in, c_out, op.kernel, op.stride, 0, groups=op.groups, bias=op.bias,
                        pads=(left, right, top, bottom))


def _module_for(op: Op, graph: Graph) -> nn.Module | None:
    if op.kind == "conv":
        return _conv_module(op, graph)
    if op.kind == "bn":
        return nn.BatchNorm2d(graph.in_shape(op)[1])
    if op.kind == "linear":
        return nn.Linear(graph.in_shape(op)[1], graph.out_shape(op)[1], bias=op.bias)
    return None


def _attach(root: nn.Module, dotted: str, module: nn.Module) -> None:
    """Place ``module`` at ``a.b.c`` under ``root``, creating ModuleDicts on the way."""
    *parents, leaf = dotted.split(".")
    node = root
    for part in parents:
        if part not in node._modules:
            node.add_module(part, nn.ModuleDict())
        node = node._modules[part]  # type: ignore[assignment]
    node.add_module(leaf, module)


class GraphNet(nn.Module):
    """Runs an :class:`Architecture`'s graph op by op. Detectors also carry their priors."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        self.net = nn.Module()
        ops = arch.graph.ops
        for op in ops:
            module = _module_for(op, arch.graph)
            if module is not None:
                _attach(self.net, op.name, module)
        self._modules_by_op = [self.net.get_submodule(op.name) if op.kind in
                               ("conv", "bn", "linear") else None for op in ops]
        last_use: dict[int, int] = {}
        for i, op in enumerate(ops):
            for t in op.inputs:
                last_use[t] = i
        keep = set(arch.graph.outputs)
        # dict.fromkeys: an op may read one tensor twice (add(x, x)); free it once.
        self._free_after = [[t for t in dict.fromkeys(op.inputs)
                             if last_use[t] == i and t not in keep] for i, op in enumerate(ops)]
        if arch.task == DETECTION:
            self.register_buffer("priors", torch.from_numpy(arch.priors()), persistent=False)

    @property
    def num_classes(self) -> int:
        return self.arch.num_classes

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...] | torch.Tensor:
        env: dict[int, torch.Tensor] = dict(zip(self.arch.graph.inputs, inputs, strict=True))
        for op, module, free in zip(self.arch.graph.ops, self._modules_by_op, self._free_after,
                                    strict=True):
            env[op.output] = _run(op, module, [env[t] for t in op.inputs])
            for t in free:
                del env[t]
        outs = tuple(env[t] for t in self.arch.graph.outputs)
        return outs[0] if len(outs) == 1 else outs

    @torch.no_grad()
    def detect(self, images: np.ndarray, config: PostProcess | None = None
               ) -> list[Detections]:
        """The float model's own post-processing: uint8 RGB images (N, H, W, 3) at the input
        resolution -> one :class:`Detections` per image. Runs in eval mode."""
        if self.arch.task != DETECTION:
            raise ValueError(f"{self.arch.name} is a {self.arch.task} network")
        was_training = self.training
        self.eval()
        try:
            boxes, logits = self(torch.from_numpy(normalise(images, self.arch.input_shape[1])))
        finally:
            self.train(was_training)
        priors = self.priors.numpy()
        return [postprocess(b, c, priors, config or PostProcess())
                for b, c in zip(boxes.numpy(), logits.numpy(), strict=True)]


def _run(op: Op, module: nn.Module | None, xs: list[torch.Tensor]) -> torch.Tensor:
    if module is not None:
        return module(xs[0])
    x = xs[0]
    kind = op.kind
    if kind == "relu":
        return F.relu(x)
    if kind == "relu6":
        return F.relu6(x)
    if kind == "add":
        out = xs[0] + xs[1]
        for extra in xs[2:]:
            out = out + extra
        return out
    if kind == "maxpool":
        return F.max_pool2d(x, op.kernel, op.stride, op.padding, ceil_mode=op.ceil_mode)
    if kind == "gap":
        return F.adaptive_avg_pool2d(x, 1)
    if kind == "concat":
        return torch.cat(xs, dim=op.dims[0])
    if kind == "flatten":
        return torch.flatten(x, 1)
    if kind == "permute":
        return x.permute(*op.dims)
    if kind == "reshape":
        return x.reshape(x.shape[0], *op.dims[1:])
    if kind == "upsample":
        return F.interpolate(x, scale_factor=op.stride, mode="nearest")
    if kind == "pad":
        top, bottom, left, right = op.dims
        return F.pad(x, (left, right, top, bottom))  # F.pad lists the last axis first
    raise ValueError(f"op {op.name}: kind {kind!r} has no torch implementation")


def as_if_trained(net: GraphNet, seed: int = 0) -> GraphNet:
    """Give an untrained network the statistics of a trained one, in place: BatchNorm scale,
    shift, running mean and variance, and conv biases drawn around their usual values.

    For exports without a checkpoint. A fresh BatchNorm folds into all-zero biases, which the
    TFLite converter deduplicates into one buffer: the file would be smaller than the trained
    model's, and every activation range alike. Sizes, arena and latency of the result are
    those of a trained network of this architecture.
    """
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape: torch.Size, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=gen)

    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(uniform(torch.Size([c]), 0.5, 1.5))
                module.bias.copy_(0.1 * torch.randn(c, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                module.running_var.copy_(uniform(torch.Size([c]), 0.5, 2.0))
            elif isinstance(module, nn.Conv2d | nn.Linear) and module.bias is not None:
                module.bias.copy_(0.01 * torch.randn(module.bias.shape, generator=gen))
    return net
