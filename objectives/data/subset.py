"""Class subsets: keep some classes of a dataset, in a given order, and leave the others out.

Objects of the other classes are not errors: they are dropped and counted, and the dataset
says so once (:func:`subset_summary`). An image left without objects stays, as a background
image, unless ``drop_empty``. A kept name the dataset does not have is an error naming the
classes it has (unless ``require`` is off: a checkpoint's classes against a split that lacks
one simply has no ground truth for it).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

import numpy as np

from objectives.data.classes import check_class_names
from objectives.data.dataset import DatasetError, DetectionDataset, Record

# How many dropped classes a summary names before "and N more".
_SHOWN = 5


def select_classes(dataset: DetectionDataset, keep: Sequence[str], *, require: bool = True,
                   drop_empty: bool = False) -> DetectionDataset:
    """``dataset`` with only the classes ``keep`` (ids = positions in ``keep``)."""
    keep = check_class_names(keep, "class subset")
    if require:
        missing = [n for n in keep if n not in dataset.class_names]
        if missing:
            listed = ", ".join(repr(n) for n in dataset.class_names)
            raise DatasetError(f"{dataset.source}: no class {', '.join(map(repr, missing))}; "
                               f"the dataset's classes are {listed}")
    new_id = {n: i for i, n in enumerate(keep)}
    mapping = np.array([new_id.get(n, -1) for n in dataset.class_names] or [-1], np.int64)
    dropped: Counter[str] = Counter()
    records = []
    for record in dataset.records:
        labels = mapping[record.labels]
        kept = labels >= 0
        for old in record.labels[~kept]:
            dropped[dataset.class_names[old]] += 1
        crowd = mapping[record.crowd_labels]
        records.append(dataclasses.replace(
            record, boxes=record.boxes[kept], labels=labels[kept],
            crowd_boxes=record.crowd_boxes[crowd >= 0], crowd_labels=crowd[crowd >= 0]))
    subset = dataclasses.replace(dataset, records=tuple(records), class_names=keep,
                                 dropped_objects=tuple(sorted(dropped.items(),
                                                              key=lambda kv: -kv[1])))
    return without_empty(subset) if drop_empty else subset


def without_empty(dataset: DetectionDataset) -> DetectionDataset:
    """``dataset`` without the images that have no object (``--drop-empty``)."""
    records = tuple(r for r in dataset.records if len(r.labels))
    return dataclasses.replace(dataset, records=records,
                               dropped_images=dataset.dropped_images + len(dataset) - len(records))


def _empty(records: Sequence[Record]) -> int:
    return sum(1 for r in records if not len(r.labels))


def subset_summary(dataset: DetectionDataset, can_drop: bool = True) -> str | None:
    """One line on what a class subset or ``drop_empty`` left out, or None. ``can_drop``:
    whether to point at ``--drop-empty`` for images left without objects (training data)."""
    if not dataset.dropped_objects and not dataset.dropped_images:
        return None
    parts = []
    if dataset.dropped_objects:
        total = sum(n for _, n in dataset.dropped_objects)
        shown = ", ".join(f"{name} {n}" for name, n in dataset.dropped_objects[:_SHOWN])
        more = len(dataset.dropped_objects) - _SHOWN
        shown += f", and {more} more classes" if more > 0 else ""
        n = len(dataset.dropped_objects)
        parts.append(f"kept {', '.join(dataset.class_names)}; left out {total} objects of "
                     f"{n} other class{'es' if n != 1 else ''} ({shown})")
    if dataset.dropped_images:
        parts.append(f"left out {dataset.dropped_images} images without objects (--drop-empty)")
    else:
        empty = _empty(dataset.records)
        if empty:
            hint = " (--drop-empty leaves them out)" if can_drop else ""
            parts.append(f"{empty} images without objects stay as background{hint}")
    return f"{dataset.source}: " + "; ".join(parts)
