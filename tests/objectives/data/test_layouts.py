"""Datasets as the tools write them (``layouts.py``) open with no flags and no reshaping."""

from __future__ import annotations

import json

import numpy as np
import pytest

from objectives.data import DatasetError, detect_format, has_split, list_splits, open_dataset
from objectives.data.yolo import label_path

# -- YOLO: Roboflow's export -------------------------------------------------------------------

def test_roboflow_export_opens_with_its_valid_split_and_dotdot_paths(tmp_path, layouts):
    root = layouts.roboflow_yolo(tmp_path / "street-objects-2")
    assert detect_format(root, "train") == "yolo"
    assert list_splits(root, "yolo") == ["train", "val", "test"]
    train = open_dataset(root, "train")
    assert train.class_names == ("car", "dog", "person") and len(train) == 3
    # '../train/images' does not exist next to the dataset: retried as 'train/images'.
    assert {r.image.parent for r in train.records} == {root / "train" / "images"}
    by_name = {r.image.name.split("_")[0]: r for r in train.records}
    assert by_name["street1"].labels.tolist() == [2, 0]
    np.testing.assert_allclose(by_name["street1"].boxes[0], [0.375, 0.25, 0.625, 0.75],
                               atol=1e-6)
    assert by_name["empty"].labels.tolist() == []  # a null image stays, as background
    for split in ("val", "valid"):
        assert has_split(root, split)
        assert len(open_dataset(root, split)) == 2
    assert open_dataset(root, "test").num_objects == 1
    # The yaml itself may be given.
    assert len(open_dataset(root / "data.yaml", "valid")) == 2


def test_a_yaml_path_found_nowhere_says_what_was_tried(tmp_path, layouts):
    root = layouts.roboflow_yolo(tmp_path / "ds")
    (root / "valid").rename(root / "validation")
    with pytest.raises(DatasetError) as info:
        open_dataset(root, "val")
    message = str(info.value)
    assert "val '../valid/images' not found" in message
    assert f"'{root}/../valid/images' or '{root}/valid/images'" in message


def test_without_its_yaml_a_roboflow_tree_still_opens(tmp_path, layouts):
    root = layouts.roboflow_yolo(tmp_path / "ds")
    (root / "data.yaml").unlink()
    (root / "classes.txt").write_text("car\ndog\nperson\n")
    assert detect_format(root, "train") == "yolo"
    assert len(open_dataset(root, "val")) == 2  # the folder is 'valid'


# -- YOLO: an Ultralytics dataset yaml ---------------------------------------------------------

def test_ultralytics_yaml_with_path_and_the_images_to_labels_rule(tmp_path, layouts):
    yaml_path = layouts.ultralytics_yaml(tmp_path)
    assert detect_format(yaml_path, "train") == "yolo"
    assert list_splits(yaml_path, "yolo") == ["train", "val"]  # 'test:' is empty
    train = open_dataset(yaml_path, "train")
    assert train.class_names == ("person", "bicycle", "car")
    first = train.records[0]
    assert first.image == tmp_path / "coco8" / "images" / "train" / "000000000009.jpg"
    assert first.labels.tolist() == [0, 2]
    assert label_path(first.image) == tmp_path / "coco8" / "labels" / "train" / \
        "000000000009.txt"
    with pytest.raises(DatasetError, match=r"no 'test' split \(it defines train, val\)"):
        open_dataset(yaml_path, "test")


def test_yaml_split_as_a_txt_list_and_as_a_list(tmp_path, layouts):
    yaml_path = layouts.ultralytics_yaml(tmp_path)
    data = tmp_path / "coco8"
    (data / "train.txt").write_text("./images/train/000000000009.jpg\n"
                                    f"{data}/images/train/000000000025.jpg\n\n")
    yaml_path.write_text("path: coco8\ntrain: train.txt\nval: [images/val, images/train]\n"
                         "names: [person, bicycle, car]\nnc: 3\n")
    assert len(open_dataset(yaml_path, "train")) == 2
    assert len(open_dataset(yaml_path, "val")) == 4


def test_a_yaml_path_from_another_machine_falls_back_to_the_yaml_folder(tmp_path, layouts):
    layouts.ultralytics_yaml(tmp_path)
    data = tmp_path / "coco8"
    (data / "data.yaml").write_text("path: /content/datasets/coco8\ntrain: images/train\n"
                                    "val: images/val\nnames: {0: person, 1: bicycle, 2: car}\n")
    assert len(open_dataset(data, "train")) == 2
    (data / "data.yaml").write_text("path: /content/datasets/coco8\ntrain: img/train\n"
                                    "names: [person, bicycle, car]\n")
    with pytest.raises(DatasetError, match="its path '/content/datasets/coco8' is not a folder"):
        open_dataset(data, "train")


@pytest.mark.parametrize(("text", "match"), [
    ("train: [images/train\n", r"data\.yaml: not valid yaml at line 2"),
    ("- a\n- b\n", "a dataset yaml is a mapping"),
    ("train: images/train\nnc: 2\nnames: [a, b, c]\n", "nc is 2 but 'names' lists 3"),
    ("train: images/train\nnames: person\n", "'names' must be a list or an id -> name"),
    ("train: images/train\nnames: {zero: a}\n", "'names' keys must be class ids"),
    ("train: images/train\nnames: [a, a]\n", "'a' appears twice"),
    ("train: 5\nnames: [a]\n", "train must be a folder, a .txt list"),
])
def test_bad_yaml_is_one_clear_error(tmp_path, write_image, text, match):
    write_image(tmp_path / "images" / "train" / "a.jpg", 32, 32)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "data.yaml").write_text(text)
    with pytest.raises(DatasetError, match=match):
        open_dataset(tmp_path, "train", format="yolo")


def test_nc_alone_names_the_classes_as_ultralytics_does(tmp_path, write_image):
    write_image(tmp_path / "images" / "train" / "a.jpg", 32, 32)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text("train: images/train\nnc: 2\n")
    assert open_dataset(tmp_path, "train").class_names == ("class0", "class1")


def test_a_polygon_line_becomes_its_bounding_box(tmp_path, write_image):
    write_image(tmp_path / "images" / "train" / "a.jpg", 100, 100)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train" / "a.txt").write_text("0 0.1 0.2 0.5 0.1 0.4 0.6 0.2 0.5\n")
    (tmp_path / "classes.txt").write_text("thing\n")
    record = open_dataset(tmp_path, "train").records[0]
    np.testing.assert_allclose(record.boxes, [[0.1, 0.1, 0.5, 0.6]], atol=1e-6)


# -- COCO 2017 and Roboflow's COCO export ------------------------------------------------------

def test_coco2017_is_found_and_crowds_are_kept_apart(tmp_path, layouts):
    root = layouts.coco2017(tmp_path / "coco")
    assert detect_format(root, "train") == "coco"
    assert list_splits(root, "coco") == ["train", "val"]
    train = open_dataset(root, "train")
    assert train.class_names == ("person", "car", "dog")  # by category id: 1, 3, 18
    assert train.records[0].image == root / "train2017" / "000000000009.jpg"
    assert [r.labels.tolist() for r in train.records] == [[0, 1], [2], [2]]
    # The crowd region is not an object to train on, but is there for evaluation.
    assert train.num_objects == 4 and train.records[1].crowd_labels.tolist() == [0]
    np.testing.assert_allclose(train.records[1].crowd_boxes, [[30 / 64, 2 / 48, 60 / 64, 42 / 48]],
                               atol=1e-6)
    assert len(open_dataset(root, "val")) == 2


def test_coco2017_images_under_images_folder(tmp_path, layouts):
    root = layouts.coco2017(tmp_path / "coco")
    (root / "images").mkdir()
    (root / "train2017").rename(root / "images" / "train2017")
    assert open_dataset(root, "train").records[0].image.parent == root / "images" / "train2017"


def test_roboflow_coco_export(tmp_path, write_image):
    for split in ("train", "valid"):
        write_image(tmp_path / split / "a_jpg.rf.1.jpg", 64, 48)
        (tmp_path / split / "_annotations.coco.json").write_text(json.dumps({
            "images": [{"id": 0, "file_name": "a_jpg.rf.1.jpg", "width": 64, "height": 48}],
            "annotations": [{"id": 0, "image_id": 0, "category_id": 1, "bbox": [1, 1, 9, 9],
                             "area": 81, "iscrowd": 0, "segmentation": []}],
            "categories": [{"id": 0, "name": "pets", "supercategory": "none"},
                           {"id": 1, "name": "cat", "supercategory": "pets"}]}))
    assert detect_format(tmp_path, "train") == "coco"
    assert list_splits(tmp_path, "coco") == ["train", "valid"]
    assert open_dataset(tmp_path, "val").records[0].labels.tolist() == [1]


# -- Pascal VOC 2012 ---------------------------------------------------------------------------

def test_voc2012_tree_with_difficult_truncated_parts_and_float_corners(tmp_path, layouts):
    root = layouts.voc2012(tmp_path)
    assert detect_format(root, "train") == "voc"
    assert list_splits(root, "voc") == ["train", "val", "trainval"]  # not person_train
    train = open_dataset(root, "train")
    assert train.class_names == ("car", "horse", "person")
    first = train.records[0]
    # Every object (difficult and truncated too), not the person's head part.
    assert first.labels.tolist() == [2, 1]
    np.testing.assert_allclose(first.boxes[0], [9.5 / 64, 3.5 / 48, 30.5 / 64, 40.5 / 48],
                               atol=1e-6)
    assert len(open_dataset(root, "trainval")) == 4
