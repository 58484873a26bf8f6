"""Class subsets on every layout: order kept, other classes' objects dropped and counted."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from objectives.data import DatasetError, open_dataset, select_classes, subset_summary
from objectives.data.classes import class_list_argument

WRITERS = ["roboflow_yolo", "ultralytics_yaml", "coco2017", "voc2012"]


def _counts(dataset) -> Counter:
    return Counter(dataset.class_names[k] for r in dataset.records for k in r.labels)


@pytest.mark.parametrize("writer", WRITERS)
def test_person_and_car_in_that_order_on_every_layout(tmp_path, layouts, writer):
    root = getattr(layouts, writer)(tmp_path / "ds")
    full = open_dataset(root, "train")
    subset = open_dataset(root, "train", subset=["person", "car"])
    assert subset.class_names == ("person", "car")
    assert len(subset) == len(full)  # images left without objects stay, as background
    before, after = _counts(full), _counts(subset)
    assert after == Counter({n: before[n] for n in ("person", "car") if before[n]})
    others = {n: c for n, c in before.items() if n not in ("person", "car")}
    assert dict(subset.dropped_objects) == others
    for old, new in zip(full.records, subset.records, strict=True):
        keep = np.isin([full.class_names[k] for k in old.labels], ["person", "car"])
        np.testing.assert_array_equal(new.boxes, old.boxes[keep])
    summary = subset_summary(subset)
    if others:
        assert f"left out {sum(others.values())} objects" in summary

    dropped = open_dataset(root, "train", subset=["person", "car"], drop_empty=True)
    assert all(len(r.labels) for r in dropped.records)
    assert dropped.dropped_images == sum(1 for r in subset.records if not len(r.labels))


@pytest.mark.parametrize("writer", WRITERS)
def test_a_name_the_dataset_lacks_names_its_classes(tmp_path, layouts, writer):
    root = getattr(layouts, writer)(tmp_path / "ds")
    full = open_dataset(root, "train")
    with pytest.raises(DatasetError) as info:
        open_dataset(root, "train", subset=["person", "zebra"])
    message = str(info.value)
    assert "no class 'zebra'" in message
    assert all(repr(n) in message for n in full.class_names)
    # A checkpoint's classes against a split that lacks one: no ground truth, no error.
    lenient = open_dataset(root, "train", subset=["person", "zebra"], require_subset=False)
    assert lenient.class_names == ("person", "zebra")


def test_crowd_regions_follow_the_subset(tmp_path, layouts):
    root = layouts.coco2017(tmp_path / "coco")
    subset = open_dataset(root, "train", subset=["dog", "person"])
    assert subset.records[1].crowd_labels.tolist() == [1]  # the person crowd, now id 1
    assert open_dataset(root, "train", subset=["dog"]).records[1].crowd_labels.tolist() == []


def test_drop_empty_can_leave_nothing(tmp_path, layouts):
    root = layouts.roboflow_yolo(tmp_path / "ds")
    with pytest.raises(DatasetError, match="no usable images with objects in split 'test'"):
        open_dataset(root, "test", subset=["car"], drop_empty=True)


def test_select_classes_twice_is_the_same_as_once(tmp_path, layouts):
    full = open_dataset(layouts.coco2017(tmp_path / "coco"), "train")
    once = select_classes(full, ["dog", "person"])
    twice = select_classes(select_classes(full, ["person", "dog", "car"]), ["dog", "person"])
    assert [r.labels.tolist() for r in once.records] == [r.labels.tolist()
                                                         for r in twice.records]


def test_classes_argument_is_names_or_a_file(tmp_path):
    assert class_list_argument("person,car") == ("person", "car")
    assert class_list_argument("person, traffic light") == ("person", "traffic light")
    path = tmp_path / "keep"
    path.write_text("car\n# comment\nperson\n")
    assert class_list_argument(str(path)) == ("car", "person")
    with pytest.raises(DatasetError, match="not found"):
        class_list_argument(str(tmp_path / "gone.txt"))
    with pytest.raises(DatasetError, match="'car' appears twice"):
        class_list_argument("car,person,car")
    with pytest.raises(DatasetError, match="empty name"):
        class_list_argument("car,,person")
