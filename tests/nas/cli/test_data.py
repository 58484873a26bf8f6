"""``data inspect`` and ``--classes`` through the command line, on datasets written in each
tool's own layout (``tests/objectives/data/layouts.py``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna
import pytest

from nas.cli.export import training_split_images
from objectives.checkpoint import load_checkpoint
from objectives.data import open_dataset
from search_space.baselines import seed_genome

INSPECT_KEYS = {"format", "splits", "classes", "objects_per_class", "box_side_quantiles",
                "problems"}
FAST = ["--epochs", "1", "--batch-size", "2", "--workers", "0", "--threads", "1"]
# (writer, format, splits inspect finds)
LAYOUTS = [("roboflow_yolo", "yolo", ["train", "val", "test"]),
           ("ultralytics_yaml", "yolo", ["train", "val"]),
           ("coco2017", "coco", ["train", "val"]),
           ("voc2012", "voc", ["train", "val", "trainval"])]


sys.path.insert(0, str(Path(__file__).parents[2] / "objectives" / "data"))
import layouts  # noqa: E402  (the dataset writers, shared with the loader tests)


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("genome") / "seed35.json"
    path.write_text(seed_genome(0.35).to_json())
    return path


@pytest.mark.parametrize(("writer", "fmt", "splits"), LAYOUTS)
def test_inspect_every_layout(tmp_path, cli, monkeypatch, writer, fmt, splits):
    monkeypatch.chdir(tmp_path)
    data = getattr(layouts, writer)(tmp_path / "ds")
    code, stdout, err = cli("data", "inspect", str(data), "--resolution", "160", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report.keys() >= INSPECT_KEYS
    assert report["format"] == fmt and list(report["splits"]) == splits
    assert report["resolution"] == 160 and report["problems"] == []
    assert sum(report["objects_per_class"].values()) == sum(
        s["objects"] for s in report["splits"].values())
    plot = Path(report["plot"])
    assert plot == Path(f"{data.resolve().name}-sizes.png") and plot.is_file()


def test_inspect_one_split_and_a_class_subset(tmp_path, cli):
    data = layouts.roboflow_yolo(tmp_path / "ds")
    code, stdout, err = cli("data", "inspect", str(data), "--split", "valid", "--classes",
                            "person,car", "--plot", "none", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert list(report["splits"]) == ["valid"] and report["classes"] == ["person", "car"]
    assert report["splits"]["valid"]["left_out_objects"] == {"dog": 1}
    assert "plot" not in report and not list(tmp_path.glob("*.png"))


def test_inspect_human_output(tmp_path, cli):
    data = layouts.coco2017(tmp_path / "coco")
    code, stdout, err = cli("data", "inspect", str(data), "--plot", str(tmp_path / "s.png"))
    assert code == 0, err
    for text in ("person", "background images", "p50", "smallest priors of etn-w0.35-ssdlite",
                 "no problems found", f"histogram: {tmp_path / 's.png'}"):
        assert text in stdout
    assert (tmp_path / "s.png").is_file()


@pytest.mark.parametrize(("writer", "_fmt", "_splits"), LAYOUTS)
def test_train_a_class_subset_on_every_layout(tmp_path, cli, genome, writer, _fmt, _splits):
    data = getattr(layouts, writer)(tmp_path / "ds")
    out = tmp_path / "run"
    # Training needs 2 images: only the VOC tree keeps 2 with objects of person or car.
    drop = writer == "voc2012"
    code, stdout, err = cli("train", "--genome", str(genome), "--resolution", "96", "--data",
                            str(data), "--classes", "person,car", "--out", str(out), "--json",
                            *(["--drop-empty"] if drop else []), *FAST)
    assert code == 0, err
    row = json.loads(stdout)
    assert list(row["per_class_ap50"]) == ["person", "car"]
    assert "left out" in err and "objects of" in err  # said once per split, not an error
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt.class_names == ("person", "car") and ckpt.data["drop_empty"] is drop
    # The export calibrates on the training split as training read it (with --drop-empty:
    # no image without objects).
    images = training_split_images(ckpt)
    kept = {r.image for r in open_dataset(data, "train", subset=["person", "car"],
                                          drop_empty=drop).records}
    assert images and set(images) == kept


def test_evaluate_scores_a_subset_of_the_models_classes(tmp_path, cli, genome):
    data = layouts.coco2017(tmp_path / "coco")
    out = tmp_path / "run"
    code, _, err = cli("train", "--genome", str(genome), "--resolution", "96", "--data",
                       str(data), "--out", str(out), "--val-split", "none", *FAST)
    assert code == 0, err
    code, stdout, err = cli("evaluate", str(out / "last.pt"), "--data", str(data), "--classes",
                            "car", "--json")
    assert code == 0, err
    assert list(json.loads(stdout)["per_class_ap50"]) == ["car"]
    code, _, err = cli("evaluate", str(out / "last.pt"), "--data", str(data), "--classes",
                       "zebra")
    assert code == 2 and "'zebra' is not a class of" in err and "'person', 'car', 'dog'" in err
    code, _, err = cli("train", "--out", str(out), "--resume", "--classes", "car")
    assert code == 2 and "--classes cannot change on --resume" in err


@pytest.mark.slow
def test_search_keeps_the_class_subset_in_its_study(tmp_path, cli):
    data = layouts.voc2012(tmp_path / "voc")
    storage = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = cli("search", "--target", "stm32h7", "--trials", "1", "--proxy", "params",
                       "--quiet", "--data", str(data), "--classes", "person,car",
                       "--drop-empty", "--storage", storage, "--runs-dir", str(tmp_path / "r"),
                       "--json")
    assert code == 0, err
    study = optuna.load_study(study_name="search", storage=storage)
    config = study.user_attrs["tinynas"]
    assert config["class_names"] == ["person", "car"] and config["drop_empty"] is True
    assert config["num_classes"] == 2


def test_export_calibrates_on_the_listed_training_images(tmp_path, tiny_spec):
    from estimators.estimate import Budgets
    from estimators.targets import get_target
    from nas.export import pipeline

    data = layouts.voc2012(tmp_path / "voc")
    files = tuple(r.image for r in open_dataset(data, "train", subset=["car"],
                                                drop_empty=True).records)
    request = pipeline.ExportRequest(tiny_spec, get_target("stm32h7"), Budgets(1 << 20, 1 << 18),
                                     tiny_spec.build().eval(), ("person", "car"), "untrained",
                                     calib_dir=data, calib_files=files)
    images, info = pipeline.calibration_images(request)
    assert images.shape == (len(files), 96, 96, 3) and info["images"] == len(files) == 1
    assert info["source"] == str(data)
