"""train -> export --checkpoint -> evaluate the int8 file: the commands chained as a user would."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nas.export.files import LAYOUT
from objectives.data.demo import DemoConfig, write_demo
from search_space.baselines import seed_genome

TINYNAS = [sys.executable, "-m", "nas.cli"]


def tinynas(*argv: str) -> dict:
    result = subprocess.run([*TINYNAS, *argv, "--json"], capture_output=True, text=True,
                            check=False, timeout=900)
    assert result.returncode in (0, 1), result.stderr  # 1: export does not fit the budget
    return json.loads(result.stdout)


@pytest.mark.slow
def test_exported_checkpoint_evaluates_like_the_float_model(tmp_path):
    data = write_demo(tmp_path / "demo", DemoConfig(num_train=16, num_val=8, image_size=96,
                                                    seed=3))
    genome = tmp_path / "g.json"
    genome.write_text(seed_genome(0.35).to_json())
    run = tmp_path / "run"
    tinynas("train", "--genome", str(genome), "--resolution", "96", "--data", str(data),
            "--out", str(run), "--epochs", "2", "--batch-size", "8", "--workers", "0")
    # no --calib: the checkpoint's own training data calibrates the int8 file
    card = tinynas("export", "--checkpoint", str(run / "last.pt"), "--out", str(tmp_path / "x"),
                   "--target", "esp32s3")
    assert card["class_names"] == ["circle", "square", "triangle"]
    assert card["weights"].startswith("checkpoint")
    assert card["calibration"]["source"] == str(data.resolve())
    float_eval = tinynas("evaluate", str(run / "last.pt"), "--data", str(data))
    int8_eval = tinynas("evaluate", str(tmp_path / "x" / LAYOUT.model), "--data",
                        str(data))
    assert int8_eval["num_images"] == float_eval["num_images"] == 8
    assert set(int8_eval["per_class_ap50"]) == set(float_eval["per_class_ap50"])
    # two epochs on 16 images: low AP, but the int8 file must score what the float model does
    assert abs(int8_eval["ap50"] - float_eval["ap50"]) <= 0.05
    assert abs(int8_eval["map"] - float_eval["map"]) <= 0.05
