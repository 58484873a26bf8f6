"""Backbones. Each takes the input tensor and returns the :class:`Feature` maps a head may use."""

from __future__ import annotations

from estimators.ir import GraphBuilder
from search_space.genome import STAGE_STRIDES, Genome
from search_space.layers import Feature, conv_bn, etinynet_block


def etinynet(b: GraphBuilder, x: int, genome: Genome) -> list[Feature]:
    """EtinyNet with per-stage width, depth, block type and kernel; returns the genome's taps.

    Stem: 3x3 conv s2 + 2x2 max-pool s2 to the stage-1 width. Stages 2-4 open with a stride-2
    block; the last block of stage 4 widens to 512 * width (the backbone output).
    """
    channels = genome.stage_channels()
    taps = set(genome.taps)
    features: list[Feature] = []
    with b.scope("backbone"):
        y = conv_bn(b, x, channels[0], 3, 2, name="stem")
        y = b.maxpool(y, 2, 2, name="stem_pool")
        for s, (stage, out) in enumerate(zip(genome.stages, channels), start=1):
            for i in range(1, stage.depth + 1):
                stride = 2 if s > 1 and i == 1 else 1
                width = genome.last_channels() if (s, i) == (4, stage.depth) else out
                y = etinynet_block(b, y, stage.block, width, stride, stage.kernel, f"s{s}.b{i}")
                if (s, i) in taps:
                    features.append(Feature(y, width, STAGE_STRIDES[s - 1]))
    return features
