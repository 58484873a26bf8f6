"""Pascal VOC: ``ImageSets/Main/{split}.txt`` lists image ids, ``Annotations/{id}.xml`` holds
every ``<object>`` of an image, ``JPEGImages/`` the images.

VOC corners are 1-based and inclusive (``xmin = 1`` is the first pixel column), so a box covers
the continuous range [xmin - 1, xmax]. Every object is kept, ``difficult`` ones included (the
reference project's parser kept only the first object of each image). Without a class map the
classes are the names found in the split, sorted (for VOC itself that is its usual order).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from objectives.data.classes import check_class_names
from objectives.data.dataset import (
    MALFORMED,
    MISSING_IMAGE,
    UNKNOWN_CLASS,
    UNREADABLE,
    DatasetError,
    DetectionDataset,
    Problems,
    check_box,
    image_size,
    make_record,
)

_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _split_ids(root: Path, split: str) -> list[str]:
    path = root / "ImageSets" / "Main" / f"{split}.txt"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"VOC split list '{path}' not found (one image id per line)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"VOC split list '{path}' cannot be read: {exc}") from None
    # Per-class lists ("000005 -1") carry a flag after the id; the id is the first word.
    return [line.split()[0] for line in lines if line.strip()]


def _parse_objects(xml: Path, problems: Problems, entry: str
                   ) -> tuple[str | None, tuple[int, int] | None,
                              list[tuple[int, str, list[str | None]]]] | None:
    """(filename, declared size, [(index, name, corners)]) of one annotation file."""
    try:
        tree = ET.parse(xml)
    except FileNotFoundError:
        problems.report(MISSING_IMAGE, xml, entry, "annotation file not found")
        return None
    except (ET.ParseError, OSError) as exc:
        problems.report(UNREADABLE, xml, entry, f"not readable xml ({exc})")
        return None
    root = tree.getroot()
    filename = root.findtext("filename")
    declared = None
    size = root.find("size")
    if size is not None:
        try:
            declared = (int(float(size.findtext("width", "0"))),
                        int(float(size.findtext("height", "0"))))
        except ValueError:
            declared = None
    objects = []
    for i, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        bndbox = obj.find("bndbox")
        corners = [bndbox.findtext(k) if bndbox is not None else None for k in _CORNERS]
        objects.append((i, name, corners))
    return filename.strip() if filename else None, declared, objects


def load_voc(root: str | Path, split: str, class_names: Sequence[str] | None = None,
             on_error: str = "fail") -> DetectionDataset:
    root = Path(root)
    problems = Problems(on_error)
    parsed = []
    for image_id in _split_ids(root, split):
        xml = root / "Annotations" / f"{image_id}.xml"
        result = _parse_objects(xml, problems, f"image id {image_id}")
        if result is not None:
            parsed.append((image_id, xml, *result))

    if class_names is None:
        found = sorted({name for *_, objects in parsed for _, name, _ in objects if name})
        if not found:
            raise DatasetError(f"VOC {root} split {split}: no named objects to take the "
                               "classes from; give a class map")
        names = check_class_names(found, f"VOC {root}")
    else:
        names = check_class_names(class_names, "class map")
    index = {name: i for i, name in enumerate(names)}

    records = []
    for image_id, xml, filename, declared, objects in parsed:
        image = root / "JPEGImages" / (filename or f"{image_id}.jpg")
        size = image_size(image, problems, f"image id {image_id}")
        if size is None:
            continue
        # VOC files with a zero <size> exist; only a real disagreement is a problem.
        if declared and all(declared) and declared != size:
            problems.report(MALFORMED, xml, "<size>", f"declares {declared[0]}x{declared[1]} "
                            f"but {image.name} is {size[0]}x{size[1]}")
            continue
        boxes, labels = [], []
        for i, name, corners in objects:
            entry = f"object {i} ({name or 'no name'})"
            if name not in index:
                problems.report(UNKNOWN_CLASS, xml, entry,
                                f"class {name!r} is not one of {', '.join(names)}")
                continue
            try:
                x1, y1, x2, y2 = (float(c) for c in corners)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                problems.report(MALFORMED, xml, entry, "<bndbox> needs numeric xmin, ymin, "
                                f"xmax, ymax (found {corners})")
                continue
            box = check_box(x1 - 1, y1 - 1, x2, y2, size[0], size[1], problems, xml, entry)
            if box is not None:
                boxes.append(box)
                labels.append(index[name])
        records.append(make_record(image, size[0], size[1], boxes, labels))
    return DetectionDataset(tuple(records), names, f"VOC {root} ({split})",
                            tuple(problems.found))
