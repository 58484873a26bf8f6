"""YOLO txt (the Ultralytics layout): ``images/{split}/NAME.jpg`` with ``labels/{split}/NAME.txt``,
one object per line, ``class cx cy w h`` normalised to the image.

Class names come from ``classes.txt`` (one per line) or the ``names`` of ``data.yaml`` in the
dataset directory; the ids of the label files index that list. A class map given as well is
matched by name. An image without a label file has no objects (a background image); a label file
without an image is a missing image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from objectives.data.classes import check_class_names, read_class_names
from objectives.data.dataset import (
    IMAGE_SUFFIXES,
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


def yolo_names(root: Path) -> tuple[str, ...] | None:
    """The dataset's own class names (classes.txt, else data.yaml), or None."""
    if (root / "classes.txt").is_file():
        return read_class_names(root / "classes.txt")
    path = root / "data.yaml"
    if not path.is_file():
        return None
    import yaml  # only YOLO's data.yaml needs it (PyYAML comes with optuna)

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DatasetError(f"{path}: not readable yaml ({exc})") from None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict):  # {0: person, 1: car}
        try:
            names = [names[k] for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            names = None
    if not isinstance(names, list):
        raise DatasetError(f"{path}: needs 'names' as a list or an id -> name mapping")
    return check_class_names(names, str(path))


def load_yolo(root: str | Path, split: str, class_names: Sequence[str] | None = None,
              on_error: str = "fail") -> DetectionDataset:
    root = Path(root)
    image_dir, label_dir = root / "images" / split, root / "labels" / split
    if not image_dir.is_dir():
        raise DatasetError(f"YOLO image folder '{image_dir}' not found")
    own = yolo_names(root)
    if own is None and class_names is None:
        raise DatasetError(f"YOLO dataset {root} has no classes.txt or data.yaml; give a class "
                           "map (one name per line)")
    names = check_class_names(class_names if class_names is not None else own,  # type: ignore[arg-type]
                              "class map" if class_names is not None else str(root))
    index = {name: i for i, name in enumerate(names)}
    # Label ids index the dataset's own names when it has some, else the class map directly.
    id_names = own if own is not None else names

    problems = Problems(on_error)
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    stems = {p.stem for p in images}
    if label_dir.is_dir():
        for label in sorted(label_dir.glob("*.txt")):
            if label.stem not in stems:
                problems.report(MISSING_IMAGE, label, "", f"no image {label.stem}.* in "
                                f"{image_dir}")

    records = []
    for image in images:
        size = image_size(image, problems, image.name)
        if size is None:
            continue
        label = label_dir / f"{image.stem}.txt"
        boxes, labels = [], []
        lines = _read_lines(label, problems)
        if lines is None:
            continue
        for number, line in enumerate(lines, start=1):
            parsed = _parse_line(line, label, number, id_names, problems)
            if parsed is None:
                continue
            name, (cx, cy, w, h) = parsed
            if name not in index:
                problems.report(UNKNOWN_CLASS, label, f"line {number}",
                                f"class {name!r} is not one of {', '.join(names)}")
                continue
            width, height = size
            box = check_box((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                            (cy + h / 2) * height, width, height, problems, label,
                            f"line {number}")
            if box is not None:
                boxes.append(box)
                labels.append(index[name])
        records.append(make_record(image, size[0], size[1], boxes, labels))
    return DetectionDataset(tuple(records), names, f"YOLO {root} ({split})",
                            tuple(problems.found))


def _read_lines(label: Path, problems: Problems) -> list[str] | None:
    try:
        return label.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        problems.report(UNREADABLE, label, "", f"cannot be read ({exc})")
        return None


def _parse_line(line: str, label: Path, number: int, id_names: Sequence[str],
                problems: Problems) -> tuple[str, tuple[float, ...]] | None:
    fields = line.split()
    if not fields:
        return None
    entry = f"line {number}"
    if len(fields) != 5:
        problems.report(MALFORMED, label, entry, f"{line.strip()!r}: expected 'class cx cy w h'")
        return None
    try:
        cls = int(fields[0])
        values = tuple(float(v) for v in fields[1:])
    except ValueError:
        problems.report(MALFORMED, label, entry, f"{line.strip()!r}: expected an integer class "
                        "and four numbers")
        return None
    if not 0 <= cls < len(id_names):
        problems.report(UNKNOWN_CLASS, label, entry, f"class id {cls} is outside 0.."
                        f"{len(id_names) - 1} ({', '.join(id_names)})")
        return None
    return id_names[cls], values
