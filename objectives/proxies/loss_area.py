"""``loss-area``: the multi-fidelity proxy. The first epochs of the real training, scored by
the area under the training-loss curve over their end, optionally blended with the head's
geometry.

Early AP50 is about zero for every candidate that starts slowly, so it cannot rank them; the
training loss can, from the first steps. The run is the start of the default recipe's training
itself (same seeded initialisation, data order, augmentation, warm-up and schedule; not a
compressed one), so its per-epoch mean losses are the first values of a full run's loss curve:
the shipped trained set (``loss_curve``) is ground truth for it without rerunning anything.

Score: ``geometry_share ** w / loss_area`` (higher is better; ``w`` = ``geometry_weight``,
0 by default: on the fit split the blend only lowered the ranking), the area taken over the
run's last ``window`` epochs (default: 4 epochs, the last one scored) or the whole run
(``window=0``); the geometry is that of :mod:`objectives.proxies.features`. At ``rungs``
points before the end (a quarter and a half of the run by default, reported in thousandths of
the run) the score so far goes to ``report``: a search runs this proxy under successive
halving on its companion study (``pruning = "halving"``), so half of the candidates stop after
a quarter of the run and a quarter after half of it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from objectives.proxies.base import (
    RUN_PERMILLE,
    AccuracyProxy,
    ProxyData,
    ProxyError,
    ProxyOutOfTime,
    ProxyPruned,
    Report,
    register_proxy,
)
from objectives.proxies.features import features, geometry_share
from objectives.proxies.short_train import run_steps
from objectives.train import Recipe, epoch_batches, learning_rate
from search_space.model import GraphNet
from search_space.spec import ModelSpec


def blend(geometry: float, loss_area: float, weight: float) -> float:
    return max(geometry, 1e-6) ** weight / loss_area


@register_proxy
@dataclass(frozen=True)
class LossAreaProxy(AccuracyProxy):
    """``epochs`` of the default recipe from its seeded start, scored by the inverse mean
    training loss of the last ``window`` epochs, times geometry ** ``geometry_weight``
    (module doc)."""

    name: ClassVar[str] = "loss-area"
    training_free: ClassVar[bool] = False
    pruning: ClassVar[str] = "halving"
    # Defaults chosen on the trained set's fit split (BENCHMARKS.md, 2026-12-06, 21 fit
    # architectures, replayed): Kendall tau of the last epoch's loss after 1/2/3/4 epochs
    # 0.51/0.62/0.70/0.76; geometry weight 0.5 or 1 lowered it at every length.
    epochs: float = 4.0
    # The area is taken over the run's last `window` epochs (0: the whole run). The first
    # epoch is warm-up from random weights: its loss says least about the end.
    window: float = 1.0
    rungs: int = 2  # reports before the end, at 1/4 and 1/2 of the run (halving rungs)
    geometry_weight: float = 0.0
    images: int = 150
    recipe: Recipe = field(default_factory=Recipe)

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.window < 0 or self.rungs < 0 or self.geometry_weight < 0:
            raise ProxyError(f"loss-area epochs={self.epochs}, window={self.window}, "
                             f"rungs={self.rungs}, geometry_weight={self.geometry_weight}: "
                             "need epochs > 0 and window, rungs, geometry_weight >= 0")

    def area(self, losses: Sequence[float], per_epoch: float) -> float:
        """Mean of the last ``window`` epochs' worth of ``losses`` (all of them if fewer, or
        with ``window`` 0): a rung's score so far and the run's score are the same measure."""
        span = len(losses) if self.window == 0 else max(1, round(self.window * per_epoch))
        tail = losses[-span:]
        return sum(tail) / len(tail)

    def rungs_at(self, steps: int) -> dict[int, int]:
        """{training step: thousandths of the run} of the reports before the end: at 1000 /
        2^k for k = rungs..1, each rung twice the one before (halving's reduction factor). A
        run too short to hold a rung before its last step skips it (never a report at the end,
        where halving would prune a finished run)."""
        found: dict[int, int] = {}
        for k in range(self.rungs, 0, -1):
            permille = RUN_PERMILLE >> k
            step = max(1, round(steps * permille / RUN_PERMILLE))
            if step < steps:
                found.setdefault(step, permille)
        return found

    def first_rung(self) -> int:
        return RUN_PERMILLE >> self.rungs if self.rungs else RUN_PERMILLE

    def components(self, spec: ModelSpec, data: ProxyData, report: Report | None = None
                   ) -> dict[str, float]:
        geometry = geometry_share(features(spec, data, self.images))
        recipe = dataclasses.replace(self.recipe, seed=data.seed)
        per_epoch = len(epoch_batches(len(data.train), recipe.batch_size, recipe.seed, 0))
        steps = max(1, round(self.epochs * per_epoch))
        rungs = self.rungs_at(steps) if report is not None else {}
        losses: list[float] = []

        def on_step(net: GraphNet, step: int, loss: float) -> None:
            losses.append(loss)
            if data.deadline is not None and time.monotonic() >= data.deadline \
                    and step < steps:
                raise ProxyOutOfTime(step, steps)
            if step in rungs:
                value = blend(geometry, self.area(losses, per_epoch), self.geometry_weight)
                if report(rungs[step], value):  # type: ignore[misc]
                    raise ProxyPruned(step, value, "loss-area score")

        # As objectives.train: initialise right after seeding; the caller's state is kept.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            net = spec.build()
            run_steps(net, data.train, recipe, steps,
                      lambda step: learning_rate(recipe, step, per_epoch, recipe.epochs),
                      on_step)
        # No report at the end: halving's last rung would prune half of the finished runs.
        area = self.area(losses, per_epoch)
        score = blend(geometry, area, self.geometry_weight)
        return {"geometry": geometry, "loss_area": area, "first_loss": losses[0],
                "last_loss": losses[-1], "steps": float(steps), "score": score}

    def replay(self, spec: ModelSpec, data: ProxyData, epoch_losses: Sequence[float]
               ) -> dict[str, float]:
        """The components from a full run's recorded per-epoch mean losses instead of training:
        the same numbers, as the run's first epochs are this proxy's run (same seed, order and
        schedule; the caller checks that the recipe and data match). Whole epochs only."""
        whole = self.epochs == int(self.epochs) and self.window == int(self.window)
        if not whole or len(epoch_losses) < self.epochs:
            raise ProxyError(f"loss-area epochs={self.epochs}, window={self.window}: a replay "
                             "needs whole numbers of epochs, at most the "
                             f"{len(epoch_losses)} recorded")
        geometry = geometry_share(features(spec, data, self.images))
        # Every epoch has the same number of steps, so the area is the mean of epoch means.
        area = self.area(epoch_losses[:int(self.epochs)], 1)
        return {"geometry": geometry, "loss_area": area,
                "score": blend(geometry, area, self.geometry_weight)}

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        value = self.components(spec, data, report)["score"]
        if not math.isfinite(value):
            raise ProxyError(f"loss-area of {spec.label} is {value}")
        return value
