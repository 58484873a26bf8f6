"""YOLO txt datasets (Ultralytics, Roboflow): one label file per image, one object per line,
``class cx cy w h`` normalised to the image (or ``class x1 y1 x2 y2 ...``, a polygon, whose
bounding box is taken, as Ultralytics does for a detection task).

Where the images are, in the order looked for:

* a ``data.yaml`` (or ``data.yml``, or the one ``*.yaml`` of the folder; ``--data`` may also
  name the yaml file itself) with Ultralytics' semantics: ``path`` (optional; relative to the
  yaml's folder, which is also the default), ``train``/``val``/``test`` relative to it, each a
  folder of images (searched recursively), a ``.txt`` list of image paths (``./`` lines are
  relative to the list's folder) or a list of those. A path that does not exist is retried
  without a leading ``../``, as Ultralytics does: Roboflow writes ``train: ../train/images``
  relative to a folder inside the dataset. ``names`` (a list or an id -> name mapping) and
  ``nc`` (checked against it) give the classes;
* ``images/SPLIT/`` (the classic layout), or ``SPLIT/images/`` (a Roboflow export without its
  yaml); ``val`` and ``valid`` name the same split.

Labels are found by Ultralytics' rule: the last ``/images/`` of an image's path becomes
``/labels/`` and the suffix ``.txt``. An image without a label file has no objects (a
background image); a label file without an image is a missing image. Class names come from the
yaml, else ``classes.txt``; a class map given as well is matched by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

SPLIT_KEYS = ("train", "val", "test")
YAML_SUFFIXES = (".yaml", ".yml")
# Roboflow calls the validation split "valid"; Ultralytics "val".
ALIASES = {"val": ("val", "valid"), "valid": ("valid", "val")}


def split_names(split: str) -> tuple[str, ...]:
    """The names a split may go by on disk (``val`` is also ``valid`` and back)."""
    return ALIASES.get(split, (split,))


@dataclass(frozen=True)
class YoloLayout:
    """Where a YOLO dataset's splits and classes are defined."""

    root: Path                         # the dataset folder (the yaml's, unless --data is one)
    yaml: Path | None
    data: dict[str, Any]               # the yaml's content ({} without one)

    @property
    def has_yaml_splits(self) -> bool:
        return any(key in self.data for key in SPLIT_KEYS)

    def names(self) -> dict[int, str] | None:
        """The dataset's own classes by id: the yaml's, else classes.txt, else None."""
        from_yaml = _yaml_names(self.data, self.yaml) if self.yaml is not None else None
        if from_yaml is not None:
            return from_yaml
        if (self.root / "classes.txt").is_file():
            return dict(enumerate(read_class_names(self.root / "classes.txt")))
        return None

    def split_key(self, split: str) -> str | None:
        """The yaml key that defines ``split``, if any."""
        return next((k for k in split_names(split) if self.data.get(k)), None)

    def splits(self) -> list[str]:
        """Every split this dataset defines (yaml keys, else folders)."""
        if self.has_yaml_splits:
            return [k for k in self.data if k in SPLIT_KEYS and self.data[k]]
        found = []
        if (self.root / "images").is_dir():
            found += sorted(p.name for p in (self.root / "images").iterdir() if p.is_dir())
        found += sorted(p.name for p in self.root.iterdir()
                        if p.is_dir() and (p / "images").is_dir() and p.name != "images")
        return list(dict.fromkeys(found))

    def has_split(self, split: str) -> bool:
        if self.has_yaml_splits:
            return self.split_key(split) is not None
        return self._folder(split) is not None

    def _folder(self, split: str) -> Path | None:
        for name in split_names(split):
            for folder in (self.root / "images" / name, self.root / name / "images"):
                if folder.is_dir():
                    return folder
        return None

    def images(self, split: str) -> tuple[list[Path], list[Path]]:
        """(image files of ``split``, the image folders they came from)."""
        if self.has_yaml_splits:
            key = self.split_key(split)
            if key is None:
                defined = ", ".join(k for k in SPLIT_KEYS if self.data.get(k))
                raise DatasetError(f"{self.yaml}: no {split!r} split (it defines {defined})")
            base, note = self._base()
            return _entry_images(base, self.data[key], self.yaml, key, note)  # type: ignore[arg-type]
        folder = self._folder(split)
        if folder is None:
            tried = ", ".join(str(p) for n in split_names(split)
                              for p in (self.root / "images" / n, self.root / n / "images"))
            raise DatasetError(f"YOLO split {split!r} not found: no folder {tried}")
        return _folder_images(folder), [folder]

    def _base(self) -> tuple[Path, str]:
        """The folder the yaml's split paths are relative to: its ``path``, relative to the
        yaml's folder (else to the working directory, as Ultralytics reads it); a ``path``
        that exists in neither (a yaml moved from another machine) falls back to the
        yaml's own folder, which is where the split paths are then looked for."""
        assert self.yaml is not None
        given = self.data.get("path")
        if given in (None, ""):
            return self.yaml.parent, ""
        if not isinstance(given, str):
            raise DatasetError(f"{self.yaml}: 'path' must be a folder, found {given!r}")
        base = Path(given).expanduser()
        tried = [base] if base.is_absolute() else [self.yaml.parent / base, Path.cwd() / base]
        found = next((p for p in tried if p.is_dir()), None)
        if found is not None:
            return found, ""
        return self.yaml.parent, f"; its path {given!r} is not a folder here, so the yaml's " \
            "folder was used"


def find_yaml(root: Path) -> Path | None:
    """The dataset's yaml: ``root`` itself, ``data.yaml``/``data.yml``, or its only yaml."""
    if root.is_file():
        return root if root.suffix.lower() in YAML_SUFFIXES else None
    for name in ("data.yaml", "data.yml"):
        if (root / name).is_file():
            return root / name
    found = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in YAML_SUFFIXES] \
        if root.is_dir() else []
    return found[0] if len(found) == 1 else None


def yolo_layout(root: str | Path) -> YoloLayout:
    root = Path(root)
    path = find_yaml(root)
    data = _read_yaml(path) if path is not None else {}
    return YoloLayout(root.parent if root.is_file() else root, path, data)


def is_yolo(root: Path) -> bool:
    """Whether ``root`` looks like a YOLO dataset (a yaml with splits, or the folders)."""
    path = find_yaml(root)
    if path is not None and any(k in _read_yaml(path) for k in SPLIT_KEYS):
        return True
    if root.is_file():
        return False
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return True
    return any((root / n / "images").is_dir() and (root / n / "labels").is_dir()
               for n in (*SPLIT_KEYS, "valid"))


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml  # only YOLO datasets need it

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DatasetError(f"{path}: not valid yaml{line}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: a dataset yaml is a mapping (train:, val:, names: ...), "
                           f"found a {type(data).__name__}")
    return data


def _yaml_names(data: dict[str, Any], path: Path) -> dict[int, str] | None:
    names, nc = data.get("names"), data.get("nc")
    if nc is not None and (not isinstance(nc, int) or isinstance(nc, bool) or nc < 1):
        raise DatasetError(f"{path}: nc {nc!r} must be a positive number of classes")
    if names is None:
        # Ultralytics names the classes of a yaml with only nc class0, class1, ...
        return {i: f"class{i}" for i in range(nc)} if nc is not None else None
    if isinstance(names, dict):
        try:
            by_id = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: 'names' keys must be class ids (0, 1, ...), found "
                               f"{list(names)}") from None
        if any(k < 0 for k in by_id):
            raise DatasetError(f"{path}: 'names' has a negative class id")
    elif isinstance(names, list):
        by_id = dict(enumerate(str(n) for n in names))
    else:
        raise DatasetError(f"{path}: 'names' must be a list or an id -> name mapping, found "
                           f"{names!r}")
    check_class_names([by_id[k] for k in sorted(by_id)], f"{path} names")
    if nc is not None and nc != len(by_id):
        raise DatasetError(f"{path}: nc is {nc} but 'names' lists {len(by_id)} classes")
    return by_id


def _resolve(base: Path, entry: str, yaml_path: Path, key: str, note: str) -> Path:
    """A yaml path entry -> an existing path, retrying without a leading ``../``."""
    entry = entry.strip()
    given = Path(entry).expanduser()
    tried = [given if given.is_absolute() else base / given]
    if entry.startswith("../"):
        tried.append(base / entry[3:])
    for candidate in tried:
        if candidate.exists():
            return candidate
    shown = " or ".join(f"'{p}'" for p in tried)
    raise DatasetError(f"{yaml_path}: {key} {entry!r} not found (tried {shown}){note}")


def _entry_images(base: Path, entry: Any, yaml_path: Path, key: str, note: str
                  ) -> tuple[list[Path], list[Path]]:
    entries = entry if isinstance(entry, list) else [entry]
    images: list[Path] = []
    folders: list[Path] = []
    for item in entries:
        if not isinstance(item, str) or not item.strip():
            raise DatasetError(f"{yaml_path}: {key} must be a folder, a .txt list of images or "
                               f"a list of those, found {item!r}")
        path = _resolve(base, item, yaml_path, key, note)
        if path.is_dir():
            images += _folder_images(path)
            folders.append(path)
        elif path.suffix.lower() == ".txt":
            images += _listed_images(path)
        else:
            raise DatasetError(f"{yaml_path}: {key} '{path}' is neither a folder of images nor "
                               "a .txt list of image paths")
    return images, folders


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _listed_images(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"image list '{path}' cannot be read: {exc}") from None
    images = []
    for line in (x.strip() for x in lines):
        if not line:
            continue
        image = Path(line)
        images.append(image if image.is_absolute() else path.parent / line.removeprefix("./"))
    return images


def label_path(image: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder of the path becomes ``labels``."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def load_yolo(root: str | Path, split: str, class_names: Sequence[str] | None = None,
              on_error: str = "fail") -> DetectionDataset:
    layout = yolo_layout(root)
    where = str(layout.yaml or layout.root)
    images, folders = layout.images(split)
    own = layout.names()
    if own is None and class_names is None:
        raise DatasetError(f"YOLO dataset {layout.root} has no classes.txt or data.yaml; give a "
                           "class map (one name per line)")
    if class_names is not None:
        names = check_class_names(class_names, "class map")
    else:
        names = check_class_names([own[k] for k in sorted(own)], where)  # type: ignore[index]
    index = {name: i for i, name in enumerate(names)}
    # Label ids index the dataset's own names when it has some, else the class map directly.
    id_names = own if own is not None else dict(enumerate(names))

    problems = Problems(on_error)
    _orphan_labels(images, folders, problems)
    records = []
    for image in images:
        size = image_size(image, problems, image.name)
        if size is None:
            continue
        label = label_path(image)
        lines = _read_lines(label, problems)
        if lines is None:
            continue
        boxes, labels = [], []
        for number, line in enumerate(lines, start=1):
            parsed = _parse_line(line, label, number, id_names, problems)
            if parsed is None:
                continue
            name, (x1, y1, x2, y2) = parsed
            if name not in index:
                problems.report(UNKNOWN_CLASS, label, f"line {number}",
                                f"class {name!r} is not one of {', '.join(names)}")
                continue
            width, height = size
            box = check_box(x1 * width, y1 * height, x2 * width, y2 * height, width, height,
                            problems, label, f"line {number}")
            if box is not None:
                boxes.append(box)
                labels.append(index[name])
        records.append(make_record(image, size[0], size[1], boxes, labels))
    return DetectionDataset(tuple(records), names, f"YOLO {where} ({split})",
                            tuple(problems.found))


def _orphan_labels(images: list[Path], folders: list[Path], problems: Problems) -> None:
    """Label files in a split's label folder that no image of the split claims."""
    claimed = {label_path(p) for p in images}
    for folder in folders:
        label_dir = label_path(folder / "x").parent
        if label_dir == folder or not label_dir.is_dir():
            continue  # labels beside the images: other .txt files there are not labels
        for label in sorted(label_dir.rglob("*.txt")):
            if label not in claimed:
                problems.report(MISSING_IMAGE, label, "", f"no image {label.stem}.* in "
                                f"{folder}")


def _read_lines(label: Path, problems: Problems) -> list[str] | None:
    try:
        return label.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        problems.report(UNREADABLE, label, "", f"cannot be read ({exc})")
        return None


def _parse_line(line: str, label: Path, number: int, id_names: dict[int, str],
                problems: Problems) -> tuple[str, tuple[float, ...]] | None:
    """(class name, normalised corners) of one label line, or None (reported)."""
    fields = line.split()
    if not fields:
        return None
    entry = f"line {number}"
    polygon = len(fields) > 6 and len(fields) % 2 == 1
    if len(fields) != 5 and not polygon:
        problems.report(MALFORMED, label, entry, f"{line.strip()!r}: expected 'class cx cy w h' "
                        "(or 'class x1 y1 x2 y2 x3 y3 ...', a polygon)")
        return None
    try:
        cls = int(fields[0])
        values = [float(v) for v in fields[1:]]
    except ValueError:
        problems.report(MALFORMED, label, entry, f"{line.strip()!r}: expected an integer class "
                        "and numbers")
        return None
    if cls not in id_names:
        ids = sorted(id_names)
        problems.report(UNKNOWN_CLASS, label, entry, f"class id {cls} is outside {ids[0]}.."
                        f"{ids[-1]} ({', '.join(id_names[k] for k in ids)})")
        return None
    if polygon:
        xs, ys = values[0::2], values[1::2]
        return id_names[cls], (min(xs), min(ys), max(xs), max(ys))
    cx, cy, w, h = values
    return id_names[cls], (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
