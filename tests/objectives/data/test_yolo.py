from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from objectives.data import BrokenEntryError, DatasetError, open_dataset


def _yolo(root: Path, write_image, labels: dict[str, str], names: str | None = "cat\ndog\n"
          ) -> None:
    for stem, text in labels.items():
        write_image(root / "images" / "train" / f"{stem}.jpg", 200, 100)
        (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
        if text is not None:
            (root / "labels" / "train" / f"{stem}.txt").write_text(text)
    if names is not None:
        (root / "classes.txt").write_text(names)


def test_lines_become_normalised_corners(tmp_path, write_image):
    _yolo(tmp_path, write_image, {"a": "1 0.5 0.5 1.0 1.0\n0 0.35 0.35 0.5 0.5\n\n", "b": ""})
    ds = open_dataset(tmp_path, "train")
    assert ds.class_names == ("cat", "dog") and len(ds) == 2
    np.testing.assert_allclose(ds.records[0].boxes, [[0, 0, 1, 1], [0.1, 0.1, 0.6, 0.6]],
                               atol=1e-6)
    assert ds.records[0].labels.tolist() == [1, 0]
    assert ds.records[1].labels.tolist() == []


def test_names_from_data_yaml_and_class_map_by_name(tmp_path, write_image):
    _yolo(tmp_path, write_image, {"a": "1 0.5 0.5 0.2 0.2\n"}, names=None)
    (tmp_path / "data.yaml").write_text("path: .\nnames:\n  0: cat\n  1: dog\n")
    ds = open_dataset(tmp_path, "train", class_names=["dog"])
    assert ds.class_names == ("dog",) and ds.records[0].labels.tolist() == [0]


def test_without_names_a_class_map_is_needed(tmp_path, write_image):
    _yolo(tmp_path, write_image, {"a": "0 0.5 0.5 0.2 0.2\n"}, names=None)
    with pytest.raises(DatasetError, match=r"no classes\.txt or data\.yaml"):
        open_dataset(tmp_path, "train")
    ds = open_dataset(tmp_path, "train", class_names=["thing"])
    assert ds.records[0].labels.tolist() == [0]


@pytest.mark.parametrize(("line", "kind"), [
    ("0 0.9 0.5 0.5 0.2", "box outside the image"),
    ("0 0.5 0.5 0.0 0.2", "zero-area box"),
    ("5 0.5 0.5 0.1 0.1", "unknown class"),
    ("0 0.5 0.5 0.1", "malformed entry"),
    ("cat 0.5 0.5 0.1 0.1", "malformed entry"),
])
def test_broken_lines(tmp_path, write_image, line, kind):
    _yolo(tmp_path, write_image, {"a": f"0 0.5 0.5 0.2 0.2\n{line}\n"})
    with pytest.raises(BrokenEntryError) as info:
        open_dataset(tmp_path, "train")
    assert "a.txt: line 2" in str(info.value) and kind in str(info.value)
    ds = open_dataset(tmp_path, "train", on_error="skip")
    assert ds.num_objects == 1 and ds.problems[0].kind == kind


def test_label_without_image_and_unreadable_image(tmp_path, write_image):
    _yolo(tmp_path, write_image, {"a": "0 0.5 0.5 0.2 0.2\n"})
    (tmp_path / "labels" / "train" / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "images" / "train" / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DatasetError, match=r"ghost\.txt.*missing image"):
        open_dataset(tmp_path, "train")
    ds = open_dataset(tmp_path, "train", on_error="skip")
    assert len(ds) == 1
    assert sorted(p.kind for p in ds.problems) == ["missing image", "unreadable file"]
