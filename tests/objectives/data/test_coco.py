from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from objectives.data import BrokenEntryError, DatasetError, load_coco, open_dataset

CATEGORIES = [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}]


def _coco(root: Path, write_image, annotations: list[dict], images: list[dict] | None = None,
          categories: list[dict] | None = None) -> Path:
    if images is None:
        images = [{"id": 1, "file_name": "a.png", "width": 200, "height": 100},
                  {"id": 2, "file_name": "b.png", "width": 50, "height": 50}]
        write_image(root / "train" / "a.png", 200, 100)
        write_image(root / "train" / "b.png", 50, 50)
    path = root / "train.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories or CATEGORIES}))
    return path


def _ann(i: int, image_id: int, cat: int, bbox: list[float]) -> dict:
    return {"id": i, "image_id": image_id, "category_id": cat, "bbox": bbox, "iscrowd": 0}


def test_boxes_are_normalised_corners_and_classes_follow_category_ids(tmp_path, write_image):
    _coco(tmp_path, write_image, [_ann(1, 1, 7, [20, 10, 100, 50]), _ann(2, 1, 3, [0, 0, 200, 100]),
                                  _ann(3, 2, 7, [5, 5, 10, 20])])
    ds = open_dataset(tmp_path, "train")
    assert ds.class_names == ("dog", "cat")  # ordered by category id: 3, 7
    first, second = ds.records
    np.testing.assert_allclose(first.boxes, [[0.1, 0.1, 0.6, 0.6], [0, 0, 1, 1]], atol=1e-6)
    assert first.labels.tolist() == [1, 0]
    assert (first.width, first.height) == (200, 100)
    np.testing.assert_allclose(second.boxes, [[0.1, 0.1, 0.3, 0.5]], atol=1e-6)
    sample = ds.sample(0)
    assert sample.image.shape == (100, 200, 3) and sample.image.dtype == np.uint8


def test_class_map_matches_categories_by_name(tmp_path, write_image):
    _coco(tmp_path, write_image, [_ann(1, 1, 7, [20, 10, 100, 50]), _ann(2, 1, 3, [0, 0, 9, 9])])
    ds = open_dataset(tmp_path, "train", class_names=["cat", "dog"])
    assert ds.records[0].labels.tolist() == [0, 1]


def test_crowd_annotations_and_images_without_objects(tmp_path, write_image):
    crowd = {**_ann(1, 1, 7, [20, 10, 100, 50]), "iscrowd": 1}
    _coco(tmp_path, write_image, [crowd])
    ds = open_dataset(tmp_path, "train")
    assert len(ds) == 2 and ds.num_objects == 0 and not ds.problems


BROKEN = [
    (_ann(11, 1, 7, [150, 10, 100, 50]), "box outside the image", "annotation id 11"),
    (_ann(12, 1, 7, [20, 10, 0, 50]), "zero-area box", "annotation id 12"),
    (_ann(13, 1, 99, [20, 10, 10, 10]), "unknown class", "annotation id 13"),
    (_ann(14, 1, 7, [20, "x", 10, 10]), "malformed entry", "annotation id 14"),
    (_ann(15, 42, 7, [20, 10, 10, 10]), "malformed entry", "annotation id 15"),
]


@pytest.mark.parametrize(("bad", "kind", "entry"), BROKEN)
def test_a_broken_annotation_fails_naming_file_and_entry(tmp_path, write_image, bad, kind,
                                                         entry):
    path = _coco(tmp_path, write_image, [_ann(1, 1, 7, [20, 10, 100, 50]), bad])
    with pytest.raises(BrokenEntryError) as info:
        open_dataset(tmp_path, "train")
    message = str(info.value)
    assert str(path) in message and entry in message and kind in message


@pytest.mark.parametrize(("bad", "kind", "entry"), BROKEN)
def test_skip_leaves_out_the_entry_with_a_warning(tmp_path, write_image, bad, kind, entry):
    _coco(tmp_path, write_image, [_ann(1, 1, 7, [20, 10, 100, 50]), bad])
    ds = open_dataset(tmp_path, "train", on_error="skip")
    assert ds.num_objects == 1
    assert [p.kind for p in ds.problems] == [kind]
    warnings = ds.warnings()
    assert "skipped 1 broken entries" in warnings[0] and entry in warnings[1]


def test_missing_and_unreadable_images(tmp_path, write_image):
    write_image(tmp_path / "train" / "a.png", 200, 100)
    (tmp_path / "train" / "broken.jpg").write_bytes(b"not a jpeg at all")
    images = [{"id": 1, "file_name": "a.png", "width": 200, "height": 100},
              {"id": 2, "file_name": "gone.png", "width": 50, "height": 50},
              {"id": 3, "file_name": "broken.jpg", "width": 50, "height": 50}]
    anns = [_ann(1, 1, 7, [20, 10, 100, 50]), _ann(2, 2, 7, [1, 1, 5, 5]),
            _ann(3, 3, 7, [1, 1, 5, 5])]
    _coco(tmp_path, write_image, anns, images=images)
    with pytest.raises(DatasetError, match=r"gone\.png.*image id 2.*missing image"):
        open_dataset(tmp_path, "train")
    ds = open_dataset(tmp_path, "train", on_error="skip")
    assert len(ds) == 1 and ds.num_objects == 1
    assert sorted(p.kind for p in ds.problems) == ["missing image", "unreadable file"]


def test_declared_size_must_match_the_file(tmp_path, write_image):
    write_image(tmp_path / "train" / "a.png", 200, 100)
    images = [{"id": 1, "file_name": "a.png", "width": 100, "height": 200}]
    _coco(tmp_path, write_image, [], images=images)
    with pytest.raises(DatasetError, match="declares 100x200 but the image file is 200x100"):
        open_dataset(tmp_path, "train")


@pytest.mark.parametrize(("text", "match"), [
    ("{not json", "not a readable COCO json"),
    ("[]", "json object"),
    ('{"images": [], "annotations": []}', "'categories'"),
])
def test_unreadable_json_fails_whatever_the_policy(tmp_path, text, match):
    path = tmp_path / "train.json"
    path.write_text(text)
    with pytest.raises(DatasetError, match=match):
        load_coco(path, tmp_path, on_error="skip")


def test_standard_coco_layout_is_found(tmp_path, write_image):
    write_image(tmp_path / "val2017" / "a.png", 64, 64)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps({
        "images": [{"id": 5, "file_name": "a.png"}], "categories": CATEGORIES,
        "annotations": [_ann(1, 5, 3, [0, 0, 32, 32])]}))
    ds = open_dataset(tmp_path, "val2017")
    assert ds.num_objects == 1 and ds.records[0].boxes[0, 2] == pytest.approx(0.5)
