"""The short-training proxy: a few optimizer steps of the default recipe from scratch, then
val AP50.

Same loss, optimizer, augmentation and batch size as :mod:`objectives.train`, but the
learning-rate schedule (warm-up, cosine) is compressed into the K steps, so the model ends the
run annealed as a full run does. Intermediate AP50 on a smaller val subset goes to ``report``,
which lets a search's pruner stop a poor candidate before the end.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch.utils.data import DataLoader

from objectives.data.dataset import DetectionDataset
from objectives.evaluate import TorchPredictor, evaluate
from objectives.loss import multibox_loss
from objectives.proxies.base import (
    AccuracyProxy,
    ProxyData,
    ProxyError,
    ProxyOutOfTime,
    ProxyPruned,
    Report,
    register_proxy,
)
from objectives.proxies.probe import probe_indices
from objectives.train import (
    Recipe,
    TrainSamples,
    check_loss,
    epoch_batches,
    learning_rate,
    make_optimizer,
)
from search_space.model import GraphNet
from search_space.spec import ModelSpec


def val_subset(dataset: DetectionDataset, count: int, seed: int) -> DetectionDataset:
    """``count`` seeded images of ``dataset`` (all if fewer): a fixed, cheaper val set."""
    records = tuple(dataset.records[i] for i in probe_indices(len(dataset), count, seed))
    return dataclasses.replace(dataset, records=records)


def ap50(net: GraphNet, dataset: DetectionDataset) -> float:
    try:
        return evaluate(TorchPredictor(net), dataset).ap50
    finally:
        net.train()  # TorchPredictor switches the net to eval mode


@register_proxy
@dataclass(frozen=True)
class ShortTrainProxy(AccuracyProxy):
    """``steps`` optimizer steps from a seeded initialisation, then AP50 on ``val_images``
    seeded val images. Runs on the caller's torch thread count (a search worker sets it)."""

    name: ClassVar[str] = "short-train"
    training_free: ClassVar[bool] = False
    steps: int = 150
    reports: int = 2  # intermediate AP50 values sent to report(), every K / (reports + 1) steps
    val_images: int = 100
    report_val_images: int = 50
    # The recipe's warm-up is one epoch of a 12-epoch run; the same share of K steps.
    warmup_share: float = 1 / 12
    recipe: Recipe = field(default_factory=Recipe)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.reports < 0 or self.val_images < 1:
            raise ProxyError(f"short-train steps={self.steps}, reports={self.reports}, "
                             f"val_images={self.val_images}: need steps >= 1, reports >= 0 "
                             "and val_images >= 1")

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        if data.val is None or not data.val.num_objects:
            raise ProxyError("the short-train proxy needs a validation split with objects")
        recipe = dataclasses.replace(self.recipe, seed=data.seed,
                                     warmup_epochs=self.warmup_share)
        checkpoints = self._report_steps() if report is not None else set()
        small = val_subset(data.val, self.report_val_images, data.seed)

        def on_step(net: GraphNet, step: int) -> None:
            if data.deadline is not None and time.monotonic() >= data.deadline \
                    and step < self.steps:
                raise ProxyOutOfTime(step, self.steps)
            if step in checkpoints:
                value = ap50(net, small)
                if report(step, value):  # type: ignore[misc]
                    raise ProxyPruned(step, value)

        # The caller's torch random state is left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(data.seed)
            net = spec.build()
            run_steps(net, data.train, recipe, self.steps,
                      # The whole run is one "epoch" of the schedule: warm-up, then cosine.
                      lambda step: learning_rate(recipe, step, self.steps, 1),
                      lambda net, step, loss: on_step(net, step))
        value = ap50(net, val_subset(data.val, self.val_images, data.seed))
        if report is not None and report(self.steps, value):
            raise ProxyPruned(self.steps, value)
        return value

    def _report_steps(self) -> set[int]:
        every = self.steps / (self.reports + 1)
        return {round(every * k) for k in range(1, self.reports + 1)} - {0, self.steps}


# (net, steps done, that step's loss) after every optimizer step.
OnStep = Callable[[GraphNet, int, float], None]


def run_steps(net: GraphNet, dataset: DetectionDataset, recipe: Recipe, steps: int,
              lr_at: Callable[[int], float], on_step: OnStep) -> None:
    """``steps`` optimizer steps of ``recipe`` over its seeded epochs of ``dataset``, at the
    learning rate ``lr_at(step)``: the training loop of :mod:`objectives.train`, cut short."""
    optimizer = make_optimizer(net, recipe)
    priors, size = net.priors.numpy(), net.arch.input_size
    step, epoch = 0, 0
    net.train()
    while step < steps:
        batches = epoch_batches(len(dataset), recipe.batch_size, recipe.seed, epoch)
        samples = TrainSamples(dataset, priors, size, recipe, epoch, net.arch.input_shape[1])
        for images, boxes, classes in DataLoader(samples, batch_sampler=batches[:steps - step]):
            lr = lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            pred_boxes, logits = net(images)
            loss = multibox_loss(pred_boxes, logits, boxes, classes, recipe.neg_pos_ratio).total
            check_loss(loss, step, lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), recipe.grad_clip)
            optimizer.step()
            step += 1
            on_step(net, step, loss.item())
        epoch += 1
