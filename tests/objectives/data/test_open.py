from __future__ import annotations

import json

import pytest

from objectives.data import DatasetError, detect_format, has_split, open_dataset
from objectives.data.classes import read_class_names


def test_detects_each_layout(tmp_path):
    coco, voc, yolo = tmp_path / "coco", tmp_path / "voc", tmp_path / "yolo"
    coco.mkdir()
    (coco / "train.json").write_text("{}")
    (voc / "Annotations").mkdir(parents=True)
    (yolo / "images").mkdir(parents=True)
    (yolo / "labels").mkdir()
    assert [detect_format(p, "train") for p in (coco, voc, yolo)] == ["coco", "voc", "yolo"]
    assert has_split(coco, "train") and not has_split(coco, "val")
    with pytest.raises(DatasetError, match=r"no train\.json"):
        detect_format(tmp_path, "train")
    with pytest.raises(DatasetError, match="not found"):
        detect_format(tmp_path / "nowhere", "train")


def test_unknown_format_and_policy_are_named(tmp_path):
    with pytest.raises(DatasetError, match=r"'tfrecord'.*coco, voc, yolo"):
        open_dataset(tmp_path, "train", format="tfrecord")
    with pytest.raises(DatasetError, match=r"'ignore'.*fail, skip"):
        open_dataset(tmp_path, "train", on_error="ignore")


def test_a_split_without_images_is_refused(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps(
        {"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}))
    with pytest.raises(DatasetError, match="no usable images"):
        open_dataset(tmp_path, "train")


def test_class_map_file(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# my classes\nperson\n\ncar  # cars and vans\n")
    assert read_class_names(path) == ("person", "car")
    path.write_text("person\ncar\nperson\n")
    with pytest.raises(DatasetError, match="'person' appears twice"):
        read_class_names(path)
    path.write_text("# nothing\n")
    with pytest.raises(DatasetError, match="empty"):
        read_class_names(path)
    with pytest.raises(DatasetError, match="not found"):
        read_class_names(tmp_path / "missing.txt")
