from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from estimators import tflite
from estimators.deploy import deployed
from nas.export import memory_plan, rewrite, runtimes
from nas.export.carray import read_c_array
from nas.export.files import LAYOUT
from nas.export.pipeline import PARITY_MIN_COSINE
from search_space.genome import AnchorGene, Genome, HeadGene, StageGene
from search_space.spec import ModelSpec

TINYNAS = [sys.executable, "-m", "nas.cli"]
KEYS = {"tflite_bytes", "tflite_bytes_estimated", "tflm_arena_bytes", "arena_bytes_estimated",
        "flash_bytes_total", "ram_bytes_total", "litert_ms", "tflm_ms", "parity_cosine_boxes",
        "parity_cosine_scores", "target", "fits", "out_dir"}


def tiny_genome() -> Genome:
    # Every block type and both kernels, 96 px, SSD head: small enough for a CI export.
    stages = (StageGene(0.25, 1, "lb", 3), StageGene(0.25, 1, "dlb", 5),
              StageGene(0.25, 2, "dlb_skip", 3), StageGene(0.25, 1, "lb", 5))
    anchors = (AnchorGene(0.2, 0.5, (2.0,)), AnchorGene(0.5, 0.8, ()),
               AnchorGene(0.8, 1.0, (2.0,)))
    return Genome(96, stages, ((3, 2), (4, 1)), HeadGene("ssd", (64,), anchors))


def tinynas(*argv: str, cwd: Path | None = None,
            preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TINYNAS, *argv], capture_output=True, text=True, check=False,
                          timeout=600, cwd=cwd, preexec_fn=preexec)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, dict, Genome]:
    root = tmp_path_factory.mktemp("export")
    genome_file = root / "tiny.json"
    genome_file.write_text(tiny_genome().to_json())
    out = root / "out"
    result = tinynas("export", "--genome", str(genome_file), "--num-classes", "2", "--out",
                     str(out), "--target", "stm32h7", "--flash", "4MiB", "--ram", "4MiB",
                     "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout), tiny_genome()


@pytest.mark.slow
def test_export_writes_every_file_and_the_json_keys(exported):
    out, card, _ = exported
    assert sorted(p.name for p in out.iterdir()) == sorted(LAYOUT.files)
    assert card.keys() >= KEYS
    assert card["out_dir"] == str(out) and card["target"] == "stm32h7" and card["fits"]
    assert json.loads((out / LAYOUT.card_json).read_text())["tflite_bytes"] == \
        card["tflite_bytes"]
    assert "measured" in (out / LAYOUT.card_markdown).read_text()
    assert not list(out.parent.glob(".out.*")), "temporary directory left behind"


@pytest.mark.slow
def test_the_int8_file_runs_in_both_runtimes_and_matches_the_float_model(exported):
    out, card, _ = exported
    data = (out / LAYOUT.model).read_bytes()
    assert card["tflite_bytes"] == len(data)
    assert card["parity_cosine_boxes"] >= PARITY_MIN_COSINE
    assert card["parity_cosine_scores"] >= PARITY_MIN_COSINE
    assert card["litert_ms"] > 0 and card["tflm_ms"] > 0
    assert card["tflm_arena_bytes"] == runtimes.tflm_arena(data).total_bytes
    assert card["tflm_vs_litert_max_lsb"] <= 4
    # full int8: int8 input and outputs, named
    model = tflite.load(data)
    sg = model.subgraphs[0]
    assert [sg.tensors[i].name for i in sg.inputs] == [b"images"]
    assert sorted(sg.tensors[i].name for i in sg.outputs) == [b"boxes", b"logits"]
    assert {sg.tensors[i].type for i in [*sg.inputs, *sg.outputs]} == {9}  # INT8


@pytest.mark.slow
def test_real_op_list_is_the_one_the_estimators_model(exported):
    out, _, genome = exported
    real = rewrite.op_histogram((out / LAYOUT.model).read_bytes())
    ours = Counter(op.kind for op in deployed(ModelSpec(2, genome=genome).lower().graph).ops)
    assert real == dict(ours)


@pytest.mark.slow
def test_estimates_are_within_the_goals_on_the_export(exported):
    _, card, _ = exported
    assert abs(card["tflite_bytes_rel_error"]) <= 0.02
    assert abs(card["arena_bytes_rel_error"]) <= 0.02
    assert card["arena_bytes_estimated"] >= card["tflm_arena_bytes"] - 1024


@pytest.mark.slow
def test_export_carries_the_offline_plan_tflm_allocates(exported):
    out, card, _ = exported
    model = tflite.load((out / LAYOUT.model).read_bytes())
    assert memory_plan.read(model) is not None
    assert card["offline_plan"] and card["offline_plan_outputs_identical"]
    assert card["tflm_arena_head_bytes"] == card["arena_head_planned_bytes"]
    assert card["arena_head_floor_bytes"] <= card["tflm_arena_head_bytes"] \
        <= card["tflm_arena_head_default_bytes"]
    assert "offline memory plan" in (out / LAYOUT.card_markdown).read_text()


@pytest.mark.slow
def test_no_offline_plan_leaves_the_arena_to_tflm(tmp_path):
    genome_file = tmp_path / "tiny.json"
    genome_file.write_text(tiny_genome().to_json())
    out = tmp_path / "out"
    result = tinynas("export", "--genome", str(genome_file), "--num-classes", "2", "--out",
                     str(out), "--target", "stm32h7", "--flash", "4MiB", "--ram", "4MiB",
                     "--no-offline-plan", "--json")
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    assert memory_plan.read(tflite.load((out / LAYOUT.model).read_bytes())) is None
    assert not card["offline_plan"] and card["arena_head_planned_bytes"] is None
    assert card["tflm_arena_head_bytes"] == card["tflm_arena_head_default_bytes"]
    # the estimate follows: TFLM's greedy plan, and a file without the plan's bytes
    assert abs(card["arena_bytes_rel_error"]) <= 0.02
    assert abs(card["tflite_bytes_rel_error"]) <= 0.02


@pytest.mark.slow
def test_c_array_round_trips_to_the_same_bytes(exported):
    out, card, _ = exported
    assert read_c_array(out / LAYOUT.c_source) == (out / LAYOUT.model).read_bytes()
    header = (out / LAYOUT.c_header).read_text()
    assert str(card["arena_bytes_estimated_target"]) in header


@pytest.mark.slow
def test_detector_equals_the_pytorch_post_processing(exported):
    from nas.detector import load_detector
    from nas.export.representative import synthetic
    from search_space.detection import PostProcess, postprocess

    out, _, genome = exported
    detector = load_detector(out)
    images = synthetic(96, 4, seed=5)
    raw_boxes, raw_logits = detector.raw(images)
    config = PostProcess(score_threshold=0.05)
    priors = ModelSpec(2, genome=genome).lower().priors()
    for dets, b, c in zip(detector.detect(images, config), raw_boxes, raw_logits, strict=True):
        expected = postprocess(b, c, priors, config)
        np.testing.assert_array_equal(dets.labels, expected.labels)
        np.testing.assert_allclose(dets.boxes, expected.boxes)


def test_bad_genome_is_one_line_and_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"resolution": 100}))
    out = tmp_path / "out"
    result = tinynas("export", "--genome", str(bad), "--out", str(out))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "bad.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_missing_checkpoint_is_one_line(tmp_path):
    result = tinynas("export", "etn-w0.35-ssdlite", "--checkpoint", str(tmp_path / "no.pt"),
                     "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "no.pt" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unwritable_directory_is_one_line(tmp_path, as_ordinary_user):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = tinynas("export", "etn-w0.35-ssdlite", "--out", str(locked / "out"),
                         preexec=as_ordinary_user)
    finally:
        locked.chmod(0o700)
    assert result.returncode == 2, result.stderr
    assert "is not writable" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert list(locked.iterdir()) == []


def test_output_directory_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "out"
    target.write_text("x")
    result = tinynas("export", "etn-w0.35-ssdlite", "--out", str(target))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert target.read_text() == "x"


def test_missing_parent_directory_is_refused(tmp_path):
    result = tinynas("export", "etn-w0.35-ssdlite", "--out", str(tmp_path / "a" / "b"))
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_study_without_a_search_storage_is_one_line(tmp_path):
    # --study/--trial export a search trial (tests/nas/search/test_views.py); with no search
    # storage under --runs-dir the error names it, and nothing is written.
    result = tinynas("export", "--study", "s", "--trial", "1", "--out", str(tmp_path / "o"),
                     "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
