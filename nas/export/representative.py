"""The representative images of the int8 conversion: they set the quantisation ranges
(TFLiteConverter's ``representative_dataset``, "calibration" in the ``--calib`` option) and
check parity. Not to be confused with ``nas.calibrate``, which fits latency to board runs.

From a folder of the user's images (``--calib DIR``: jpg/png/bmp, any size, resized to the
model's input), or, without one, synthetic scenes: smooth colour gradients, textured noise and
filled shapes at many scales. Those exercise the activation ranges the way photos do (edges,
flat regions, saturated colours) where uniform noise would not; the data issue's demo set
replaces them as the default once it exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_COUNT = 32


class CalibrationError(ValueError):
    """The calibration folder cannot be used (one line, names the folder)."""


def from_folder(folder: Path, size: int, count: int = DEFAULT_COUNT) -> np.ndarray:
    """Up to ``count`` images of ``folder`` (sorted, recursive), RGB, resized to size x size."""
    if not folder.is_dir():
        raise CalibrationError(f"--calib '{folder}' is not a directory of images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationError(f"--calib '{folder}' holds no {'/'.join(IMAGE_SUFFIXES)} "
                               "images")
    return from_files(files, size, count)


def from_files(files: Sequence[Path], size: int, count: int = DEFAULT_COUNT) -> np.ndarray:
    """Up to ``count`` of ``files``, evenly spread over the list, RGB, size x size."""
    picked = [files[round(i)] for i in np.linspace(0, len(files) - 1, min(count, len(files)))]
    return np.stack([_load(p, size) for p in picked])


def _load(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
    except OSError as exc:
        raise CalibrationError(f"calibration image '{path}' cannot be read: {exc}") from None


def synthetic(size: int, count: int = DEFAULT_COUNT, seed: int = 0) -> np.ndarray:
    """``count`` deterministic synthetic scenes, uint8 (count, size, size, 3)."""
    rng = np.random.default_rng(seed)
    return np.stack([_scene(rng, size) for _ in range(count)])


def _scene(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    corners = rng.uniform(0, 255, (4, 3))
    base = (corners[0] * (1 - xx[..., None]) * (1 - yy[..., None])
            + corners[1] * xx[..., None] * (1 - yy[..., None])
            + corners[2] * (1 - xx[..., None]) * yy[..., None]
            + corners[3] * xx[..., None] * yy[..., None])
    base += rng.normal(0, rng.uniform(3, 25), (size, size, 1))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(3, 12)):
        side = size * rng.uniform(0.04, 0.6)
        x0, y0 = rng.uniform(-side / 2, size - side / 2, 2)
        box = [x0, y0, x0 + side * rng.uniform(0.5, 1.5), y0 + side]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return np.asarray(img)
