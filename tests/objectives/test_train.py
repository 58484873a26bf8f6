from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
import torch

from objectives.checkpoint import load_checkpoint
from objectives.data import open_dataset
from objectives.data.dataset import DatasetError, DetectionDataset
from objectives.train import (
    Recipe,
    TrainError,
    TrainingDiverged,
    TrainSamples,
    learning_rate,
    resume_recipe,
    train,
)
from search_space.spec import ModelSpec

# 8 images, batches of 4: 2 steps per epoch, a couple of seconds per run.
FAST = Recipe(epochs=2, batch_size=4, threads=1, workers=0, warmup_epochs=0.5)


@pytest.fixture(scope="module")
def small_train(demo_dir) -> DetectionDataset:
    full = open_dataset(demo_dir, "train")
    return DetectionDataset(full.records[:8], full.class_names, full.source)


def _same_weights(a, b) -> None:
    wa, wb = load_checkpoint(a).state_dict, load_checkpoint(b).state_dict
    assert wa.keys() == wb.keys()
    for k, v in wa.items():
        torch.testing.assert_close(v, wb[k], rtol=0, atol=0)


def test_learning_rate_warms_up_then_anneals_to_the_floor():
    recipe = Recipe(lr=0.1, warmup_epochs=1, min_lr_ratio=0.1)
    rates = [learning_rate(recipe, s, 10, 5) for s in range(50)]
    assert rates[0] == pytest.approx(0.01) and rates[9] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(rates[9:]))
    assert rates[-1] == pytest.approx(0.01, rel=0.02)
    assert learning_rate(recipe, 30, 10, None) == 0.1  # epoch count unknown: hold the peak


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"epochs": None}, "epochs, a time budget"),
    ({"epochs": 0}, "epochs=0"),
    ({"batch_size": 1}, "batch_size=1"),
    ({"optimizer": "adam"}, "'adam'.*adamw, sgd"),
    ({"lr": 0.0}, "lr=0.0"),
    ({"time_budget_s": -1.0}, "time budget"),
])
def test_bad_recipes_are_refused(kwargs, match):
    with pytest.raises(TrainError, match=match):
        Recipe(**kwargs)


def test_default_peak_lr_is_the_one_whose_int8_export_holds():
    # At 2e-2 the 128-px EtinyNet's eval-mode class logits reached |48,632| and its int8
    # export was refused by the parity check; 1e-2 keeps them within 59 (BENCHMARKS.md, issue
    # 5). Raising the default needs those measurements redone, not just a better float AP.
    assert Recipe().lr == pytest.approx(1e-2)


def test_recipe_round_trips_through_a_dict():
    recipe = Recipe(epochs=None, time_budget_s=60.0, optimizer="sgd")
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe


@pytest.mark.slow
def test_same_seed_same_losses_whatever_the_workers(tmp_path, small_train, tiny_spec):
    a = train(tiny_spec, small_train, tmp_path / "a", FAST)
    b = train(tiny_spec, small_train, tmp_path / "b", dataclasses.replace(FAST, workers=1))
    c = train(tiny_spec, small_train, tmp_path / "c", dataclasses.replace(FAST, seed=1))
    losses = [[h["loss"] for h in r.history] for r in (a, b, c)]
    assert losses[0] == losses[1] != losses[2]
    assert a.epochs == 2 and a.steps == 4 and a.stopped_by == "epochs"
    _same_weights(a.checkpoint, b.checkpoint)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["final_loss"] == pytest.approx(a.final_loss, abs=1e-5)
    assert summary["model"] == tiny_spec.to_dict()


@pytest.mark.slow
def test_stop_mid_epoch_and_resume_gives_the_uninterrupted_run(tmp_path, small_train,
                                                               tiny_spec, demo_dir):
    val = open_dataset(demo_dir, "val")
    whole = train(tiny_spec, small_train, tmp_path / "whole", FAST, val_set=val)
    assert whole.evaluation is not None and whole.evaluation.num_images == 8

    run = tmp_path / "run"
    # A budget that runs out at once: the run stops after its first step, checkpointing there.
    first = train(tiny_spec, small_train, run, dataclasses.replace(FAST, time_budget_s=1e-9))
    ckpt = load_checkpoint(run / "last.pt")
    assert first.stopped_by == "time-budget" and (ckpt.epoch, ckpt.batch, ckpt.step) == (0, 1, 1)
    second = train(tiny_spec, small_train, run, resume_recipe(ckpt, time_budget_s=1e-9),
                   resume=True)
    ckpt = load_checkpoint(run / "last.pt")
    assert second.stopped_by == "time-budget" and (ckpt.epoch, ckpt.batch) == (1, 0)
    last = train(tiny_spec, small_train, run, FAST, resume=True, val_set=val)
    assert last.stopped_by == "epochs" and last.steps == whole.steps == 4

    assert [h["loss"] for h in last.history] == [h["loss"] for h in whole.history]
    _same_weights(whole.checkpoint, last.checkpoint)
    assert last.evaluation == whole.evaluation
    again = train(tiny_spec, small_train, run, FAST, resume=True)
    assert again.stopped_by == "already-finished" and again.steps == 4


def test_budget_only_run_fixes_its_epoch_count(tmp_path, small_train, tiny_spec):
    recipe = dataclasses.replace(FAST, epochs=None, time_budget_s=2.0)
    result = train(tiny_spec, small_train, tmp_path / "run", recipe)
    ckpt = load_checkpoint(result.checkpoint)
    assert result.total_epochs is not None and result.total_epochs >= 1
    assert ckpt.total_epochs == result.total_epochs and ckpt.epoch >= 1
    assert result.stopped_by in ("epochs", "time-budget")


def test_output_directory_and_resume_checks(tmp_path, small_train, tiny_spec):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(TrainError, match=r"'.*busy' is not empty"):
        train(tiny_spec, small_train, busy, FAST)
    with pytest.raises(TrainError, match="nothing to resume"):
        train(tiny_spec, small_train, tmp_path / "new", FAST, resume=True)

    run = tmp_path / "run"
    train(tiny_spec, small_train, run, dataclasses.replace(FAST, epochs=1))
    with pytest.raises(TrainError, match="holds a training run"):
        train(tiny_spec, small_train, run, FAST)
    other = ModelSpec(3, baseline="ssd-mbv1-0.25-192")
    with pytest.raises(TrainError, match="keeps its model"):
        train(other, small_train, run, dataclasses.replace(FAST, epochs=1), resume=True)
    with pytest.raises(TrainError, match=r"lr=0\.5 differs"):
        train(tiny_spec, small_train, run, dataclasses.replace(FAST, epochs=1, lr=0.5),
              resume=True)
    two = ModelSpec(2, genome=tiny_spec.genome, name="tiny")
    with pytest.raises(TrainError, match="2 classes, the data 3"):
        train(two, small_train, tmp_path / "x", FAST)


@pytest.mark.parametrize("workers", [0, 1])
def test_an_image_that_fails_to_decode_is_one_line_and_leaves_nothing(tmp_path, small_train,
                                                                      tiny_spec, workers):
    # The header reads fine (opening the dataset passes), the pixels do not.
    broken = tmp_path / "broken.jpg"
    data = small_train.records[0].image.read_bytes()
    broken.write_bytes(data[: len(data) // 3])
    records = (dataclasses.replace(small_train.records[0], image=broken),
               *small_train.records[1:])
    dataset = DetectionDataset(records, small_train.class_names, "broken")
    out = tmp_path / "run"
    with pytest.raises(DatasetError) as info:
        train(tiny_spec, dataset, out, dataclasses.replace(FAST, workers=workers))
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "broken.jpg" in message
    assert "unreadable file" in message and not out.exists()


def test_a_diverging_run_stops_and_saves_no_broken_weights(tmp_path, small_train, tiny_spec):
    out = tmp_path / "run"
    wild = dataclasses.replace(FAST, epochs=3, lr=1e9, warmup_epochs=0)
    with pytest.raises(TrainingDiverged, match=r"training diverged: loss nan at step \d+ "):
        train(tiny_spec, small_train, out, wild)
    saved = out / "last.pt"
    if saved.exists():  # an epoch ended before the loss turned: its weights are finite
        weights = load_checkpoint(saved).state_dict.values()
        assert all(torch.isfinite(v).all() for v in weights if v.is_floating_point())


def test_a_grayscale_genome_trains_on_grey_images(tmp_path, small_train, tiny_spec):
    """The loaders decode RGB; a 1-channel genome gets the mean of R, G, B where the images
    become its input, in training and in the evaluation that ends it."""
    gray = ModelSpec(3, genome=dataclasses.replace(tiny_spec.genome, input_channels=1),
                     name="gray")
    net = gray.build()
    samples = TrainSamples(small_train, net.priors.numpy(), 96, FAST, 0,
                           net.arch.input_shape[1])
    image, _, _ = samples[0]
    assert image.shape == (1, 96, 96)
    result = train(gray, small_train, tmp_path / "run", FAST, val_set=small_train)
    assert result.evaluation is not None
    assert load_checkpoint(result.checkpoint).spec.genome.input_channels == 1
