"""``data inspect``'s report: counts, size quantiles, the seed's smallest priors, problems."""

from __future__ import annotations

import numpy as np
import pytest

from objectives.data import open_dataset
from objectives.data.report import (
    QUANTILES,
    build_report,
    seed_priors,
    sides_per_split,
    write_histogram,
)
from search_space.baselines import seed_anchors

KEYS = {"format", "splits", "classes", "objects_per_class", "box_side_quantiles", "problems"}


def test_seed_priors_are_the_finest_maps_scales():
    finest = seed_anchors()[0]
    expected = [finest.min_scale, np.sqrt(finest.min_scale * finest.max_scale)]
    assert seed_priors().sides == pytest.approx(expected, abs=1e-6)


def test_report_of_a_roboflow_export(tmp_path, layouts):
    root = layouts.roboflow_yolo(tmp_path / "ds")
    datasets = {s: open_dataset(root, s, on_error="skip") for s in ("train", "val")}
    report = build_report(root, "yolo", datasets, resolution=128)
    assert report.keys() >= KEYS
    train = report["splits"]["train"]
    assert (train["images"], train["objects"], train["background_images"]) == (3, 3, 1)
    assert train["objects_per_class"] == {"car": 1, "dog": 1, "person": 1}
    assert report["objects_per_class"] == {"car": 2, "dog": 2, "person": 2}
    # sqrt(w * h) of the six boxes, as fractions of the side.
    sides = np.sqrt([0.25 * 0.5, 0.2 * 0.2, 0.5 * 0.5, 0.2 * 0.4, 0.2 * 0.2, 0.3 * 0.3])
    q = report["box_side_quantiles"]
    assert q["quantiles"] == list(QUANTILES)
    assert q["fraction"] == pytest.approx(np.quantile(sides, QUANTILES), abs=1e-5)
    assert q["pixels"] == pytest.approx(np.quantile(sides, QUANTILES) * 128, abs=0.01)
    priors = report["seed_priors"]
    assert priors["pixels"] == pytest.approx([s * 128 for s in priors["fraction"]], abs=0.01)
    smallest = min(priors["fraction"])
    assert priors["objects_under_iou_0_5"] == int(np.sum(sides < smallest / np.sqrt(2)))
    assert report["problems"] == []


def test_problems_are_listed_not_raised(tmp_path, layouts):
    root = layouts.roboflow_yolo(tmp_path / "ds")
    (root / "train" / "labels" / "street2_jpg.rf.3d4e5f.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    (root / "train" / "labels" / "ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    datasets = {"train": open_dataset(root, "train", on_error="skip")}
    problems = build_report(root, "yolo", datasets, 256)["problems"]
    assert sorted(p["kind"] for p in problems) == ["missing image", "unknown class"]
    assert all(p["split"] == "train" for p in problems)


def test_histogram_is_a_png_written_atomically(tmp_path, layouts):
    root = layouts.coco2017(tmp_path / "coco")
    datasets = {s: open_dataset(root, s) for s in ("train", "val")}
    report = build_report(root, "coco", datasets, 192)
    path = write_histogram(tmp_path / "out" / "sizes.png", report, sides_per_split(datasets))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["sizes.png"]
