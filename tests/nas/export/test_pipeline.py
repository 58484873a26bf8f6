"""nas.export.pipeline: one export, called as the library (the CLI's own tests run it too).

The slow tests share one conversion of the tiny genome (``pipeline.convert`` is wrapped to run
once per module): what they check is what the pipeline does with a converted file.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from estimators.estimate import Budgets
from estimators.targets import get_target
from nas.detector import load_detector
from nas.export import pipeline
from nas.export.card import card_json
from nas.export.convert import Converted
from nas.export.files import LAYOUT, check_genome
from nas.export.memory_plan import OfflinePlanError
from search_space.model import as_if_trained
from search_space.spec import ModelSpec

MIB = 1 << 20


def _request(spec: ModelSpec, **changes: object) -> pipeline.ExportRequest:
    request = pipeline.ExportRequest(spec, get_target("stm32h7"), Budgets(4 * MIB, 4 * MIB),
                                     as_if_trained(spec.build()).eval(), ("person", "car"),
                                     "untrained", latency_runs=0)
    return dataclasses.replace(request, **changes)


# -- fast: the steps around the conversion ---------------------------------------------------
def _figures(boxes: float | None, scores: float) -> dict[str, float | None]:
    return {"parity_cosine_boxes": boxes, "parity_cosine_scores": scores}


def test_parity_below_the_threshold_is_refused_naming_the_output():
    threshold = pipeline.PARITY_MIN_COSINE
    pipeline.check_parity(_figures(threshold, 1.0))
    pipeline.check_parity(_figures(None, threshold))  # a classifier has no boxes
    with pytest.raises(pipeline.ParityError, match=r"parity_cosine_boxes = 0\.5000"):
        pipeline.check_parity(_figures(0.5, 1.0))
    with pytest.raises(pipeline.ParityError, match="parity_cosine_scores"):
        pipeline.check_parity(_figures(None, threshold - 1e-6))
    assert pipeline.ParityError in pipeline.EXPORT_FAILURES


def test_representative_images_come_from_the_folder_the_files_or_synthetic_scenes(
        tmp_path, tiny_spec):
    folder = tmp_path / "calib"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(("a.png", "b.jpg", "sub/c.png")):
        Image.new("RGB", (40 + i, 30), (i * 80, 10, 200)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")

    images, info = pipeline.calibration_images(_request(tiny_spec, calib_dir=folder,
                                                        calib_count=2))
    assert images.shape == (2, 96, 96, 3) and images.dtype == np.uint8
    assert info == {"source": str(folder), "images": 2}

    files = (folder / "b.jpg", folder / "sub" / "c.png")
    images, info = pipeline.calibration_images(_request(tiny_spec, calib_files=files))
    assert images.shape == (2, 96, 96, 3) and info == {"source": str(folder), "images": 2}

    images, info = pipeline.calibration_images(_request(tiny_spec, calib_count=3))
    again, _ = pipeline.calibration_images(_request(tiny_spec, calib_count=3))
    assert images.shape == (3, 96, 96, 3) and np.array_equal(images, again)  # deterministic
    assert info["source"].startswith("synthetic scenes") and info["images"] == 3


# -- slow: one real conversion ----------------------------------------------------------------
_CONVERTED: dict[bool, Converted] = {}


@pytest.fixture
def convert_once(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pipeline.convert

    def once(net, images, workdir: Path, offline_plan: bool = True) -> Converted:
        if offline_plan not in _CONVERTED:
            _CONVERTED[offline_plan] = real(net, images, workdir, offline_plan)
        return _CONVERTED[offline_plan]

    monkeypatch.setattr(pipeline, "convert", once)


@pytest.mark.slow
def test_run_writes_the_export_and_returns_its_card(tmp_path, tiny_spec, convert_once):
    (tmp_path / "exports").mkdir()
    out = tmp_path / "exports" / "tiny"
    steps: list[str] = []
    result = pipeline.run(_request(tiny_spec), out, steps.append)

    assert steps[0] == "calibration images" and steps[-1] == "writing files"
    assert sorted(p.name for p in out.iterdir()) == sorted(LAYOUT.files)
    assert [p.name for p in out.parent.iterdir()] == ["tiny"]  # no stage left beside it
    assert json.loads((out / LAYOUT.card_json).read_text()) == json.loads(
        json.dumps(card_json(result)))
    data = (out / LAYOUT.model).read_bytes()
    assert result["tflite_bytes"] == len(data) == len(_CONVERTED[True].tflite)
    assert (out / LAYOUT.onnx).read_bytes() == _CONVERTED[True].onnx
    genome = check_genome(json.loads((out / LAYOUT.genome).read_text()))
    assert ModelSpec.from_dict(genome["model"]) == tiny_spec
    assert genome["class_names"] == ["person", "car"]

    assert result["parity_cosine_boxes"] >= pipeline.PARITY_MIN_COSINE
    assert result["parity_cosine_scores"] >= pipeline.PARITY_MIN_COSINE
    assert result["litert_ms"] is None and result["tflm_ms"] is None  # latency_runs=0
    # The plan the file carries is what TFLite Micro allocated, and no worse than its own.
    assert result["offline_plan"] and result["offline_plan_outputs_identical"]
    assert result["arena_head_planned_bytes"] == result["tflm_arena_head_bytes"] \
        <= result["tflm_arena_head_default_bytes"]
    assert result["arena_head_floor_bytes"] <= result["tflm_arena_head_bytes"]
    assert result["fits"] and result["violations"] == []
    assert result["calibration"]["images"] == pipeline.ExportRequest.calib_count
    assert load_detector(out).detect(np.zeros((1, 96, 96, 3), np.uint8))  # LiteRT runs it


@pytest.mark.slow
def test_a_failed_parity_check_writes_nothing(tmp_path, tiny_spec, convert_once, monkeypatch):
    monkeypatch.setattr(pipeline, "PARITY_MIN_COSINE", 1.01)  # no int8 file reaches it
    out = tmp_path / "tiny"
    with pytest.raises(pipeline.ParityError, match="nothing was written"):
        pipeline.run(_request(tiny_spec), out)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_memory_plan_check_refuses_a_head_the_plan_does_not_give(tmp_path, tiny_spec,
                                                                    convert_once):
    request = _request(tiny_spec)
    images, _ = pipeline.calibration_images(request)
    converted = pipeline.convert(request.net, images, tmp_path)
    plan = converted.memory_plan
    assert plan is not None
    with pytest.raises(OfflinePlanError, match="did not use the plan"):
        pipeline.check_memory_plan(converted, {"tflm_arena_head_bytes": plan.head_bytes + 16},
                                   images)
    # Without a plan only the default arena and the floor are reported.
    figures = pipeline.check_memory_plan(dataclasses.replace(converted, memory_plan=None),
                                         {}, images)
    assert figures["offline_plan"] is False and figures["arena_head_planned_bytes"] is None
    assert 0 < figures["arena_head_floor_bytes"] <= figures["tflm_arena_head_default_bytes"]
