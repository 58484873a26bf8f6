"""Shared fixtures of the ``nas`` tests: a tiny full-int8 export of a PyTorch detector.

``tiny_int8_export`` converts a small genome with the export's converter (PyTorch -> ONNX ->
onnx2tf -> full-int8 TFLite, nothing downloaded), so the host ``Detector`` can be checked
against the float model it came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.export.convert import convert, output_names
from nas.export.files import LAYOUT, genome_json
from search_space.detection import normalise
from search_space.genome import AnchorGene, Genome, HeadGene, StageGene
from search_space.model import GraphNet
from search_space.spec import ModelSpec

# Two classes: logits (1, P, 3) and boxes (1, P, 4) differ in shape, so the Detector can check
# the output names against the shapes.
TINY_CLASSES = ("person", "car")
CALIBRATION_IMAGES = 8


def scene_images(n: int, size: int = 96, seed: int = 0) -> np.ndarray:
    """uint8 RGB (n, size, size, 3): blocky colour fields with a few flat rectangles and
    noise, closer to photographs than white noise (which makes every activation alike)."""
    rng = np.random.default_rng(seed)
    cells = 6
    low = rng.uniform(0, 255, (n, cells, cells, 3))
    reps = -(-size // cells)
    images = np.repeat(np.repeat(low, reps, 1), reps, 2)[:, :size, :size].copy()
    for img in images:
        for _ in range(3):
            x0, y0 = rng.integers(0, size * 3 // 4, 2)
            w, h = rng.integers(size // 10, size * 2 // 5, 2)
            img[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 255, 3)
    images += rng.normal(0, 8, images.shape)
    return np.clip(images, 0, 255).astype(np.uint8)


def tiny_genome() -> Genome:
    """Resolution 96, the smallest widths, one block per stage: about 32k parameters."""
    stages = (StageGene(0.25, 1, "lb", 3), StageGene(0.25, 1, "dlb", 3),
              StageGene(0.25, 1, "dlb_skip", 3), StageGene(0.25, 1, "lb", 3))
    anchors = (AnchorGene(0.2, 0.5, (2.0,)), AnchorGene(0.5, 0.8, ()),
               AnchorGene(0.8, 1.0, (2.0,)))
    return Genome(96, stages, ((3, 1), (4, 1)), HeadGene("ssdlite", (64,), anchors),
                  channel_divisor=8)


@pytest.fixture(scope="session")
def tiny_spec() -> ModelSpec:
    return ModelSpec(len(TINY_CLASSES), genome=tiny_genome(), name="tiny")


@pytest.fixture(scope="session")
def make_scenes() -> Callable[..., np.ndarray]:
    return scene_images


def _untrained_but_lively(net: GraphNet, images: np.ndarray) -> None:
    """Random weights, with BN statistics taken from real inputs and random affine terms, so
    every layer's activations are O(1) and depend on the image: freshly initialised running
    stats (mean 0, var 1) would let activations grow or die layer by layer."""
    torch.manual_seed(1)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the batches below
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(normalise(images)))
    net.eval()


@pytest.fixture(scope="session")
def tiny_int8_export(tmp_path_factory: pytest.TempPathFactory,
                     tiny_spec: ModelSpec) -> tuple[Path, GraphNet]:
    """(export dir holding model_int8.tflite and genome.json, the float GraphNet in eval
    mode). About 10 s, once per session."""
    torch.manual_seed(0)
    net = tiny_spec.build()
    size = net.arch.input_size
    _untrained_but_lively(net, scene_images(32, size, seed=1))
    work = tmp_path_factory.mktemp("tiny_int8_work")
    converted = convert(net, scene_images(CALIBRATION_IMAGES, size, seed=2), work)
    out = tmp_path_factory.mktemp("tiny_int8_export")
    (out / LAYOUT.model).write_bytes(converted.tflite)
    genome = genome_json(tiny_spec, TINY_CLASSES, output_names(net))
    (out / LAYOUT.genome).write_text(json.dumps(genome, indent=2) + "\n")
    return out, net


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``tinynas ARGV`` run in-process: (exit code, stdout, stderr). argparse's own errors
    exit through SystemExit; their code is returned like any other."""
    from nas.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
