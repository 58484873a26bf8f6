"""The built-in demo dataset: coloured shapes on cluttered, textured backgrounds, drawn from a
seed (no downloads) and written to disk in COCO format, so training reads it through the same
loader as any user dataset.

What makes it a detection problem that architectures can be ranked on:

* three classes that differ in shape only (``circle``, ``square``, ``triangle``): colours and
  fill textures are drawn independently of the class;
* 2-7 objects per image, sides from 5% to 45% of the image (13-115 px at 256), log-uniform so
  that small objects are common: they need resolution and small priors;
* backgrounds with smooth colour fields, noise or stripes, and distractors (lines, elongated
  ellipses, irregular blobs, dots) that look like nothing of the three classes;
* partial occlusion: objects may overlap earlier ones (up to 40% of their box) and lines or
  blobs are drawn over some objects.

Every image is drawn from its own generator seeded by (seed, split, index), so the data is the
same byte for byte for a seed whatever the order or process it is drawn in.
"""

from __future__ import annotations

import colorsys
import json
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from artefacts.atomic import staged_dir
from objectives.data.dataset import DatasetError

DEMO_CLASSES = ("circle", "square", "triangle")
# Part of the cache key: bump it whenever the drawing changes, so stale caches are not reused.
GENERATOR_VERSION = 1
_SPLIT_CODES = {"train": 0, "val": 1}
JPEG_QUALITY = 92


@dataclass(frozen=True)
class DemoConfig:
    num_train: int = 1500
    num_val: int = 300
    image_size: int = 256
    seed: int = 0
    min_objects: int = 2
    max_objects: int = 7
    # Object extent (the larger side of its box) as a fraction of the image side.
    min_scale: float = 0.05
    max_scale: float = 0.45

    def __post_init__(self) -> None:
        if self.num_train < 1 or self.num_val < 1:
            raise DatasetError(f"demo data needs at least one train and one val image "
                               f"(got {self.num_train}, {self.num_val})")
        if not 64 <= self.image_size <= 1024:
            raise DatasetError(f"demo image_size={self.image_size}: must be in [64, 1024]")


DEMO_SIZES = {
    "small": DemoConfig(num_train=48, num_val=16, image_size=160),
    "default": DemoConfig(),
}


@dataclass(frozen=True)
class _Object:
    label: int
    polygon: list[tuple[float, float]] | None  # None: a circle
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


def _colour(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]
            ) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))
    return np.array([r, g, b], dtype=np.float32) * 255


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth two-colour field + noise or stripes, float32 planar (3, size, size): numpy is
    several times faster broadcasting over a leading axis of 3 than a trailing one."""
    grid = rng.integers(2, 7)
    coarse = Image.fromarray((rng.random((grid, grid)) * 255).astype(np.uint8))
    t = np.asarray(coarse.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255
    a, b = _colour(rng, (0.05, 0.6), (0.25, 0.9)), _colour(rng, (0.05, 0.6), (0.25, 0.9))
    image = a[:, None, None] + (b - a)[:, None, None] * t
    style = rng.integers(3)
    if style == 1:  # stripes at a random angle: sin(u x + v y) from two 1-D waves
        angle, period = rng.uniform(0, math.pi), rng.uniform(4, 16)
        axis = np.arange(size, dtype=np.float32) * (2 * math.pi / period)
        u, v = axis * math.cos(angle), axis * math.sin(angle)
        wave = np.outer(np.cos(v), np.sin(u)) + np.outer(np.sin(v), np.cos(u))
        image += wave * rng.uniform(8, 25)
    elif style == 2:  # blotchy noise at a coarser grain
        grain = Image.fromarray((rng.random((size // 4, size // 4)) * 255).astype(np.uint8))
        blot = np.asarray(grain.resize((size, size), Image.BILINEAR), dtype=np.float32) - 127.5
        image += blot * rng.uniform(0.15, 0.35)
    image += rng.standard_normal((size, size), dtype=np.float32) * rng.uniform(3, 12)
    return image


def _blob(rng: np.random.Generator, cx: float, cy: float, radius: float
          ) -> list[tuple[float, float]]:
    n = int(rng.integers(6, 10))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = radius * rng.uniform(0.45, 1.0, n)
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a, r in zip(angles, radii,
                                                                          strict=True)]


def _distractor(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int,
                max_extent: float) -> None:
    """Something that is none of the classes: a line, an elongated ellipse, a blob or dots."""
    colour = tuple(int(c) for c in _colour(rng, (0.0, 1.0), (0.2, 1.0)))
    kind = rng.integers(4)
    cx, cy = rng.uniform(0, size, 2)
    extent = size * rng.uniform(0.04, max_extent)
    if kind == 0:
        angle = rng.uniform(0, math.pi)
        dx, dy = extent * math.cos(angle), extent * math.sin(angle)
        draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=colour,
                  width=int(rng.integers(1, 4)))
    elif kind == 1:
        # At least 1.8:1, so that it does not pass for a circle.
        rx, ry = extent / 2, extent / 2 / rng.uniform(1.8, 4.0)
        if rng.random() < 0.5:
            rx, ry = ry, rx
        box = [cx - rx, cy - ry, cx + rx, cy + ry]
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.ellipse(box, outline=colour, width=int(rng.integers(1, 3)))
    elif kind == 2:
        draw.polygon(_blob(rng, cx, cy, extent / 2), fill=colour)
    else:
        for _ in range(int(rng.integers(3, 9))):
            x, y = rng.uniform(0, size, 2)
            r = rng.uniform(1, 3)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)


def _shape(rng: np.random.Generator, label: int, extent: float, cx: float, cy: float
           ) -> _Object:
    """One object of class ``label`` whose box's larger side is ``extent``, centred at
    (cx, cy)."""
    if label == 0:
        r = extent / 2
        return _Object(0, None, (cx - r, cy - r, cx + r, cy + r))
    angle = rng.uniform(0, 2 * math.pi)
    corners = 4 if label == 1 else 3
    unit = [(math.cos(angle + 2 * math.pi * k / corners),
             math.sin(angle + 2 * math.pi * k / corners)) for k in range(corners)]
    xs, ys = [u[0] for u in unit], [u[1] for u in unit]
    span = max(max(xs) - min(xs), max(ys) - min(ys))
    scale = extent / span
    ox, oy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    polygon = [(cx + (x - ox) * scale, cy + (y - oy) * scale) for x, y in unit]
    px, py = [p[0] for p in polygon], [p[1] for p in polygon]
    return _Object(label, polygon, (min(px), min(py), max(px), max(py)))


def _overlap_ok(box: tuple[float, ...], placed: list[tuple[float, ...]]) -> bool:
    """The new box may hide at most 40% of an earlier one and overlap it by IoU <= 0.3."""
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1)
    for a1, b1, a2, b2 in placed:
        inter = max(0.0, min(x2, a2) - max(x1, a1)) * max(0.0, min(y2, b2) - max(y1, b1))
        other = (a2 - a1) * (b2 - b1)
        if inter > 0.4 * other or inter > 0.3 * (area + other - inter):
            return False
    return True


def _paint(image: np.ndarray, obj: _Object, rng: np.random.Generator) -> None:
    """Fill the object with a solid colour, stripes or speckle, through its mask."""
    x1, y1, x2, y2 = obj.box
    left, top = math.floor(x1), math.floor(y1)
    w, h = math.ceil(x2) - left + 1, math.ceil(y2) - top + 1
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    if obj.polygon is None:
        draw.ellipse([x1 - left, y1 - top, x2 - left, y2 - top], fill=255)
    else:
        draw.polygon([(x - left, y - top) for x, y in obj.polygon], fill=255)
    alpha = np.asarray(mask, dtype=np.float32) / 255
    colour = _colour(rng, (0.45, 1.0), (0.45, 1.0))
    fill = np.broadcast_to(colour[:, None, None], (3, h, w)).astype(np.float32)
    style = rng.integers(4)
    if style == 1:  # two-tone stripes
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        angle, period = rng.uniform(0, math.pi), rng.uniform(3, 9)
        on = np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period) > 0
        fill = np.where(on, fill, fill * rng.uniform(0.45, 0.75))
    elif style == 2:  # speckle
        fill = fill + rng.standard_normal((h, w), dtype=np.float32) * 28
    elif style == 3:  # shading across the object
        fill = fill * np.linspace(rng.uniform(0.6, 0.9), rng.uniform(1.0, 1.25), w,
                                  dtype=np.float32)
    region = image[:, top:top + h, left:left + w]
    rh, rw = region.shape[1:]
    a = alpha[:rh, :rw]
    region[...] = region * (1 - a) + fill[:, :rh, :rw] * a
    if rng.random() < 0.3:  # a darker outline on some objects
        edge = np.asarray(mask.filter(ImageFilter.FIND_EDGES), dtype=np.float32) / 255
        region *= 1 - 0.6 * edge[:rh, :rw]


def _to_pil(planar: np.ndarray) -> Image.Image:
    # Channel by channel: a transposed array would go through a slow strided copy.
    planes = np.clip(planar, 0, 255).astype(np.uint8)
    return Image.merge("RGB", [Image.fromarray(p) for p in planes])


def _to_planar(image: Image.Image) -> np.ndarray:
    return np.stack([np.asarray(p, dtype=np.float32) for p in image.split()])


def draw_image(rng: np.random.Generator, config: DemoConfig
               ) -> tuple[np.ndarray, list[_Object]]:
    """One demo image (uint8 RGB) and its objects."""
    size = config.image_size
    image = _background(rng, size)
    clutter = _to_pil(image)
    draw = ImageDraw.Draw(clutter)
    for _ in range(int(rng.integers(4, 13))):
        _distractor(draw, rng, size, 0.3)
    image = _to_planar(clutter)

    objects: list[_Object] = []
    log_lo, log_hi = math.log(config.min_scale), math.log(config.max_scale)
    for _ in range(int(rng.integers(config.min_objects, config.max_objects + 1))):
        label = int(rng.integers(len(DEMO_CLASSES)))
        extent = size * math.exp(rng.uniform(log_lo, log_hi))
        for _try in range(30):
            obj = _shape(rng, label, extent, *rng.uniform(extent / 2, size - extent / 2, 2))
            x1, y1, x2, y2 = obj.box
            if x1 >= 0 and y1 >= 0 and x2 <= size and y2 <= size \
                    and _overlap_ok(obj.box, [o.box for o in objects]):
                _paint(image, obj, rng)
                objects.append(obj)
                break

    result = _to_pil(image)
    if rng.random() < 0.6:  # occluders over some objects: thin lines and small blobs
        draw = ImageDraw.Draw(result)
        for _ in range(int(rng.integers(1, 4))):
            _distractor(draw, rng, size, 0.12)
    if rng.random() < 0.3:
        result = result.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    return np.asarray(result), objects


def _draw_files(folder: Path, split: str, indices: range, config: DemoConfig
                ) -> list[list[_Object]]:
    objects = []
    for index in indices:
        rng = np.random.default_rng([config.seed, _SPLIT_CODES[split], index])
        pixels, objs = draw_image(rng, config)
        Image.fromarray(pixels).save(folder / f"{index:05d}.jpg", quality=JPEG_QUALITY)
        objects.append(objs)
    return objects


def _draw_all(folder: Path, split: str, count: int, config: DemoConfig
              ) -> list[list[_Object]]:
    """Draw in two processes when there is enough to draw: images are independent."""
    workers = min(2, os.cpu_count() or 1)
    if count < 64 or workers < 2:
        return _draw_files(folder, split, range(count), config)
    chunks = [range(start, min(start + 64, count)) for start in range(0, count, 64)]
    # fork: the children only run numpy and Pillow, and start in milliseconds.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        parts = pool.map(_draw_files, [folder] * len(chunks), [split] * len(chunks), chunks,
                         [config] * len(chunks))
        return [objs for part in parts for objs in part]


def _split(out: Path, split: str, count: int, config: DemoConfig) -> None:
    folder = out / split
    folder.mkdir(parents=True)
    images, annotations = [], []
    for index, objects in enumerate(_draw_all(folder, split, count, config)):
        image_id = index + 1
        images.append({"id": image_id, "file_name": f"{index:05d}.jpg",
                       "width": config.image_size, "height": config.image_size})
        for obj in objects:
            x1, y1, x2, y2 = obj.box
            w, h = x2 - x1, y2 - y1
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": obj.label + 1,
                                "bbox": [round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)],
                                "area": round(w * h, 2), "iscrowd": 0})
    data = {
        "info": {"description": "tinynas demo shapes", "generator_version": GENERATOR_VERSION,
                 "seed": config.seed, "split": split},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n, "supercategory": "shape"}
                       for i, n in enumerate(DEMO_CLASSES)],
    }
    (out / f"{split}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def write_demo(out: str | Path, config: DemoConfig = DEMO_SIZES["default"]) -> Path:
    """Write the demo dataset to ``out`` (COCO layout: train.json, train/, val.json, val/).

    Drawn into a hidden directory next to ``out``, fsynced and renamed into place
    (:func:`artefacts.atomic.staged_dir`), so ``out`` is either absent or complete. ``out``
    must not exist or be an empty directory."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"'{out}' already exists and is not an empty directory")
    # FileExistsError (an OSError) if another process put ``out`` in place meanwhile.
    with staged_dir(out) as stage:
        _split(stage, "train", config.num_train, config)
        _split(stage, "val", config.num_val, config)
    return out


def cache_dir() -> Path:
    """Where generated data is kept: ``$TINYNAS_CACHE``, else ``$XDG_CACHE_HOME/tinynas``,
    else ``~/.cache/tinynas``."""
    if os.environ.get("TINYNAS_CACHE"):
        return Path(os.environ["TINYNAS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinynas"


def demo_dataset(size: str = "default", seed: int = 0) -> Path:
    """The demo dataset's directory in the cache, drawn on first use."""
    if size not in DEMO_SIZES:
        raise DatasetError(f"demo size {size!r}: valid sizes are {', '.join(DEMO_SIZES)}")
    config = DemoConfig(**{**DEMO_SIZES[size].__dict__, "seed": seed})
    path = cache_dir() / f"demo-v{GENERATOR_VERSION}-{size}-seed{seed}"
    if (path / "val.json").is_file():
        return path
    try:
        write_demo(path, config)
    except DatasetError:
        # Another process finished drawing it first (same seed: the same bytes).
        if not (path / "val.json").is_file():
            raise
    except OSError:
        if not (path / "val.json").is_file():
            raise
    return path
