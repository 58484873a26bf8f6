"""Sampling genomes from an Optuna trial (define-by-run), within a :class:`SearchSpace`.

The parameters (every name below is an Optuna parameter; the values are those of
:data:`~search_space.space.FULL_SPACE`, a fitted space allows a subset):

=====================  =============================================  ==========================
parameter              values                                         genome field
=====================  =============================================  ==========================
``resolution``         64, 80, ..., 320 (int, step 16)                 ``resolution``
``input_channels``     3 (RGB), 1 (grayscale)                          ``input_channels``
``s{i}_width``         0.1 .. 1.5 step 0.05, i = 1..4                  ``stages[i-1].width``
``s{i}_depth``         1..4, 1..5, 1..4, 1..4 (int)                    ``stages[i-1].depth``
``s{i}_block``         lb, dlb, dlb_skip                               ``stages[i-1].block``
``s{i}_kernel``        3, 5                                            ``stages[i-1].kernel``
``s{i}_tap``           i = 1: none, end; i = 2, 3: none, end, prev     ``taps`` (stage 4's end
                                                                       always feeds the head)
``n_extras``           0 .. 4, clipped to what the resolution allows  ``len(head.extras)``
``extra{j}_ch``        16, 32, 64, 128, 192, 256                       ``head.extras[j]``
``head``               ssd, ssdlite                                    ``head.kind``
``anchor_smin``        0.05 .. 0.30 step 0.01                          smallest min scale
``anchor_smax``        0.60 .. 0.95 step 0.05                          largest min scale
``map{k}_ratios``      "", "2", "2,3"                                  ``head.anchors[k].ratios``
=====================  =============================================  ==========================

``prev`` taps the second-to-last block of the stage (the seed's choice) and falls back to the
stage end when the stage has one block. Scales follow SSD's linear schedule between
``anchor_smin`` and ``anchor_smax`` (see :func:`search_space.genome.linear_anchors`).
Channels are rounded to multiples of :data:`CHANNEL_DIVISOR`, friendlier to int8 kernels than
the seed's truncation. Clipping keeps every sample valid, so the sampler never has to retry;
``Genome`` still validates. The genome depends on the parameter values only, never on the
space: ``sample_genome(optuna.trial.FixedTrial(trial.params))`` gives an equal genome whatever
space the trial was drawn from.
"""

from __future__ import annotations

import math

import optuna

from search_space.genome import (
    NUM_STAGES,
    RESOLUTION_STEP,
    STAGE_STRIDES,
    AnchorGene,
    Genome,
    HeadGene,
    StageGene,
    linear_anchors,
    map_size,
)
from search_space.space import (
    ANCHOR_SMAX,
    ANCHOR_SMIN,
    FULL_SPACE,
    MAX_EXTRAS,
    WIDTH_STEP,
    SearchSpace,
)

CHANNEL_DIVISOR = 8


def sample_genome(trial: optuna.trial.BaseTrial, space: SearchSpace = FULL_SPACE) -> Genome:
    """Ask ``trial`` for every choice of ``space`` and return the (always valid) genome."""
    resolution = trial.suggest_int("resolution", *space.resolution, step=RESOLUTION_STEP)
    channels = trial.suggest_categorical("input_channels", list(space.input_channels))
    stages = tuple(_sample_stage(trial, space, i) for i in range(1, NUM_STAGES + 1))
    taps = _sample_taps(trial, space, stages)
    extras = _sample_extras(trial, space, resolution)
    kind = trial.suggest_categorical("head", list(space.heads))
    anchors = _sample_anchors(trial, space, len(taps) + len(extras))
    return Genome(resolution, stages, taps, HeadGene(kind, extras, anchors),
                  channel_divisor=CHANNEL_DIVISOR, input_channels=channels)


def _sample_stage(trial: optuna.trial.BaseTrial, space: SearchSpace, i: int) -> StageGene:
    lo, hi = space.widths[i - 1]
    width = round(trial.suggest_float(f"s{i}_width", lo, hi, step=WIDTH_STEP), 4)
    depth = trial.suggest_int(f"s{i}_depth", *space.depths[i - 1])
    block = trial.suggest_categorical(f"s{i}_block", list(space.blocks[i - 1]))
    kernel = trial.suggest_categorical(f"s{i}_kernel", list(space.kernels[i - 1]))
    return StageGene(width, depth, block, kernel)


def _sample_taps(trial: optuna.trial.BaseTrial, space: SearchSpace,
                 stages: tuple[StageGene, ...]) -> tuple[tuple[int, int], ...]:
    taps = []
    for i in range(1, NUM_STAGES):
        choice = trial.suggest_categorical(f"s{i}_tap", list(space.taps[i - 1]))
        depth = stages[i - 1].depth
        if choice == "end" or (choice == "prev" and depth == 1):
            taps.append((i, depth))
        elif choice == "prev":
            taps.append((i, depth - 1))
    taps.append((NUM_STAGES, stages[-1].depth))
    return tuple(taps)


def max_extras(resolution: int) -> int:
    """How many stride-2 extra layers fit before the map is 1x1."""
    size, n = map_size(resolution, STAGE_STRIDES[-1]), 0
    while size > 1 and n < MAX_EXTRAS:
        size, n = math.ceil(size / 2), n + 1
    return n


def _sample_extras(trial: optuna.trial.BaseTrial, space: SearchSpace, resolution: int
                   ) -> tuple[int, ...]:
    n = min(trial.suggest_int("n_extras", 0, space.max_extras), max_extras(resolution))
    return tuple(trial.suggest_categorical(f"extra{j}_ch", list(space.extra_channels))
                 for j in range(n))


def _sample_anchors(trial: optuna.trial.BaseTrial, space: SearchSpace, num_maps: int
                    ) -> tuple[AnchorGene, ...]:
    smin = round(trial.suggest_float("anchor_smin", ANCHOR_SMIN[0], ANCHOR_SMIN[1],
                                     step=ANCHOR_SMIN[2]), 4)
    smax = round(trial.suggest_float("anchor_smax", ANCHOR_SMAX[0], ANCHOR_SMAX[1],
                                     step=ANCHOR_SMAX[2]), 4)
    ratios = []
    for k in range(num_maps):
        text = trial.suggest_categorical(f"map{k}_ratios", list(space.map_ratios))
        ratios.append(tuple(float(r) for r in text.split(",") if r))
    return linear_anchors(num_maps, smin, smax, tuple(ratios))


def random_genomes(n: int, seed: int = 0, space: SearchSpace = FULL_SPACE) -> list[Genome]:
    """``n`` genomes drawn uniformly from ``space`` (an in-memory study, RandomSampler)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    genomes = []
    for _ in range(n):
        trial = study.ask()
        genomes.append(sample_genome(trial, space))
        study.tell(trial, 0.0)
    return genomes
