"""Detection datasets on disk -> :class:`DetectionDataset`.

A dataset is a directory with one of these layouts (``SPLIT`` is e.g. ``train`` or ``val``):

* COCO: ``SPLIT.json`` or ``annotations/instances_SPLIT.json``, images under ``SPLIT/``
  (the json's ``file_name`` is relative to it). The demo data uses this layout.
* Pascal VOC: ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/SPLIT.txt``.
* YOLO: ``images/SPLIT/``, ``labels/SPLIT/`` and ``classes.txt`` or ``data.yaml``.

:func:`open_dataset` finds the layout (or takes ``format``), applies the class map and the
broken-entry policy, and refuses a split without images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from objectives.data.classes import read_class_names
from objectives.data.coco import load_coco
from objectives.data.dataset import (
    ON_ERROR,
    BrokenEntryError,
    DatasetError,
    DetectionDataset,
    Problem,
    Record,
    Sample,
)
from objectives.data.voc import load_voc
from objectives.data.yolo import load_yolo

FORMATS = ("coco", "voc", "yolo")

__all__ = ["FORMATS", "ON_ERROR", "BrokenEntryError", "DatasetError", "DetectionDataset",
           "Problem", "Record", "Sample", "detect_format", "has_split", "load_coco", "load_voc",
           "load_yolo", "open_dataset", "read_class_names"]


def _coco_json(root: Path, split: str) -> Path | None:
    for candidate in (root / f"{split}.json", root / "annotations" / f"instances_{split}.json"):
        if candidate.is_file():
            return candidate
    return None


def detect_format(root: str | Path, split: str) -> str:
    """Which layout ``root`` has, judged by the files of ``split``."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "not found"
        raise DatasetError(f"dataset directory '{root}' {what}; give the folder that holds "
                           "the COCO, VOC or YOLO layout")
    if _coco_json(root, split) is not None:
        return "coco"
    if (root / "Annotations").is_dir():
        return "voc"
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return "yolo"
    raise DatasetError(f"{root}: no {split}.json or annotations/instances_{split}.json (COCO), "
                       "Annotations/ (VOC) or images/ + labels/ (YOLO) found")


def has_split(root: str | Path, split: str, format: str | None = None) -> bool:
    """Whether ``root`` holds a split of that name (used to make validation optional)."""
    root = Path(root)
    fmt = format
    if fmt is None:
        try:
            fmt = detect_format(root, split)
        except DatasetError:
            return False
    if fmt == "coco":
        return _coco_json(root, split) is not None
    if fmt == "voc":
        return (root / "ImageSets" / "Main" / f"{split}.txt").is_file()
    return (root / "images" / split).is_dir()


def open_dataset(root: str | Path, split: str, *, format: str | None = None,
                 class_names: Sequence[str] | None = None, on_error: str = "fail"
                 ) -> DetectionDataset:
    """One split of the dataset at ``root``. ``class_names`` is the class map (id = position);
    by default the dataset's own classes. ``on_error``: ``fail`` or ``skip`` broken entries."""
    root = Path(root)
    if on_error not in ON_ERROR:
        raise DatasetError(f"on_error={on_error!r}: valid values are {', '.join(ON_ERROR)}")
    if format is None:
        format = detect_format(root, split)
    if format == "coco":
        path = _coco_json(root, split)
        if path is None:
            raise DatasetError(f"{root}: no {split}.json or annotations/instances_{split}.json")
        dataset = load_coco(path, root / split, class_names, on_error)
    elif format == "voc":
        dataset = load_voc(root, split, class_names, on_error)
    elif format == "yolo":
        dataset = load_yolo(root, split, class_names, on_error)
    else:
        raise DatasetError(f"dataset format {format!r}: valid formats are {', '.join(FORMATS)}")
    if not len(dataset):
        raise DatasetError(f"{dataset.source}: no usable images in split {split!r}")
    return dataset
