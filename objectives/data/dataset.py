"""The internal form every loader produces, and how broken annotations are handled.

A :class:`DetectionDataset` is a list of :class:`Record` (one per image: its file, size and
annotations, boxes as normalised (x1, y1, x2, y2) in [0, 1], labels as 0-based class ids) plus
the class names. Images are decoded only when a sample is asked for
(:meth:`DetectionDataset.sample`), so opening a dataset reads the annotations and image headers,
not the pixels.

Broken entries go through :class:`Problems`: with ``on_error="fail"`` the first one raises a
:class:`DatasetError` naming the file and the entry; with ``"skip"`` the entry (the annotation,
or the whole image when the image itself is at fault) is left out and recorded, and
:meth:`DetectionDataset.warnings` summarises what was skipped.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

ON_ERROR = ("fail", "skip")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Pixel slack before a coordinate counts as outside the image: annotation tools round, and VOC's
# 1-based inclusive corners legitimately reach the width itself.
BOX_TOLERANCE_PX = 1.0

# Kinds of problems (the summary groups by these).
OUTSIDE = "box outside the image"
ZERO_AREA = "zero-area box"
UNKNOWN_CLASS = "unknown class"
MISSING_IMAGE = "missing image"
UNREADABLE = "unreadable file"
MALFORMED = "malformed entry"


class DatasetError(ValueError):
    """A dataset, or one of its entries, that cannot be used; names the file and the entry."""


class BrokenEntryError(DatasetError):
    """One broken entry under ``on_error="fail"`` (skipping it is the alternative)."""


@dataclass(frozen=True)
class Problem:
    kind: str
    file: str
    entry: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.entry}" if self.entry else self.file
        return f"{where}: {self.detail}"


class Problems:
    """Collects broken entries under a policy: ``fail`` raises at the first one."""

    def __init__(self, on_error: str) -> None:
        if on_error not in ON_ERROR:
            raise DatasetError(f"on_error={on_error!r}: valid values are {', '.join(ON_ERROR)}")
        self.on_error = on_error
        self.found: list[Problem] = []

    def report(self, kind: str, file: str | Path, entry: str, detail: str) -> None:
        problem = Problem(kind, str(file), entry, detail)
        if self.on_error == "fail":
            raise BrokenEntryError(f"{problem} ({kind})")
        self.found.append(problem)


def _no_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float32)


def _no_labels() -> np.ndarray:
    return np.zeros(0, np.int64)


@dataclass(frozen=True)
class Record:
    """One image: where it is, its size in pixels and its annotations.

    ``crowd_boxes``/``crowd_labels`` are COCO crowd regions (``iscrowd: 1``): never trained
    on, but given to the evaluator as pycocotools does, so a detection inside a crowd is
    neither a hit nor a false positive."""

    image: Path
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float32, normalised (x1, y1, x2, y2)
    labels: np.ndarray  # (N,) int64, 0-based class ids
    crowd_boxes: np.ndarray = field(default_factory=_no_boxes)
    crowd_labels: np.ndarray = field(default_factory=_no_labels)

    def __post_init__(self) -> None:
        for boxes, labels in (("boxes", "labels"), ("crowd_boxes", "crowd_labels")):
            object.__setattr__(self, boxes,
                               np.asarray(getattr(self, boxes), np.float32).reshape(-1, 4))
            object.__setattr__(self, labels,
                               np.asarray(getattr(self, labels), np.int64).reshape(-1))
            if len(getattr(self, boxes)) != len(getattr(self, labels)):
                raise ValueError(f"{self.image}: {len(getattr(self, boxes))} {boxes} but "
                                 f"{len(getattr(self, labels))} {labels}")


@dataclass(frozen=True)
class Sample:
    """A decoded image (H, W, 3) uint8 RGB with its normalised boxes and labels."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class DetectionDataset:
    records: tuple[Record, ...]
    class_names: tuple[str, ...]
    source: str
    problems: tuple[Problem, ...] = field(default=())
    # Set by a class subset (objectives.data.subset): objects left out, per class name, and
    # images left out (--drop-empty) because no object of the kept classes remained.
    dropped_objects: tuple[tuple[str, int], ...] = field(default=())
    dropped_images: int = 0

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_objects(self) -> int:
        return sum(len(r.labels) for r in self.records)

    def sample(self, index: int) -> Sample:
        record = self.records[index]
        return Sample(read_rgb(record.image), record.boxes, record.labels)

    def warnings(self, limit: int = 3) -> list[str]:
        """A few lines on what was skipped: counts by kind, then the first examples."""
        if not self.problems:
            return []
        counts = Counter(p.kind for p in self.problems)
        kinds = ", ".join(f"{n} {kind}" for kind, n in counts.most_common())
        lines = [f"{self.source}: skipped {len(self.problems)} broken entries ({kinds})"]
        lines += [f"  {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return lines


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to uint8 RGB (H, W, 3)."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found ({MISSING_IMAGE})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot decode image: {exc} ({UNREADABLE})") from None


def image_size(path: Path, problems: Problems, entry: str) -> tuple[int, int] | None:
    """(width, height) from the image's header, or None (reported) if it cannot be read."""
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        problems.report(MISSING_IMAGE, path, entry, "image file not found")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        problems.report(UNREADABLE, path, entry, f"not a readable image ({exc})")
    return None


def check_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int,
              problems: Problems, file: str | Path, entry: str) -> np.ndarray | None:
    """A pixel box (continuous corners) -> normalised (x1, y1, x2, y2), or None (reported).

    Corners up to ``BOX_TOLERANCE_PX`` outside the image are clipped; further out, the box is
    reported as outside (its coordinates are probably in another convention or image).
    """
    coords = (x1, y1, x2, y2)
    shown = "[" + ", ".join(f"{c:g}" for c in coords) + "]"
    if not all(math.isfinite(c) for c in coords):
        problems.report(MALFORMED, file, entry, f"box {shown} has non-finite coordinates")
        return None
    if x2 <= x1 or y2 <= y1:
        problems.report(ZERO_AREA, file, entry, f"box {shown} (x1, y1, x2, y2) has zero or "
                        "negative width or height")
        return None
    tol = BOX_TOLERANCE_PX
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        problems.report(OUTSIDE, file, entry, f"box {shown} (x1, y1, x2, y2) lies outside "
                        f"the {width}x{height} image")
        return None
    box = np.array([max(x1, 0.0) / width, max(y1, 0.0) / height,
                    min(x2, width) / width, min(y2, height) / height], dtype=np.float32)
    if box[2] <= box[0] or box[3] <= box[1]:
        problems.report(ZERO_AREA, file, entry, f"box {shown} has zero area inside the "
                        f"{width}x{height} image")
        return None
    return box


def make_record(image: Path, width: int, height: int, boxes: list[np.ndarray],
                labels: list[int], crowd_boxes: list[np.ndarray] | None = None,
                crowd_labels: list[int] | None = None) -> Record:
    return Record(image, width, height,
                  np.stack(boxes) if boxes else _no_boxes(),
                  np.asarray(labels, dtype=np.int64),
                  np.stack(crowd_boxes) if crowd_boxes else _no_boxes(),
                  np.asarray(crowd_labels or [], dtype=np.int64))
