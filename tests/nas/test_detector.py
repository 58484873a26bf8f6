from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from nas.detector import Detector, DetectorError, Quantisation, load_detector
from nas.export.files import EXPORT_FORMAT, LAYOUT
from search_space.detection import Detections, PostProcess, iou_matrix, normalise, postprocess
from search_space.spec import ModelSpec

# Tests marked slow need the real int8 file: the session fixture converts it once (~10 s).
slow = pytest.mark.slow


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _matched(reference: Detections, other: Detections, iou: float = 0.5) -> int:
    """How many reference detections have their own counterpart in ``other`` (same label,
    IoU > ``iou``), pairing greedily in the reference's score order."""
    free = np.ones(len(other), bool)
    found = 0
    for box, label in zip(reference.boxes, reference.labels, strict=True):
        candidates = np.flatnonzero(free & (other.labels == label))
        if not len(candidates):
            continue
        overlaps = iou_matrix(box[None], other.boxes[candidates])[0]
        if overlaps.max() > iou:
            free[candidates[overlaps.argmax()]] = False
            found += 1
    return found


def _match_rate(reference: list[Detections], other: list[Detections]) -> float:
    total = sum(len(d) for d in reference)
    return sum(_matched(r, o) for r, o in zip(reference, other, strict=True)) / total


@pytest.fixture(scope="module")
def scenes(make_scenes):
    return make_scenes(6, 96, seed=3)  # not the BN or calibration images


@pytest.fixture(scope="module")
def detector(tiny_int8_export):
    return load_detector(tiny_int8_export[0])


@pytest.fixture(scope="module")
def float_raw(tiny_int8_export, scenes):
    net = tiny_int8_export[1]
    with torch.no_grad():
        boxes, logits = net(torch.from_numpy(normalise(scenes)))
    return boxes.numpy(), logits.numpy()


# --- the real int8 file -------------------------------------------------------------------

@slow
def test_load_from_directory_or_file(tiny_int8_export, detector):
    out, net = tiny_int8_export
    from_file = load_detector(out / LAYOUT.model)
    for d in (detector, from_file):
        assert d.input_size == 96 and d.num_classes == 2
        assert d.class_names == ("person", "car")
        np.testing.assert_array_equal(d.priors, net.priors.numpy())
    # [-1, 1] inputs use the whole int8 range.
    assert detector.input_quantisation.scale == pytest.approx(2 / 255, rel=0.02)


@slow
def test_raw_matches_float_model(detector, float_raw, scenes):
    boxes, logits = detector.raw(scenes)
    ref_boxes, ref_logits = float_raw
    assert boxes.shape == ref_boxes.shape == (6, 178, 4) and boxes.dtype == np.float32
    assert logits.shape == ref_logits.shape == (6, 178, 3) and logits.dtype == np.float32
    assert _cosine(boxes, ref_boxes) > 0.98
    assert _cosine(logits, ref_logits) > 0.98
    for k in range(len(scenes)):
        assert _cosine(boxes[k], ref_boxes[k]) > 0.96, k
        assert _cosine(logits[k], ref_logits[k]) > 0.96, k
    # The outputs depend on the image: another image's float outputs are clearly further
    # away, so the checks above cannot pass on a constant output.
    shifted = np.roll(np.arange(len(scenes)), 1)
    assert _cosine(logits, ref_logits[shifted]) < _cosine(logits, ref_logits) - 0.1
    assert _cosine(boxes, ref_boxes[shifted]) < _cosine(boxes, ref_boxes) - 0.1


@slow
def test_raw_of_no_images(detector):
    boxes, logits = detector.raw(np.zeros((0, 96, 96, 3), np.uint8))
    assert boxes.shape == (0, 178, 4) and logits.shape == (0, 178, 3)


@slow
def test_detect_is_postprocess_of_raw(detector, scenes):
    boxes, logits = detector.raw(scenes)
    for config in (None, PostProcess(score_threshold=0.5, max_detections=7)):
        detections = detector.detect(scenes, config)
        assert len(detections) == len(scenes)
        assert sum(len(d) for d in detections) > 0
        for d, b, c in zip(detections, boxes, logits, strict=True):
            expected = postprocess(b, c, detector.priors, config or PostProcess())
            np.testing.assert_array_equal(d.boxes, expected.boxes)
            np.testing.assert_array_equal(d.scores, expected.scores)
            np.testing.assert_array_equal(d.labels, expected.labels)


@slow
def test_int8_detections_match_float_model(tiny_int8_export, detector, float_raw, scenes):
    net = tiny_int8_export[1]
    # Keep the float model's most confident ~3 % of (prior, class) scores: untrained scores
    # crowd together, and a deployment keeps only the confident ones anyway.
    probs = np.exp(float_raw[1]) / np.exp(float_raw[1]).sum(-1, keepdims=True)
    config = PostProcess(score_threshold=float(np.quantile(probs[..., 1:], 0.97)),
                         max_detections=10)
    reference = net.detect(scenes, config)
    int8 = detector.detect(scenes, config)
    assert sum(len(d) for d in reference) >= 3 * len(scenes)  # enough to say something

    rate = _match_rate(reference, int8)
    # Control: the same matching against another image's int8 detections. Shared priors
    # and biases make some detections image-independent; the int8 file must do far better.
    control = _match_rate(reference, int8[1:] + int8[:1])
    assert rate >= 0.75, (rate, control)
    assert control <= min(0.5, rate - 0.25), (rate, control)

    # The float model's best detection of each image is found by the int8 file: same
    # class, box corners within 0.05 of the image side.
    found = 0
    for ref, got in zip(reference, int8, strict=True):
        same = got.labels == ref.labels[0]
        if same.any() and np.abs(got.boxes[same] - ref.boxes[0]).max(axis=1).min() <= 0.05:
            found += 1
    assert found >= len(scenes) - 1, found


@slow
@pytest.mark.parametrize(("shape", "dtype", "message"), [
    ((1, 64, 64, 3), np.uint8, "images of shape (1, 64, 64, 3): expected (N, 96, 96, 3) uint8"),
    ((96, 96, 3), np.uint8, "images of shape (96, 96, 3): expected (N, 96, 96, 3) uint8"),
    ((1, 3, 96, 96), np.uint8, "images of shape (1, 3, 96, 96)"),
    ((1, 96, 96, 3), np.float32, "images of dtype float32: expected (N, 96, 96, 3) uint8"),
])
def test_wrong_images_are_refused(detector, shape, dtype, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        detector.detect(np.zeros(shape, dtype))
    with pytest.raises(ValueError, match=re.escape(message)):
        detector.raw(np.zeros(shape, dtype))


def _copy_export(src, dst, **genome_changes):
    dst.mkdir()
    shutil.copy(src / LAYOUT.model, dst / LAYOUT.model)
    genome = json.loads((src / LAYOUT.genome).read_text())
    genome.update(genome_changes)
    (dst / LAYOUT.genome).write_text(json.dumps(genome))
    return dst


@slow
def test_output_names_are_checked_against_shapes(tiny_int8_export, tmp_path):
    out = tiny_int8_export[0]
    swapped = _copy_export(out, tmp_path / "swapped",
                           outputs={"boxes": "logits", "logits": "boxes"})
    with pytest.raises(DetectorError, match="are boxes and logits swapped"):
        load_detector(swapped)
    unknown = _copy_export(out, tmp_path / "unknown",
                           outputs={"boxes": "Identity", "logits": "logits"})
    with pytest.raises(DetectorError, match=re.escape(
            "no output tensor 'Identity' (for boxes); the file's outputs are ")):
        load_detector(unknown)


@slow
def test_spec_that_does_not_describe_the_file(tiny_int8_export, tiny_spec, tmp_path):
    out = tiny_int8_export[0]
    three = tiny_spec.to_dict() | {"num_classes": 3}
    other = _copy_export(out, tmp_path / "three", model=three,
                         class_names=["a", "b", "c"])
    with pytest.raises(DetectorError, match=re.escape(
            "output 'logits' named as logits has shape (1, 178, 3), expected (1, 178, 4)")):
        load_detector(other)
    bigger = tiny_spec.to_dict()
    bigger["genome"] = bigger["genome"] | {"resolution": 128}
    with pytest.raises(DetectorError, match=re.escape("expected one (1, 128, 128, 3)")):
        load_detector(_copy_export(out, tmp_path / "bigger", model=bigger))


@slow
def test_detector_needs_both_output_roles(tiny_int8_export, tiny_spec):
    path = tiny_int8_export[0] / LAYOUT.model
    with pytest.raises(DetectorError, match="must name 'boxes' and 'logits'"):
        Detector(path, tiny_spec, {"boxes": "boxes"})
    # With 3 classes both outputs would be (1, P, 4): only the names can tell them apart.
    three = ModelSpec(3, genome=tiny_spec.genome)
    with pytest.raises(DetectorError, match="both name 'boxes'"):
        Detector(path, three, {"boxes": "boxes", "logits": "boxes"})


def test_quantisation_rounds_clips_and_uses_the_zero_point():
    q = Quantisation(scale=0.5, zero_point=-3)
    x = np.array([-100.0, -1.0, -0.26, 0.0, 0.24, 1.0, 100.0], np.float32)
    np.testing.assert_array_equal(q.quantise(x), [-128, -5, -4, -3, -3, -1, 127])
    assert q.quantise(x).dtype == np.int8
    back = q.dequantise(np.array([-128, -3, 0, 127], np.int8))
    np.testing.assert_array_equal(back, [-62.5, 0.0, 1.5, 65.0])
    assert back.dtype == np.float32


# --- bad paths and files (no conversion needed) ----------------------------------------

def _export_dir(tmp_path, spec, tflite=b"not a flatbuffer at all", **changes):
    out = tmp_path / "export"
    out.mkdir()
    (out / LAYOUT.model).write_bytes(tflite)
    genome = {"format": EXPORT_FORMAT, "model": spec.to_dict(),
              "class_names": ["person", "car"],
              "outputs": {"boxes": "Identity", "logits": "Identity_1"}}
    genome.update(changes)
    (out / LAYOUT.genome).write_text(json.dumps(genome))
    return out


def _refused(path, message):
    with pytest.raises(DetectorError, match=re.escape(message)) as info:
        load_detector(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_path_and_directory_without_model(tmp_path):
    assert str(tmp_path / "nope") in _refused(tmp_path / "nope", "no such file or directory")
    _refused(tmp_path, f"{tmp_path}: no model_int8.tflite in this directory")


def test_missing_genome_json(tmp_path, tiny_spec):
    out = _export_dir(tmp_path, tiny_spec)
    (out / LAYOUT.genome).unlink()
    _refused(out, f"{out / 'genome.json'}: missing")
    _refused(out / LAYOUT.model, f"{out / 'genome.json'}: missing")


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON (Expecting property name enclosed in double quotes at line 1)"),
    ("[1, 2]", "format 'list', expected 'tinynas-export/1'"),
    ('{"format": "tinynas-export/0"}', "format 'tinynas-export/0', expected"),
    ('{"format": "tinynas-export/1", "model": {}}', "missing class_names, outputs"),
])
def test_invalid_genome_json(tmp_path, tiny_spec, text, message):
    out = _export_dir(tmp_path, tiny_spec)
    (out / LAYOUT.genome).write_text(text)
    assert str(out / LAYOUT.genome) in _refused(out, message)


@pytest.mark.parametrize(("changes", "message"), [
    ({"model": {"format": "tinynas-model/1", "num_classes": 2, "baseline": "nope"}},
     "nope"),
    ({"model": {"format": "other"}}, "not a tinynas model spec"),
    ({"class_names": ["person"]}, "class_names must be 2 strings"),
    ({"outputs": {"boxes": "Identity"}}, "outputs must map 'boxes' and 'logits'"),
    ({"outputs": ["Identity", "Identity_1"]}, "outputs must map 'boxes' and 'logits'"),
])
def test_invalid_export_content(tmp_path, tiny_spec, changes, message):
    out = _export_dir(tmp_path, tiny_spec, **changes)
    assert str(out / LAYOUT.genome) in _refused(out, message)


def test_classifier_is_not_a_detector(tmp_path, tiny_spec):
    classifier = ModelSpec(10, baseline="resnet8-cifar10")
    out = _export_dir(tmp_path, tiny_spec, model=classifier.to_dict(),
                      class_names=[f"c{i}" for i in range(10)])
    _refused(out, "resnet8-cifar10 is a classification network, not a detector")


def test_file_that_is_not_tflite(tmp_path, tiny_spec):
    out = _export_dir(tmp_path, tiny_spec, tflite=b"\xab\xcd" * 64)
    _refused(out, f"{out / 'model_int8.tflite'}: not a usable TFLite file (")
