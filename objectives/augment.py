"""Box-aware augmentation and the resize to the model's input, in one resampling step.

Zoom-out ("expand": the image placed at random on a larger canvas) and random crop both amount
to choosing a window over the image, in the image's normalised coordinates (a window larger
than [0, 1] is an expansion). :func:`render` resamples the window straight to the model's
square input, so an expanded image is never materialised at full size, and training and
evaluation resize through the same code (evaluation's window is the whole image). Boxes go
through the same window; photometric changes and the flip come after, on the small image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

from objectives.data.dataset import Sample
from search_space.detection import iou_matrix

Window = tuple[float, float, float, float]
FULL: Window = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges. The defaults are the ``flip`` preset: only the horizontal
    flip is on. The SSD augmentations (``ssd`` preset: photometric, zoom-out up to 2x, random
    crop) are for long schedules; over the minutes-long default schedule they cost AP on the
    demo data (see ``AUGMENT_PRESETS``)."""

    flip_prob: float = 0.5
    expand_prob: float = 0.0
    max_expand: float = 2.0
    crop_prob: float = 0.0
    crop_min_scale: float = 0.3
    # A crop must overlap at least one object by one of these IoUs (0: any crop holding an
    # object's centre), chosen at random per image.
    crop_min_ious: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7)
    photometric_prob: float = 0.0
    brightness: tuple[float, float] = (0.75, 1.25)
    contrast: tuple[float, float] = (0.6, 1.4)
    saturation: tuple[float, float] = (0.6, 1.4)

    def __post_init__(self) -> None:
        for name in ("flip_prob", "expand_prob", "crop_prob", "photometric_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"augment {name}={value}: must be in [0, 1]")
        if self.max_expand < 1.0 or not 0.0 < self.crop_min_scale <= 1.0:
            raise ValueError("augment: max_expand must be >= 1 and crop_min_scale in (0, 1]")
        for name in ("crop_min_ious", "brightness", "contrast", "saturation"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
                      if k in known})


NO_AUGMENT = AugmentConfig(flip_prob=0.0)
# SSD's recipe, with zoom-out up to 2x rather than 4x (the demo's objects are small already).
SSD_AUGMENT = AugmentConfig(expand_prob=0.5, crop_prob=0.6, photometric_prob=0.8)
# Measured on the demo data (etn-w0.35-ssdlite at 128, 12 epochs, batch 16, AdamW 1e-2), val
# AP50: flip 56.6, none 53.5, flip + mild photometric 52.3, flip + mild crop / zoom-out 42.7;
# the full SSD set at 6 epochs 0.4 (flip + photometric 14.8, none 33.2).
AUGMENT_PRESETS = {"flip": AugmentConfig(), "none": NO_AUGMENT, "ssd": SSD_AUGMENT}


def render(image: np.ndarray, window: Window, size: int) -> Image.Image:
    """The ``window`` of ``image`` (normalised corners, may extend past [0, 1]) resampled to
    ``size`` x ``size``; the part outside the image is the image's mean colour."""
    pil = Image.fromarray(image)
    if window == FULL:
        return pil.resize((size, size), Image.BILINEAR)
    height, width = image.shape[:2]
    wx1, wy1, wx2, wy2 = window
    ix1, iy1, ix2, iy2 = max(wx1, 0.0), max(wy1, 0.0), min(wx2, 1.0), min(wy2, 1.0)
    sx, sy = size / (wx2 - wx1), size / (wy2 - wy1)
    dx1, dy1 = round((ix1 - wx1) * sx), round((iy1 - wy1) * sy)
    dx2, dy2 = round((ix2 - wx1) * sx), round((iy2 - wy1) * sy)
    if (dx1, dy1, dx2, dy2) == (0, 0, size, size):
        return pil.resize((size, size), Image.BILINEAR,
                          box=(ix1 * width, iy1 * height, ix2 * width, iy2 * height))
    # The mean colour of a sparse grid of pixels: as good a fill, at a fraction of the cost.
    fill = tuple(int(c) for c in image[::4, ::4].reshape(-1, 3).mean(axis=0))
    canvas = Image.new("RGB", (size, size), fill)
    if dx2 > dx1 and dy2 > dy1:
        patch = pil.resize((dx2 - dx1, dy2 - dy1), Image.BILINEAR,
                           box=(ix1 * width, iy1 * height, ix2 * width, iy2 * height))
        canvas.paste(patch, (dx1, dy1))
    return canvas


def window_boxes(boxes: np.ndarray, labels: np.ndarray, window: Window
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes in the window's coordinates: those whose centre lies inside, clipped to it."""
    wx1, wy1, wx2, wy2 = window
    if window == FULL or not len(boxes):
        return boxes, labels
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = ((centre[:, 0] > wx1) & (centre[:, 0] < wx2)
              & (centre[:, 1] > wy1) & (centre[:, 1] < wy2))
    scale = np.array([wx2 - wx1, wy2 - wy1] * 2, dtype=np.float32)
    moved = (boxes[inside] - np.array([wx1, wy1, wx1, wy1], dtype=np.float32)) / scale
    moved = np.clip(moved, 0.0, 1.0)
    keep = (moved[:, 2] > moved[:, 0]) & (moved[:, 3] > moved[:, 1])
    return moved[keep].astype(np.float32), labels[inside][keep]


def random_window(boxes: np.ndarray, rng: np.random.Generator, config: AugmentConfig
                  ) -> Window:
    """Expand (zoom out), then crop a window that keeps at least one object."""
    window = FULL
    if config.max_expand > 1.0 and rng.random() < config.expand_prob:
        ratio = rng.uniform(1.0, config.max_expand)
        ox, oy = rng.uniform(0.0, ratio - 1.0, 2)
        window = (-ox, -oy, ratio - ox, ratio - oy)
    if len(boxes) and rng.random() < config.crop_prob:
        window = _crop(window, boxes, rng, config)
    return tuple(float(v) for v in window)  # type: ignore[return-value]


def _crop(window: Window, boxes: np.ndarray, rng: np.random.Generator,
          config: AugmentConfig, trials: int = 40) -> Window:
    """The first of ``trials`` random sub-windows (scale, aspect 1:2..2:1) that holds an
    object's centre and overlaps some object by the IoU drawn; all drawn at once."""
    min_iou = config.crop_min_ious[int(rng.integers(len(config.crop_min_ious)))]
    wx1, wy1, wx2, wy2 = window
    ww, wh = wx2 - wx1, wy2 - wy1
    w, h = rng.uniform(config.crop_min_scale, 1.0, (2, trials))
    x, y = rng.uniform(0.0, 1.0, (2, trials)) * (1.0 - np.stack([w, h]))
    crops = np.stack([wx1 + x * ww, wy1 + y * wh, wx1 + (x + w) * ww, wy1 + (y + h) * wh],
                     axis=1).astype(np.float32)
    aspect = (w * ww) / (h * wh)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = ((centre[None, :, 0] > crops[:, None, 0]) & (centre[None, :, 0] < crops[:, None, 2])
              & (centre[None, :, 1] > crops[:, None, 1])
              & (centre[None, :, 1] < crops[:, None, 3]))
    ok = (aspect >= 0.5) & (aspect <= 2.0) & inside.any(axis=1)
    if min_iou > 0:
        ok &= (iou_matrix(crops, boxes) * inside).max(axis=1) >= min_iou
    if not ok.any():
        return window
    return tuple(crops[int(ok.argmax())].tolist())  # type: ignore[return-value]


def _photometric(image: Image.Image, rng: np.random.Generator, config: AugmentConfig
                 ) -> Image.Image:
    # Pillow's enhancers run in C; order varies so no fixed composition is learnt.
    ops = [(ImageEnhance.Brightness, config.brightness), (ImageEnhance.Contrast, config.contrast),
           (ImageEnhance.Color, config.saturation)]
    for k in rng.permutation(len(ops)):
        enhancer, (lo, hi) = ops[k]
        image = enhancer(image).enhance(rng.uniform(lo, hi))
    return image


def augment(sample: Sample, size: int, rng: np.random.Generator, config: AugmentConfig
            ) -> Sample:
    """A training sample at the model's input size, with its boxes moved along."""
    window = random_window(sample.boxes, rng, config)
    boxes, labels = window_boxes(sample.boxes, sample.labels, window)
    image = render(sample.image, window, size)
    if rng.random() < config.photometric_prob:
        image = _photometric(image, rng, config)
    if rng.random() < config.flip_prob:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        boxes = np.stack([1 - boxes[:, 2], boxes[:, 1], 1 - boxes[:, 0], boxes[:, 3]], axis=1) \
            if len(boxes) else boxes
    return Sample(np.asarray(image), boxes.astype(np.float32), labels)


def resize(sample: Sample, size: int) -> Sample:
    """Evaluation's transform: the whole image to ``size`` x ``size`` (boxes are normalised,
    so they do not change)."""
    return Sample(np.asarray(render(sample.image, FULL, size)), sample.boxes, sample.labels)
