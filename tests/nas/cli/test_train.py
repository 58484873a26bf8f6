from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from nas.cli.command import parse_duration
from nas.errors import UsageError
from objectives.data.demo import DemoConfig, write_demo
from search_space.baselines import seed_genome

EVAL_KEYS = {"map", "ap50", "ap75", "num_images", "per_class_ap50"}
TRAIN_KEYS = {"out_dir", "checkpoint", "epochs", "images_per_s", "wall_s", "final_loss"}
FAST = ["--epochs", "1", "--batch-size", "4", "--workers", "0", "--threads", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_demo(tmp_path_factory.mktemp("cli") / "demo",
                      DemoConfig(num_train=8, num_val=4, image_size=96, seed=2))


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("genome") / "seed35.json"
    path.write_text(seed_genome(0.35).to_json())
    return path


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)




def test_data_demo_writes_a_coco_dataset(tmp_path, cli):
    out = tmp_path / "demo"
    code, stdout, _ = cli("data", "demo", "--out", str(out), "--size", "small",
                          "--num-train", "5", "--num-val", "2", "--seed", "4", "--json")
    row = json.loads(stdout)
    assert code == 0 and row["out_dir"] == str(out) and row["num_train"] == 5
    assert row["classes"] == ["circle", "square", "triangle"]
    assert len(json.loads((out / "train.json").read_text())["images"]) == 5
    assert len(list((out / "val").iterdir())) == 2
    code, _, err = cli("data", "demo", "--out", str(out))
    assert code == 2 and "not an empty directory" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("argv", "needle"), [
    # No search has run in the (temporary) working directory: no ./runs/tinynas.db.
    (["train", "--study", "s", "--trial", "3", "--out", "X"], "does not exist"),
    (["train", "--study", "s", "--out", "X"], "--study and --trial go together"),
    (["train", "etn-w0.35-ssdlite", "--time-budget", "10", "--out", "X"], "'10'"),
    (["train", "etn-w0.35-ssdlite", "--time-budget", "5 min", "--out", "X"], "'5 min'"),
    (["train", "etn-w0.35-ssdlite", "--resolution", "128", "--out", "X", "--data", "D"],
     "--resolution 128"),
    (["train", "nope-net", "--out", "X"], "nope-net"),
    (["train", "--out", "X"], "exactly one model"),
    (["train", "etn-w0.35-ssdlite", "--data", "/nonexistent/d", "--out", "X"], "not found"),
    (["train", "etn-w0.35-ssdlite", "--optimizer", "adam", "--out", "X"], "adam"),
    (["train", "etn-w0.35-ssdlite", "--out", "X", "--resume"], "no checkpoint"),
    (["evaluate", "/nonexistent/last.pt"], "not found"),
    (["data"], "ACTION"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, cli, monkeypatch, data, argv, needle):
    monkeypatch.chdir(tmp_path)
    argv = [str(data) if a == "D" else a for a in argv]
    code, _, err = cli(*argv)
    assert code == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "X").exists()  # nothing half-written


def test_resolution_applies_to_baselines_only_through_a_genome(tmp_path, cli, data):
    code, _, err = cli("train", "etn-w0.35-ssdlite", "--resolution", "128", "--data",
                       str(data), "--out", str(tmp_path / "x"))
    assert code == 2 and "applies to --genome models" in err


def test_broken_annotations_name_the_entry_and_the_flag(tmp_path, cli, data):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "train").symlink_to(data / "train")
    anns = json.loads((data / "train.json").read_text())
    anns["annotations"][0]["bbox"][2] = 0
    (broken / "train.json").write_text(json.dumps(anns))
    code, _, err = cli("train", "etn-w0.35-ssdlite", "--data", str(broken), "--out",
                       str(tmp_path / "x"), *FAST)
    assert code == 2 and "annotation id 1" in err and "--bad-annotations skip" in err
    assert len(err.strip().splitlines()) == 1


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400 and parse_duration("1.5h") == 5400
    for bad in ("10", "", "m", "10x", "0s"):
        with pytest.raises(UsageError):
            parse_duration(bad)


@pytest.mark.slow
def test_train_then_evaluate_then_resume(tmp_path, cli, data, genome):
    out = tmp_path / "run"
    code, stdout, err = cli("train", "--genome", str(genome), "--resolution", "96",
                            "--data", str(data), "--out", str(out), "--json", *FAST)
    assert code == 0, err
    row = json.loads(stdout)
    assert row.keys() >= TRAIN_KEYS | EVAL_KEYS
    assert row["epochs"] == 1 and row["stopped_by"] == "epochs" and row["num_images"] == 4
    assert Path(row["checkpoint"]) == out / "last.pt" and (out / "summary.json").is_file()

    code, stdout, err = cli("evaluate", str(out / "last.pt"), "--data", str(data),
                            "--json")
    assert code == 0, err
    evaluation = json.loads(stdout)
    assert evaluation.keys() >= EVAL_KEYS
    assert evaluation["map"] == row["map"] and evaluation["input_size"] == 96
    assert set(evaluation["per_class_ap50"]) == {"circle", "square", "triangle"}

    code, stdout, err = cli("train", "--out", str(out), "--resume", "--json")
    assert code == 0, err
    assert json.loads(stdout)["stopped_by"] == "already-finished"
    code, _, err = cli("train", "--out", str(out), "--resume", "--epochs", "3")
    assert code == 2 and "epochs=3 differs" in err

    code, stdout, _ = cli("evaluate", str(out / "last.pt"), "--data", str(data))
    assert code == 0 and "AP50" in stdout


def test_evaluate_a_tflite_needs_the_export_module(tmp_path, cli, monkeypatch):
    # None in sys.modules makes the import fail, as it did before the export module existed.
    monkeypatch.setitem(sys.modules, "nas.detector", None)
    path = tmp_path / "m.tflite"
    path.write_bytes(b"")
    code, _, err = cli("evaluate", str(path))
    assert code == 2 and "int8 evaluation needs the export module" in err


def test_corrupt_checkpoint_is_one_line(tmp_path, cli):
    path = tmp_path / "last.pt"
    path.write_bytes(b"garbage")
    code, _, err = cli("evaluate", str(path))
    assert code == 2 and "last.pt' is not a readable checkpoint" in err
    assert len(err.strip().splitlines()) == 1
