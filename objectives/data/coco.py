"""COCO instance json: ``images``, ``annotations`` (``bbox`` = [x, y, w, h] in pixels) and
``categories``.

Classes come from the categories, ordered by category id, unless a class map is given (then
categories are matched by name, and annotations of categories outside the map are unknown
classes). Crowd annotations (``iscrowd: 1``) are regions, not objects: they are kept apart
(``Record.crowd_boxes``), never trained on, and given to pycocotools as crowd regions in
evaluation, where a detection inside one counts neither way; a crowd entry that cannot be
used (a box outside the image, a category outside the map) is left out without a warning.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from objectives.data.classes import check_class_names
from objectives.data.dataset import (
    MALFORMED,
    UNKNOWN_CLASS,
    DatasetError,
    DetectionDataset,
    Problems,
    Record,
    check_box,
    image_size,
    make_record,
)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"COCO annotation file '{path}' not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable COCO json file ({exc})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: a COCO file is a json object, found {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{path}: a COCO file needs a list '{key}'")
    return data


def _categories(data: dict[str, Any], path: Path) -> dict[Any, str]:
    cats: dict[Any, str] = {}
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise DatasetError(f"{path}: categories[{i}] needs an 'id' and a 'name'")
        cats[cat["id"]] = str(cat["name"]).strip()
    return cats


def load_coco(annotations: str | Path, image_dir: str | Path,
              class_names: Sequence[str] | None = None, on_error: str = "fail"
              ) -> DetectionDataset:
    """Every image of a COCO json with every non-crowd object. ``file_name`` is relative to
    ``image_dir``."""
    path, image_dir = Path(annotations), Path(image_dir)
    problems = Problems(on_error)
    data = _read_json(path)
    cats = _categories(data, path)
    if class_names is None:
        names = check_class_names([cats[k] for k in sorted(cats)], f"{path} categories")
    else:
        names = check_class_names(class_names, "class map")
    index = {name: i for i, name in enumerate(names)}

    images: dict[Any, tuple[Path, int, int]] = {}
    declared_ids: set[Any] = set()
    order: list[Any] = []
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not isinstance(img.get("id"), int | str) \
                or "file_name" not in img:
            problems.report(MALFORMED, path, f"images[{i}]", "needs an 'id' and a 'file_name'")
            continue
        declared_ids.add(img["id"])
        entry = f"image id {img['id']} ({img['file_name']})"
        file = image_dir / str(img["file_name"])
        size = image_size(file, problems, entry)
        if size is None:
            continue
        declared = (img.get("width"), img.get("height"))
        if None not in declared and tuple(declared) != size:
            problems.report(MALFORMED, path, entry, f"declares {declared[0]}x{declared[1]} but "
                            f"the image file is {size[0]}x{size[1]}")
            continue
        images[img["id"]] = (file, *size)
        order.append(img["id"])

    boxes: dict[Any, list] = {k: [] for k in images}
    labels: dict[Any, list[int]] = {k: [] for k in images}
    crowd: dict[Any, list] = {k: [] for k in images}
    crowd_labels: dict[Any, list[int]] = {k: [] for k in images}
    for i, ann in enumerate(data["annotations"]):
        entry = f"annotation id {ann.get('id', f'#{i}')}" if isinstance(ann, dict) \
            else f"annotations[{i}]"
        if not isinstance(ann, dict) or "image_id" not in ann:
            problems.report(MALFORMED, path, entry, "needs an 'image_id'")
            continue
        image_id = ann["image_id"]
        if ann.get("iscrowd", 0):
            known = images.get(image_id) if isinstance(image_id, int | str) else None
            region = _crowd_box(ann, known, cats, index)
            if region is not None:
                crowd[image_id].append(region[0])
                crowd_labels[image_id].append(region[1])
            continue
        if not isinstance(image_id, int | str):
            problems.report(MALFORMED, path, entry, f"image_id {image_id!r} is not an id")
            continue
        if image_id not in images:
            # An image already reported (missing, unreadable) takes its annotations with it.
            if image_id not in declared_ids:
                problems.report(MALFORMED, path, entry, f"image_id {image_id!r} is not in "
                                "'images'")
            continue
        cat = ann.get("category_id")
        name = cats.get(cat)
        if name is None or name not in index:
            known = f"category_id {cat!r} ({name})" if name else f"category_id {cat!r}"
            problems.report(UNKNOWN_CLASS, path, entry,
                            f"{known} is not one of the classes {', '.join(names)}")
            continue
        bbox = ann.get("bbox")
        try:
            x, y, w, h = (float(v) for v in bbox)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            problems.report(MALFORMED, path, entry, f"bbox {bbox!r} is not [x, y, w, h]")
            continue
        file, width, height = images[image_id]
        box = check_box(x, y, x + w, y + h, width, height, problems, path, entry)
        if box is not None:
            boxes[image_id].append(box)
            labels[image_id].append(index[name])

    records: list[Record] = [make_record(images[k][0], images[k][1], images[k][2], boxes[k],
                                         labels[k], crowd[k], crowd_labels[k]) for k in order]
    return DetectionDataset(tuple(records), names, f"COCO {path}", tuple(problems.found))


def _crowd_box(ann: dict[str, Any], image: tuple[Path, int, int] | None, cats: dict[Any, str],
               index: dict[str, int]) -> tuple[Any, int] | None:
    """(normalised box, class id) of a usable crowd region, else None (silently: a crowd is
    not an object, and pycocotools would not miss it)."""
    name = cats.get(ann.get("category_id"))
    if image is None or name not in index:
        return None
    try:
        x, y, w, h = (float(v) for v in ann.get("bbox"))  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    box = check_box(x, y, x + w, y + h, image[1], image[2], Problems("skip"), "", "")
    return None if box is None else (box, index[name])
