"""Detection datasets on disk -> :class:`DetectionDataset`.

A dataset is a directory with one of these layouts (``SPLIT`` is e.g. ``train`` or ``val``;
``val`` and ``valid`` name the same split):

* COCO: ``SPLIT.json`` or ``annotations/instances_SPLIT.json`` with images under ``SPLIT/``;
  COCO 2017's ``annotations/instances_SPLIT2017.json`` with ``SPLIT2017/``; Roboflow's
  ``SPLIT/_annotations.coco.json`` with the images beside it. The json's ``file_name`` is
  relative to the image folder. The demo data uses the first layout.
* Pascal VOC: ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/SPLIT.txt``.
* YOLO: a ``data.yaml`` (Ultralytics, Roboflow), ``images/SPLIT/`` + ``labels/SPLIT/``, or
  ``SPLIT/images/`` + ``SPLIT/labels/`` (see :mod:`objectives.data.yolo`).

:func:`open_dataset` finds the layout (or takes ``format``), applies the class map or class
subset and the broken-entry policy, and refuses a split without images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from objectives.data.classes import class_list_argument, read_class_names
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
from objectives.data.subset import select_classes, subset_summary, without_empty
from objectives.data.voc import load_voc
from objectives.data.yolo import is_yolo, load_yolo, split_names, yolo_layout

FORMATS = ("coco", "voc", "yolo")

__all__ = ["FORMATS", "ON_ERROR", "BrokenEntryError", "DatasetError", "DetectionDataset",
           "Problem", "Record", "Sample", "class_list_argument", "coco_files", "detect_format",
           "has_split", "list_splits", "load_coco", "load_voc", "load_yolo", "open_dataset",
           "read_class_names", "select_classes", "subset_summary"]


def _coco_candidates(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(annotation json, image folder) pairs a COCO split may be stored as."""
    pairs = []
    for name in split_names(split):
        pairs += [(root / f"{name}.json", root / name),
                  (root / "annotations" / f"instances_{name}.json", root / name),
                  (root / "annotations" / f"instances_{name}2017.json", root / f"{name}2017"),
                  (root / name / "_annotations.coco.json", root / name)]
    return pairs


def coco_files(root: str | Path, split: str) -> tuple[Path, Path] | None:
    """(annotation json, image folder) of a COCO split, or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    for json_path, images in _coco_candidates(root, split):
        if json_path.is_file():
            # COCO 2017 as some tools unpack it: images/train2017/ rather than train2017/.
            if not images.is_dir() and (root / "images" / images.name).is_dir():
                images = root / "images" / images.name
            return json_path, images
    return None


def detect_format(root: str | Path, split: str) -> str:
    """Which layout ``root`` has, judged by the files of ``split``."""
    root = Path(root)
    if not root.is_dir() and not (root.is_file() and root.suffix.lower() in (".yaml", ".yml")):
        what = "is not a directory" if root.exists() else "not found"
        raise DatasetError(f"dataset directory '{root}' {what}; give the folder that holds "
                           "the COCO, VOC or YOLO layout (or a YOLO data.yaml)")
    if coco_files(root, split) is not None:
        return "coco"
    if root.is_dir() and (root / "Annotations").is_dir():
        return "voc"
    if is_yolo(root):
        return "yolo"
    raise DatasetError(f"{root}: no {split}.json, annotations/instances_{split}.json, "
                       f"annotations/instances_{split}2017.json or {split}/_annotations.coco.json "
                       "(COCO), Annotations/ (VOC), or data.yaml, images/ + labels/ or "
                       f"{split}/images/ + {split}/labels/ (YOLO) found")


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
        return coco_files(root, split) is not None
    if fmt == "voc":
        return any((root / "ImageSets" / "Main" / f"{n}.txt").is_file()
                   for n in split_names(split))
    return yolo_layout(root).has_split(split)


def list_splits(root: str | Path, format: str) -> list[str]:
    """The splits a dataset of that format holds, train/val/test first."""
    root = Path(root)
    if format == "yolo":
        return yolo_layout(root).splits()
    if format == "voc":
        lists = root / "ImageSets" / "Main"
        # Per-class lists (aeroplane_train.txt) are not splits.
        names = sorted(p.stem for p in lists.glob("*.txt") if "_" not in p.stem) \
            if lists.is_dir() else []
    else:
        names = sorted({p.stem for p in root.glob("*.json")}
                       | {p.stem.removeprefix("instances_").removesuffix("2017")
                          for p in (root / "annotations").glob("instances_*.json")}
                       | {p.parent.name for p in root.glob("*/_annotations.coco.json")})
    order = {"train": 0, "val": 1, "valid": 1, "test": 2}
    found = [n for n in names if has_split(root, n, format)]
    seen: set[Path] = set()
    unique = []
    for name in sorted(found, key=lambda n: (order.get(n, 3), n)):
        key = _split_file(root, name, format)
        if key not in seen:
            seen.add(key)
            unique.append(name)
    return unique


def _split_file(root: Path, split: str, format: str) -> Path:
    if format == "coco":
        return coco_files(root, split)[0]  # type: ignore[index]
    name = next(n for n in split_names(split)
                if (root / "ImageSets" / "Main" / f"{n}.txt").is_file())
    return root / "ImageSets" / "Main" / f"{name}.txt"


def _voc_split(root: Path, split: str) -> str:
    return next((n for n in split_names(split)
                 if (root / "ImageSets" / "Main" / f"{n}.txt").is_file()), split)


def open_dataset(root: str | Path, split: str, *, format: str | None = None,
                 class_names: Sequence[str] | None = None, on_error: str = "fail",
                 subset: Sequence[str] | None = None, require_subset: bool = True,
                 drop_empty: bool = False) -> DetectionDataset:
    """One split of the dataset at ``root``.

    ``class_names`` is a strict class map (id = position; objects of other classes are
    broken entries); by default the dataset's own classes. ``subset`` keeps those classes, in
    that order, and drops the others' objects (counted: :func:`subset_summary`); a name the
    dataset lacks is an error unless ``require_subset`` is off. ``drop_empty`` leaves out
    images without objects. ``on_error``: ``fail`` or ``skip`` broken entries."""
    root = Path(root)
    if on_error not in ON_ERROR:
        raise DatasetError(f"on_error={on_error!r}: valid values are {', '.join(ON_ERROR)}")
    if format is None:
        format = detect_format(root, split)
    if subset is not None and class_names is None and format == "yolo" \
            and yolo_layout(root).names() is None:
        # Label ids without names: the subset can only be the class map itself.
        class_names, subset = subset, None
    if format == "coco":
        found = coco_files(root, split)
        if found is None:
            raise DatasetError(f"{root}: no {split}.json, annotations/instances_{split}.json, "
                               f"annotations/instances_{split}2017.json or "
                               f"{split}/_annotations.coco.json")
        dataset = load_coco(found[0], found[1], class_names, on_error)
    elif format == "voc":
        dataset = load_voc(root, _voc_split(root, split), class_names, on_error)
    elif format == "yolo":
        dataset = load_yolo(root, split, class_names, on_error)
    else:
        raise DatasetError(f"dataset format {format!r}: valid formats are {', '.join(FORMATS)}")
    if subset is not None:
        dataset = select_classes(dataset, subset, require=require_subset)
    if drop_empty:
        dataset = without_empty(dataset)
    if not len(dataset):
        why = " with objects" if drop_empty else ""
        raise DatasetError(f"{dataset.source}: no usable images{why} in split {split!r}")
    return dataset
