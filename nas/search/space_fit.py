"""Fitting the search space to the budget before the search starts.

Sampled blind, most genomes of :data:`~search_space.space.FULL_SPACE` break a microcontroller
budget (at an ESP32's RAM, nearly all do), and every rejected trial is one the sampler did not
spend on a model that fits. The estimators are exact and take a few ms a genome, so the fit
draws genomes uniformly from the space, estimates them (no model is built), and peels the
space one value at a time, PRIM-style (Friedman and Fisher's bump hunting): at each step it
drops the value (the largest of an ordered parameter, or any one choice of a set) whose
draws are the most infeasible per feasible draw lost, until ``goal`` of the draws fit or no
drop raises that share. Draws are topped up inside the narrowed space as it shrinks.

It is an optimisation, not a filter: budgets stay hard constraints in every trial, and the
record (:class:`~search_space.space.SpaceFit`) says what was excluded: each dropped value with
the share of its draws that fit, the share of the full space's feasible draws the fitted space
still holds, and the largest feasible model (MACs) inside it against the full space's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import optuna

from estimators.budgets import format_bytes
from estimators.estimate import Budgets
from estimators.targets import Target
from nas.search.objective import assess
from search_space.sampling import sample_genome
from search_space.space import FULL_SPACE, Peel, SearchSpace, SpaceFit
from search_space.spec import ModelSpec

FIT_SAMPLES = 300      # draws kept in the pool; topped up when half of them were peeled away
FIT_GOAL = 0.9         # feasible share of the draws at which peeling stops
MAX_PEELS = 120
# PRIM's patience: a step may drop at most this share of the draws, so the space shrinks along
# every parameter a little at a time instead of losing a whole resolution or block type at
# once (resolution and width trade against each other; one big cut loses the other's range).
# Only when no small step raises the share is a bigger one taken.
PEEL_ALPHA = 0.15


@dataclass(frozen=True)
class Draw:
    params: dict
    fits: bool
    macs: int


Judge = Callable[[dict], Draw]


def judge_for(target: Target, budgets: Budgets, latency_ms: float | None,
              num_classes: int) -> Judge:
    """Parameters -> whether their genome fits (lowered and estimated, nothing built)."""
    def judge(params: dict) -> Draw:
        trial = optuna.trial.FixedTrial(params)
        genome = sample_genome(trial)
        assessed = assess(ModelSpec(num_classes, genome=genome), target, budgets, latency_ms)
        return Draw(dict(trial.params), assessed.fits, assessed.estimate.macs)

    return judge


@functools.lru_cache(maxsize=16)
def fit_space(target: Target, budgets: Budgets, latency_ms: float | None, num_classes: int,
              seed: int = 0, samples: int = FIT_SAMPLES, goal: float = FIT_GOAL,
              space: SearchSpace = FULL_SPACE) -> SearchSpace:
    """``space`` narrowed to the budget, with its :class:`SpaceFit` record. A pure function of
    its arguments (the draws are seeded), so it is computed once per process."""
    judge = judge_for(target, budgets, latency_ms, num_classes)
    rng = np.random.default_rng([seed, 14])
    full = [judge(space.draw(rng)) for _ in range(samples)]
    fitted, pool, drawn, excluded = _peel(space, list(full), judge, rng, samples, goal)
    inside = [d for d in full if d.fits and fitted.contains(d.params)]
    feasible = [d for d in full if d.fits]
    record = SpaceFit(
        fitted_for=_label(target, budgets, latency_ms, num_classes),
        samples=samples + drawn,
        full_feasible_share=round(len(feasible) / samples, 4),
        fitted_feasible_share=round(_share(pool), 4),
        feasible_kept_share=round(len(inside) / len(feasible), 4) if feasible else 0.0,
        full_max_feasible_macs=max((d.macs for d in feasible), default=0),
        fitted_max_feasible_macs=max((d.macs for d in inside), default=0),
        excluded=tuple(excluded))
    return replace(fitted, fit=record)


def _peel(space: SearchSpace, pool: list[Draw], judge: Judge, rng: np.random.Generator,
          samples: int, goal: float) -> tuple[SearchSpace, list[Draw], int, list[str]]:
    drawn, excluded = 0, []
    for _ in range(MAX_PEELS):
        if _share(pool) >= goal:
            break
        best = _best_peel(space, pool)
        if best is None:
            break
        peel, removed = best
        space = peel.space
        excluded.append(f"{peel.what} ({sum(d.fits for d in removed)} of {len(removed)} draws "
                        "with it fit)")
        pool = [d for d in pool if not peel.drops(d.params)]
        if len(pool) < samples // 2:
            extra = samples - len(pool)
            pool += [judge(space.draw(rng)) for _ in range(extra)]
            drawn += extra
    return space, pool, drawn, excluded


def _best_peel(space: SearchSpace, pool: list[Draw]) -> tuple[Peel, list[Draw]] | None:
    """The narrowing whose removed draws are the most infeasible per feasible draw lost,
    among those that raise the pool's feasible share."""
    before, total, fitting = _share(pool), len(pool), sum(d.fits for d in pool)
    mean_macs = sum(d.macs for d in pool if d.fits) / fitting if fitting else 1.0
    small, large = (None, 0.0), (None, 0.0)
    for peel in space.peels():
        removed = [d for d in pool if peel.drops(d.params)]
        lost = sum(d.fits for d in removed)
        if not removed or len(removed) == total or \
                (fitting - lost) / (total - len(removed)) <= before:
            continue
        # A lost feasible draw counts by its MACs (MCUNet's FLOPs criterion: of the genomes
        # that fit, the larger ones tend to be the more accurate), so cutting the big end of
        # one parameter is preferred to cutting a range where big models still fit.
        lost_weight = sum(d.macs for d in removed if d.fits) / mean_macs
        score = (len(removed) - lost) / (lost_weight + 1)
        slot = small if len(removed) <= PEEL_ALPHA * total else large
        if score > slot[1]:
            if slot is small:
                small = ((peel, removed), score)
            else:
                large = ((peel, removed), score)
    return small[0] or large[0]


def _share(draws: list[Draw]) -> float:
    return sum(d.fits for d in draws) / len(draws) if draws else 0.0


def _label(target: Target, budgets: Budgets, latency_ms: float | None, num_classes: int) -> str:
    text = (f"{target.label} ({target.runtime.name}), flash {format_bytes(budgets.flash_bytes)}"
            f", RAM {format_bytes(budgets.ram_bytes)}")
    if latency_ms is not None:
        text += f", latency {latency_ms:g} ms"
    return f"{text}, {num_classes} classes"
