"""The data flags several commands take (``--data``, ``--format``, ``--bad-annotations``,
``--classes``, ``--drop-empty``) and opening a split the way they ask for: shared by
``train``, ``evaluate``, ``search`` and ``estimate --proxy``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nas.cli.command import Output
from objectives.data import (
    FORMATS,
    ON_ERROR,
    BrokenEntryError,
    DetectionDataset,
    class_list_argument,
    subset_summary,
)
from objectives.data import open_dataset as _open_dataset
from objectives.data.demo import demo_dataset


def data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR",
                        help="dataset directory (COCO, VOC or YOLO layout; default: the "
                        "built-in demo data)")
    parser.add_argument("--format", choices=FORMATS, help="dataset layout (default: detected)")
    parser.add_argument("--bad-annotations", choices=ON_ERROR, default="fail",
                        help="broken entries: fail at the first (default) or skip each with a "
                        "warning")


def subset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", metavar="NAMES|FILE",
                        help="class subset: names separated by commas (person,car) or a file "
                        "with one name per line; kept in that order, other classes' objects "
                        "are left out")
    parser.add_argument("--drop-empty", action="store_true",
                        help="leave out training images without objects (of the kept "
                        "classes); by default they stay as background")


def open_split(root: Path, split: str, args: argparse.Namespace, subset: Any, out: Output, *,
               require: bool = True, drop_empty: bool = False, training: bool = True
               ) -> DetectionDataset:
    """One split, with the class subset (``require``: every name must be a class of the
    data) and the broken-entry policy; what was skipped or left out is noted once
    (``training``: data --drop-empty applies to)."""
    try:
        dataset = _open_dataset(root, split, format=args.format, subset=subset,
                                require_subset=require, on_error=args.bad_annotations,
                                drop_empty=drop_empty)
    except BrokenEntryError as exc:
        raise BrokenEntryError(f"{exc}; --bad-annotations skip skips such entries with a "
                               "warning") from None
    for line in dataset.warnings():
        out.note(line)
    summary = subset_summary(dataset, can_drop=training)
    if summary:
        out.note(summary)
    return dataset


def class_subset(args: argparse.Namespace) -> tuple[str, ...] | None:
    """``--classes`` as a tuple of names, None when not given."""
    return class_list_argument(args.classes) if getattr(args, "classes", None) else None


def data_root(args: argparse.Namespace, out: Output, saved: str | None = None) -> Path:
    """``--data``, else the data a run recorded (``saved``), else the built-in demo data."""
    if args.data:
        return Path(args.data)
    if saved:
        return Path(saved)
    path = demo_dataset()
    out.note(f"no --data: using the built-in demo dataset ({path})")
    return path
