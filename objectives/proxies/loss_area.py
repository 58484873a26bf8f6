"""``loss-area``: the multi-fidelity proxy. The first epoch of the real training, scored by the
area under its training-loss curve, blended with the head's geometry.

Early AP50 is about zero for every candidate that starts slowly, so it cannot rank them; the
training loss can, from the first steps. The run is exactly the start of the default recipe's
training (same seeded initialisation, data order, augmentation and warm-up; no compressed
schedule), so its loss area over one epoch is the first value of a full run's loss curve: the
shipped trained set (``loss_curve[0]``) is ground truth for it without rerunning anything.

Score: ``geometry_share ** w / loss_area`` (higher is better; ``w`` = ``geometry_weight``);
the geometry is that of :mod:`objectives.proxies.features` (priors against the data's boxes),
which the loss sees only indirectly. At ``rungs`` points before the end (a quarter and a half of
the run by default, reported in thousandths of the run) the score so far (the area over the
steps done) goes to ``report``: a search runs this proxy under successive halving on its
companion study (``pruning = "halving"``), so three candidates in four stop after a quarter or
half of the epoch.
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
    """``epochs`` of the default recipe from its seeded start; the mean training loss over
    them, blended with geometry (module doc)."""

    name: ClassVar[str] = "loss-area"
    training_free: ClassVar[bool] = False
    pruning: ClassVar[str] = "halving"
    epochs: float = 1.0
    rungs: int = 2  # reports before the end, at 1/4 and 1/2 of the run (halving rungs)
    geometry_weight: float = 1.0
    images: int = 150
    recipe: Recipe = field(default_factory=Recipe)

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.rungs < 0 or self.geometry_weight < 0:
            raise ProxyError(f"loss-area epochs={self.epochs}, rungs={self.rungs}, "
                             f"geometry_weight={self.geometry_weight}: need epochs > 0, "
                             "rungs >= 0 and geometry_weight >= 0")

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
                value = blend(geometry, sum(losses) / len(losses), self.geometry_weight)
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
        area = sum(losses) / len(losses)
        score = blend(geometry, area, self.geometry_weight)
        return {"geometry": geometry, "loss_area": area, "first_loss": losses[0],
                "last_loss": losses[-1], "steps": float(steps), "score": score}

    def replay(self, spec: ModelSpec, data: ProxyData, epoch_losses: Sequence[float]
               ) -> dict[str, float]:
        """The components from a full run's recorded per-epoch mean losses instead of training:
        the same numbers, as the run's first epochs are this proxy's run (same seed, order and
        schedule; the caller checks that the recipe and data match). Whole epochs only."""
        if self.epochs != int(self.epochs) or len(epoch_losses) < self.epochs:
            raise ProxyError(f"loss-area epochs={self.epochs}: a replay needs a whole number "
                             f"of epochs, at most the {len(epoch_losses)} recorded")
        geometry = geometry_share(features(spec, data, self.images))
        # Every epoch has the same number of steps, so the area is the mean of epoch means.
        area = sum(epoch_losses[:int(self.epochs)]) / int(self.epochs)
        return {"geometry": geometry, "loss_area": area,
                "score": blend(geometry, area, self.geometry_weight)}

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        value = self.components(spec, data, report)["score"]
        if not math.isfinite(value):
            raise ProxyError(f"loss-area of {spec.label} is {value}")
        return value
