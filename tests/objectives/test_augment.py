from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from objectives.augment import (
    FULL,
    NO_AUGMENT,
    SSD_AUGMENT,
    AugmentConfig,
    augment,
    random_window,
    render,
    resize,
    window_boxes,
)
from objectives.data.dataset import Sample

RED, BLUE = (220, 30, 30), (30, 30, 220)


def _scene() -> Sample:
    """A 240x160 grey image with a red and a blue rectangle, boxed and labelled 0 and 1."""
    image = np.full((160, 240, 3), 110, np.uint8)
    boxes = np.array([[0.1, 0.2, 0.4, 0.7], [0.55, 0.1, 0.95, 0.5]], np.float32)
    for (x1, y1, x2, y2), colour in zip(boxes, (RED, BLUE), strict=True):
        image[round(y1 * 160):round(y2 * 160), round(x1 * 240):round(x2 * 240)] = colour
    return Sample(image, boxes, np.array([0, 1]))


@pytest.mark.parametrize("seed", range(40))
def test_boxes_follow_the_pixels(seed):
    size = 96
    out = augment(_scene(), size, np.random.default_rng(seed), SSD_AUGMENT)
    assert out.image.shape == (size, size, 3) and out.image.dtype == np.uint8
    assert len(out.boxes) == len(out.labels) >= 1
    assert ((out.boxes >= 0) & (out.boxes <= 1)).all()
    for box, label in zip(out.boxes, out.labels, strict=True):
        x1, y1, x2, y2 = box * size
        # The inner half of every box shows its object's colour (photometric changes keep
        # red red and blue blue).
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4, (y2 - y1) / 4
        patch = out.image[int(cy - h):int(np.ceil(cy + h)),
                          int(cx - w):int(np.ceil(cx + w))].reshape(-1, 3).astype(int)
        mean = patch.mean(axis=0)
        if label == 0:
            assert mean[0] > mean[2] + 40, (box, mean)
        else:
            assert mean[2] > mean[0] + 40, (box, mean)


def test_flip_mirrors_boxes_exactly():
    config = AugmentConfig(flip_prob=1.0, expand_prob=0.0, crop_prob=0.0, photometric_prob=0.0)
    scene = _scene()
    out = augment(scene, 64, np.random.default_rng(0), config)
    expected = scene.boxes[:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [1, 0, 1, 0]
    np.testing.assert_allclose(out.boxes, expected, atol=1e-6)
    plain = resize(scene, 64).image
    np.testing.assert_array_equal(out.image, plain[:, ::-1])


def test_no_augmentation_is_the_evaluation_resize():
    scene = _scene()
    out = augment(scene, 80, np.random.default_rng(1), NO_AUGMENT)
    ref = np.asarray(Image.fromarray(scene.image).resize((80, 80), Image.BILINEAR))
    np.testing.assert_array_equal(out.image, ref)
    np.testing.assert_array_equal(resize(scene, 80).image, ref)
    np.testing.assert_array_equal(out.boxes, scene.boxes)


def test_expansion_shrinks_boxes_and_fills_with_the_mean():
    scene = _scene()
    window = (-0.5, -0.5, 1.5, 1.5)  # the image in the middle of a 2x canvas
    boxes, _ = window_boxes(scene.boxes, scene.labels, window)
    np.testing.assert_allclose(boxes, (scene.boxes + 0.5) / 2, atol=1e-6)
    image = np.asarray(render(scene.image, window, 100))
    mean = scene.image.reshape(-1, 3).mean(axis=0).astype(int)
    np.testing.assert_array_equal(image[2, 2], mean)


def test_crop_drops_objects_whose_centre_is_outside():
    scene = _scene()
    boxes, labels = window_boxes(scene.boxes, scene.labels, (0.0, 0.0, 0.5, 1.0))
    assert labels.tolist() == [0]
    np.testing.assert_allclose(boxes[0], [0.2, 0.2, 0.8, 0.7], atol=1e-6)


def test_windows_are_deterministic_and_varied():
    boxes = _scene().boxes
    config = SSD_AUGMENT
    windows = [random_window(boxes, np.random.default_rng(s), config) for s in range(30)]
    again = [random_window(boxes, np.random.default_rng(s), config) for s in range(30)]
    assert windows == again
    assert FULL in windows and len(set(windows)) > 15
    assert any(w[2] - w[0] > 1 for w in windows)  # some expansions
    assert any(w[2] - w[0] < 1 and w[0] >= 0 for w in windows)  # some crops


def test_the_default_preset_only_flips():
    scene = _scene()
    plain = resize(scene, 64)
    for seed in range(10):
        out = augment(scene, 64, np.random.default_rng(seed), AugmentConfig())
        flipped = not np.array_equal(out.image, plain.image)
        if flipped:
            np.testing.assert_array_equal(out.image, plain.image[:, ::-1])
            np.testing.assert_allclose(out.boxes[:, [0, 2]], 1 - scene.boxes[:, [2, 0]],
                                       atol=1e-6)
        else:
            np.testing.assert_array_equal(out.boxes, scene.boxes)
