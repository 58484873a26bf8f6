from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from objectives.data import DatasetError, open_dataset
from objectives.data.demo import DEMO_CLASSES, DEMO_SIZES, DemoConfig, demo_dataset, write_demo


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    config = DemoConfig(num_train=6, num_val=2, image_size=96, seed=5)
    a = write_demo(tmp_path / "a", config)
    b = write_demo(tmp_path / "b", config)
    c = write_demo(tmp_path / "c", DemoConfig(num_train=6, num_val=2, image_size=96, seed=6))
    assert _digest(a) == _digest(b) != _digest(c)


def test_parallel_drawing_gives_the_same_images_as_serial(tmp_path):
    # 64+ images are drawn by two processes; the first images must not depend on that.
    many = write_demo(tmp_path / "many", DemoConfig(num_train=70, num_val=1, image_size=64))
    few = write_demo(tmp_path / "few", DemoConfig(num_train=3, num_val=1, image_size=64))
    for name in ("00000.jpg", "00002.jpg"):
        assert (many / "train" / name).read_bytes() == (few / "train" / name).read_bytes()


def test_demo_loads_through_the_coco_loader_with_what_detection_needs(demo_dir):
    train = open_dataset(demo_dir, "train")
    val = open_dataset(demo_dir, "val")
    assert train.class_names == DEMO_CLASSES and len(train) == 16 and len(val) == 8
    assert not train.problems and not val.problems
    counts = [len(r.labels) for r in train.records + val.records]
    assert min(counts) >= 1 and np.mean(counts) >= 3  # several objects per image
    labels = np.concatenate([r.labels for r in train.records])
    assert set(labels.tolist()) == {0, 1, 2}
    boxes = np.concatenate([r.boxes for r in train.records])
    extent = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert extent.min() < 0.1 and extent.max() > 0.25  # small and large objects
    assert ((boxes >= 0) & (boxes <= 1)).all()


def test_default_and_small_sizes():
    assert DEMO_SIZES["small"].num_train < DEMO_SIZES["default"].num_train
    assert DEMO_SIZES["default"].num_train >= 1000 and DEMO_SIZES["default"].image_size >= 256


def test_refuses_a_non_empty_directory_and_leaves_it_alone(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not an empty directory"):
        write_demo(tmp_path / "out", DemoConfig(num_train=1, num_val=1, image_size=64))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left behind


def test_cache_is_drawn_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYNAS_CACHE", str(tmp_path))
    path = demo_dataset("small", seed=1)
    assert path.parent == tmp_path and (path / "val.json").is_file()
    stamp = (path / "train.json").stat().st_mtime_ns
    assert demo_dataset("small", seed=1) == path
    assert (path / "train.json").stat().st_mtime_ns == stamp
    with pytest.raises(DatasetError, match="'huge'"):
        demo_dataset("huge")
