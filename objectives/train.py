"""SSD training: the recipe, the loop, checkpoints every epoch, resume, time budget.

Determinism: every random choice is a function of the seed. The weights are initialised right
after ``torch.manual_seed(seed)``; an epoch's order comes from a generator seeded by (seed,
epoch) and each sample's augmentation from one seeded by (seed, epoch, index). So the loss
sequence does not depend on the number of data-loading workers, and a resumed run (even one
stopped mid-epoch) continues exactly where the interrupted one was. The same thread count is
part of that: float sums are ordered per thread.

A time budget stops training when it runs out (a checkpoint is written where it stopped). With a
budget and no epoch count, the first epoch is timed and the schedule anneals over as many epochs
as the budget fits; that number is then fixed (and saved), so it does not drift with the
machine's load.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from artefacts.atomic import atomic_write_json, is_temporary
from objectives.augment import AugmentConfig, augment
from objectives.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from objectives.data.dataset import DatasetError, DetectionDataset
from objectives.evaluate import EvalResult, TorchPredictor, evaluate
from objectives.loss import multibox_loss
from objectives.matching import match, prior_corners
from objectives.progress import NoProgress, TrainProgress
from search_space.detection import normalise
from search_space.model import GraphNet
from search_space.spec import ModelSpec

CHECKPOINT_NAME = "last.pt"
SUMMARY_NAME = "summary.json"
OPTIMIZERS = ("adamw", "sgd")
# Recipe fields that may change when a run is resumed: they bound or pace this invocation, not
# what is computed (threads change float summation order only).
RUNTIME_FIELDS = ("time_budget_s", "workers", "threads")


class TrainError(ValueError):
    """A training request that cannot be carried out as asked (bad recipe, output directory in
    use, resume that does not match)."""


class TrainingDiverged(TrainError):
    """The loss became NaN or infinite: the weights are garbage from here on, so training
    stops instead of saving them (the last checkpoint is the last good epoch)."""


def check_loss(loss: torch.Tensor, step: int, lr: float) -> None:
    """Raise :class:`TrainingDiverged` if ``loss`` (before its optimizer step) is not finite."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingDiverged(f"training diverged: loss {value} at step {step + 1} (lr "
                               f"{lr:.3g}); lower the learning rate")


def default_threads() -> int:
    """One core is left to the data-loading worker. Oversubscribing hurts badly: on a 2-core
    box with other load, 2 torch threads trained 4-5x slower than 1 (OpenMP threads wait at
    every barrier for a descheduled sibling)."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


@dataclass(frozen=True)
class Recipe:
    """How to train. The defaults are tuned for minutes on a 2-core CPU, from scratch, on the
    demo data (etn-w0.35-ssdlite at 128, 12 epochs, val AP50): batch 16 + lr 2e-2 60.2,
    batch 16 + lr 1e-2 56.6, batch 8 + lr 1e-2 60.5 (but 20% fewer images/s), batch 32 + lr
    3e-3 below 1 (too few steps). The reference's SGD at 1e-3 is for long schedules.

    The peak lr is 1e-2, not the float-best 2e-2, because the model must survive int8 export:
    at 2e-2 the 128-px model ends with near-dead BatchNorm channels in its 2x2 and 1x1 extra
    layers (running variance ~1e-14) that eval mode amplifies ~300x, giving class logits up to
    |48,632| on val images; no int8 scale holds them and the export's parity check refuses the
    file. Max |logit| on val / int8 AP50 change: lr 2e-2 48,632 / export refused, 1.5e-2 297 /
    -2.4, 1e-2 59 / -0.7 (BENCHMARKS.md, issue 5)."""

    epochs: int | None = 12
    time_budget_s: float | None = None
    batch_size: int = 16
    optimizer: str = "adamw"
    lr: float = 1e-2
    weight_decay: float = 0.02
    momentum: float = 0.9  # SGD only
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.02
    grad_clip: float = 10.0
    iou_threshold: float = 0.5
    neg_pos_ratio: int = 3
    seed: int = 0
    threads: int = field(default_factory=default_threads)
    workers: int = 1
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.epochs is None and self.time_budget_s is None:
            raise TrainError("give a number of epochs, a time budget, or both")
        if self.epochs is not None and self.epochs < 1:
            raise TrainError(f"epochs={self.epochs}: must be at least 1")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise TrainError(f"time budget {self.time_budget_s}s: must be positive")
        if self.batch_size < 2:
            # BatchNorm over a 1x1 map cannot normalise a single image.
            raise TrainError(f"batch_size={self.batch_size}: must be at least 2")
        if self.optimizer not in OPTIMIZERS:
            raise TrainError(f"optimizer {self.optimizer!r}: valid optimizers are "
                             f"{', '.join(OPTIMIZERS)}")
        if not self.lr > 0 or self.weight_decay < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise TrainError(f"lr={self.lr}, weight_decay={self.weight_decay}, min_lr_ratio="
                             f"{self.min_lr_ratio}: need lr > 0, weight decay >= 0 and a ratio "
                             "in [0, 1]")
        if self.threads < 1 or self.workers < 0 or self.warmup_epochs < 0:
            raise TrainError(f"threads={self.threads}, workers={self.workers}, warmup_epochs="
                             f"{self.warmup_epochs}: need threads >= 1, workers >= 0, "
                             "warm-up >= 0")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["augment"] = self.augment.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "augment" in values:
            values["augment"] = AugmentConfig.from_dict(values["augment"])
        return cls(**values)


def learning_rate(recipe: Recipe, step: int, steps_per_epoch: int, total_epochs: int | None
                  ) -> float:
    """Linear warm-up, then cosine down to ``lr * min_lr_ratio`` at the last step. Until the
    epoch count is known (a budget-only run's first epoch) the rate holds at its peak."""
    warmup = round(recipe.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    if total_epochs is None:
        return recipe.lr
    span = max(total_epochs * steps_per_epoch - warmup, 1)
    progress = min((step - warmup) / span, 1.0)
    floor = recipe.lr * recipe.min_lr_ratio
    return floor + (recipe.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


class TrainSamples(Dataset):
    """Augmented, resized, normalised images with their SSD targets, for one epoch.
    ``channels=1`` (a grayscale model) turns the images grey here, where they become the
    model's input (the loaders always decode RGB)."""

    def __init__(self, dataset: DetectionDataset, priors: np.ndarray, size: int,
                 recipe: Recipe, epoch: int, channels: int = 3) -> None:
        self.dataset, self.priors, self.size = dataset, priors, size
        self.channels = channels
        self.corners = prior_corners(priors)
        self.recipe, self.epoch = recipe, epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.recipe.seed, 1, self.epoch, index])
        sample = augment(self.dataset.sample(index), self.size, rng, self.recipe.augment)
        boxes, classes = match(sample.boxes, sample.labels, self.priors,
                               self.recipe.iou_threshold, self.corners)
        return np.ascontiguousarray(normalise(sample.image, self.channels)), boxes, classes


def epoch_batches(num_images: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The epoch's batches of image indices; the last partial batch is dropped (a batch of one
    would break BatchNorm), unless the data is smaller than one batch."""
    order = np.random.default_rng([seed, 2, epoch]).permutation(num_images).tolist()
    if num_images < batch_size:
        return [order]
    count = num_images // batch_size
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(count)]


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    # No weight decay on BatchNorm parameters and biases: decaying them only hurts.
    decay = [p for p in model.parameters() if p.ndim > 1]
    other = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": other, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)
    return torch.optim.AdamW(groups, lr=recipe.lr)


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    checkpoint: Path
    epochs: int  # completed epochs (of total_epochs)
    total_epochs: int | None
    steps: int
    stopped_by: str  # "epochs", "time-budget" or "already-finished"
    images_per_s: float  # this invocation's training throughput
    wall_s: float  # this invocation's training time (evaluation excluded)
    final_loss: float | None  # mean loss over the last (possibly partial) epoch trained
    evaluation: EvalResult | None = None
    history: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "out_dir": str(self.out_dir), "checkpoint": str(self.checkpoint),
            "epochs": self.epochs, "total_epochs": self.total_epochs, "steps": self.steps,
            "stopped_by": self.stopped_by, "images_per_s": round(self.images_per_s, 2),
            "wall_s": round(self.wall_s, 2),
            "final_loss": None if self.final_loss is None else round(self.final_loss, 5),
        }
        if self.evaluation is not None:
            data.update(self.evaluation.to_dict())
        return data


def check_run_dir(out_dir: Path, resume: bool) -> None:
    """``out_dir`` can take a new run (empty or absent) or, with ``resume``, holds one."""
    if resume:
        if not (out_dir / CHECKPOINT_NAME).is_file():
            raise TrainError(f"nothing to resume: '{out_dir / CHECKPOINT_NAME}' not found")
        return
    # A killed write's hidden temporary (see artefacts.atomic) is not a run: ignored.
    if out_dir.exists() and (not out_dir.is_dir()
                             or any(not is_temporary(p) for p in out_dir.iterdir())):
        held = (" (it holds a training run: resume it instead)"
                if (out_dir / CHECKPOINT_NAME).exists() else "")
        raise TrainError(f"output directory '{out_dir}' is not empty{held}; choose an empty "
                         "or new directory")


def _check_resume(ckpt: Checkpoint, spec: ModelSpec, class_names: tuple[str, ...],
                  recipe: Recipe) -> None:
    if ckpt.spec != spec:
        raise TrainError(f"{ckpt.path} trains {ckpt.spec.label}, not {spec.label}: a resumed "
                         "run keeps its model")
    if ckpt.class_names != class_names:
        raise TrainError(f"{ckpt.path} was trained on classes {list(ckpt.class_names)}, the "
                         f"data has {list(class_names)}")
    saved = Recipe.from_dict(ckpt.recipe).to_dict()
    for key, value in recipe.to_dict().items():
        if key not in RUNTIME_FIELDS and saved.get(key) != value:
            raise TrainError(f"recipe {key}={value!r} differs from the run's {saved.get(key)!r} "
                             f"in {ckpt.path}: a resumed run keeps its recipe")


def resume_recipe(ckpt: Checkpoint, **runtime: Any) -> Recipe:
    """The checkpoint's recipe with the runtime fields given (not None) replaced. A time budget
    bounds each invocation: a resumed run gets the one given now, else the original one."""
    unknown = set(runtime) - set(RUNTIME_FIELDS)
    if unknown:
        raise TrainError(f"only {', '.join(RUNTIME_FIELDS)} can change on resume, not "
                         f"{', '.join(sorted(unknown))}")
    recipe = Recipe.from_dict(ckpt.recipe)
    return dataclasses.replace(recipe, **{k: v for k, v in runtime.items() if v is not None})


@dataclass
class _RunState:
    """Mutable bookkeeping of one invocation."""

    epoch: int
    batch: int
    step: int
    total_epochs: int | None
    history: list[dict[str, Any]]
    images: int = 0
    seconds: float = 0.0
    epoch_losses: list[tuple[float, float, float]] = field(default_factory=list)


def train(spec: ModelSpec, train_set: DetectionDataset, out_dir: str | Path,
          recipe: Recipe | None = None, *, val_set: DetectionDataset | None = None,
          resume: bool = False, progress: TrainProgress | None = None,
          data_info: Mapping[str, Any] | None = None) -> TrainResult:
    """Train ``spec`` on ``train_set``, checkpointing to ``out_dir/last.pt`` after every epoch;
    evaluate on ``val_set`` at the end. ``resume`` continues the run in ``out_dir``."""
    recipe = recipe or Recipe()
    out_dir = Path(out_dir)
    progress = progress or NoProgress()
    if spec.num_classes != train_set.num_classes:
        raise TrainError(f"model {spec.label} has {spec.num_classes} classes, the data "
                         f"{train_set.num_classes} ({', '.join(train_set.class_names)})")
    if len(train_set) < 2:
        raise TrainError(f"{train_set.source}: training needs at least 2 images")
    check_run_dir(out_dir, resume)

    threads_before = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        torch.manual_seed(recipe.seed)
        model = spec.build()
        optimizer = make_optimizer(model, recipe)
        state = _RunState(0, 0, 0, recipe.epochs, [])
        if resume:
            ckpt = load_checkpoint(out_dir / CHECKPOINT_NAME)
            _check_resume(ckpt, spec, train_set.class_names, recipe)
            model.load_state_dict(dict(ckpt.state_dict))
            if ckpt.optimizer is not None:
                optimizer.load_state_dict(dict(ckpt.optimizer))
            if "torch" in ckpt.rng:
                torch.set_rng_state(ckpt.rng["torch"])
            state = _RunState(ckpt.epoch, ckpt.batch, ckpt.step, ckpt.total_epochs,
                              [dict(h) for h in ckpt.history],
                              epoch_losses=[tuple(x) for x in ckpt.epoch_losses])
        created = not out_dir.exists()
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            stopped_by = _loop(model, optimizer, spec, train_set, out_dir, recipe, state,
                               progress, dict(data_info or {}))
        except BaseException as exc:
            # Nothing half-written: a run that fails before its first checkpoint leaves no
            # directory behind.
            if created and not (out_dir / CHECKPOINT_NAME).exists():
                shutil.rmtree(out_dir, ignore_errors=True)
            if isinstance(exc, DatasetError):
                raise DatasetError(_one_line(exc)) from None
            raise
        evaluation = None
        if val_set is not None:
            evaluation = _final_eval(model, val_set, progress)
    finally:
        torch.set_num_threads(threads_before)

    final = float(np.mean([t for t, _, _ in state.epoch_losses])) if state.epoch_losses \
        else (state.history[-1]["loss"] if state.history else None)
    result = TrainResult(
        out_dir=out_dir, checkpoint=out_dir / CHECKPOINT_NAME, epochs=state.epoch,
        total_epochs=state.total_epochs, steps=state.step, stopped_by=stopped_by,
        images_per_s=state.images / state.seconds if state.seconds else 0.0,
        wall_s=state.seconds, final_loss=final, evaluation=evaluation,
        history=tuple(state.history))
    _write_summary(out_dir / SUMMARY_NAME, result, spec, train_set.class_names)
    return result


def _final_eval(model: GraphNet, val_set: DetectionDataset, progress: TrainProgress
                ) -> EvalResult:
    done = 0
    progress.start("evaluate", len(val_set))

    def step(n: int) -> None:
        nonlocal done
        done += n
        progress.update(done)

    try:
        return evaluate(TorchPredictor(model), val_set, on_batch=step)
    finally:
        progress.stop()


def _loop(model: GraphNet, optimizer: torch.optim.Optimizer, spec: ModelSpec,
          train_set: DetectionDataset, out_dir: Path, recipe: Recipe, state: _RunState,
          progress: TrainProgress, data_info: dict[str, Any]) -> str:
    """Epochs until done or out of time; returns why it stopped."""
    priors = model.priors.numpy()
    size = model.arch.input_size
    steps_per_epoch = len(epoch_batches(len(train_set), recipe.batch_size, recipe.seed, 0))
    if state.total_epochs is not None and state.epoch >= state.total_epochs:
        return "already-finished"
    start = time.monotonic()
    deadline = start + recipe.time_budget_s if recipe.time_budget_s else math.inf

    def save() -> None:
        save_checkpoint(out_dir / CHECKPOINT_NAME, spec=spec, class_names=train_set.class_names,
                        model=model, epoch=state.epoch, batch=state.batch, step=state.step,
                        total_epochs=state.total_epochs, recipe=recipe.to_dict(),
                        optimizer=optimizer, rng={"torch": torch.get_rng_state()},
                        history=state.history, data=data_info,
                        epoch_losses=state.epoch_losses if state.batch else ())

    total_steps = None if state.total_epochs is None else state.total_epochs * steps_per_epoch
    progress.start(f"train {spec.label}", total_steps, state.step)
    try:
        model.train()
        while state.total_epochs is None or state.epoch < state.total_epochs:
            finished = _epoch(model, optimizer, train_set, priors, size, recipe, state,
                              steps_per_epoch, deadline, progress)
            if finished and state.total_epochs is None:
                # A budget-only run: size the schedule from this invocation's pace.
                per_epoch = state.seconds / max(state.images, 1) * len(train_set)
                state.total_epochs = max(1, int(recipe.time_budget_s / per_epoch))  # type: ignore[operator]
                progress.update(state.step, total=state.total_epochs * steps_per_epoch)
                progress.log(f"time budget {recipe.time_budget_s:.0f}s: the schedule anneals "
                             f"over {state.total_epochs} epochs")
            save()
            more = state.total_epochs is None or state.epoch < state.total_epochs
            if more and time.monotonic() >= deadline:
                return "time-budget"
        return "epochs"
    finally:
        progress.stop()


def _epoch(model: GraphNet, optimizer: torch.optim.Optimizer, train_set: DetectionDataset,
           priors: np.ndarray, size: int, recipe: Recipe, state: _RunState,
           steps_per_epoch: int, deadline: float, progress: TrainProgress) -> bool:
    """Train the rest of ``state.epoch``; False if the time ran out before its end."""
    batches = epoch_batches(len(train_set), recipe.batch_size, recipe.seed, state.epoch)
    loader = DataLoader(TrainSamples(train_set, priors, size, recipe, state.epoch,
                                     model.arch.input_shape[1]),
                        batch_sampler=batches[state.batch:], num_workers=recipe.workers)
    if not state.batch:
        state.epoch_losses = []
    tick = time.monotonic()
    for images, target_boxes, target_classes in loader:
        lr = learning_rate(recipe, state.step, steps_per_epoch, state.total_epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        pred_boxes, logits = model(images)
        parts = multibox_loss(pred_boxes, logits, target_boxes, target_classes,
                              recipe.neg_pos_ratio)
        check_loss(parts.total, state.step, lr)
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        optimizer.step()

        state.step += 1
        state.batch += 1
        state.images += len(images)
        now = time.monotonic()
        state.seconds += now - tick
        tick = now
        state.epoch_losses.append((parts.total.item(), parts.boxes.item(),
                                   parts.classes.item()))
        progress.update(state.step, loss=_recent(state.epoch_losses), lr=lr,
                        img_s=state.images / state.seconds)
        if now >= deadline and state.batch < len(batches):
            return False
    losses = np.asarray(state.epoch_losses)
    state.history.append({
        "epoch": state.epoch + 1, "loss": float(losses[:, 0].mean()),
        "box_loss": float(losses[:, 1].mean()), "class_loss": float(losses[:, 2].mean()),
        "lr": learning_rate(recipe, state.step - 1, steps_per_epoch, state.total_epochs),
        "images_per_s": state.images / state.seconds, "wall_s": state.seconds})
    state.epoch += 1
    state.batch = 0
    return True


def _one_line(exc: Exception) -> str:
    """A data-loading worker's error comes back wrapped with its traceback; the original
    message is its last line."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else type(exc).__name__
    prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
    return last[len(prefix):] if last.startswith(prefix) else last


def _recent(losses: list[tuple[float, float, float]], window: int = 20) -> float:
    return float(np.mean([t for t, _, _ in losses[-window:]]))


def _write_summary(path: Path, result: TrainResult, spec: ModelSpec,
                   class_names: tuple[str, ...]) -> None:
    data = {**result.to_dict(), "model": spec.to_dict(), "class_names": list(class_names),
            "history": list(result.history)}
    atomic_write_json(path, data, indent=2)
