"""Shared fixtures: a small demo dataset on disk and a tiny detector that trains in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from objectives.data.demo import DemoConfig, write_demo
from search_space.baselines import seed_genome
from search_space.genome import genome_at_resolution
from search_space.spec import ModelSpec

TINY_DEMO = DemoConfig(num_train=16, num_val=8, image_size=128, seed=3)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from a second thread, and on a busy 2-core box two OpenMP
    threads run several times slower than one (see objectives.train.default_threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo(tmp_path_factory.mktemp("demo") / "shapes", TINY_DEMO)


@pytest.fixture(scope="session")
def tiny_spec() -> ModelSpec:
    """The seed EtinyNet-0.35 + SSDLite at 96 px for the demo's 3 classes."""
    return ModelSpec(3, genome=genome_at_resolution(seed_genome(0.35), 96), name="tiny")


def _write_image(path: Path, width: int, height: int,
                 colour: tuple[int, int, int] = (90, 90, 90)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), colour, np.uint8)).save(path)
    return path


@pytest.fixture
def write_image():
    """``write_image(path, width, height)``: a plain image file (directories created)."""
    return _write_image
