"""Sampling genomes from an Optuna trial (define-by-run).

The space, parameter by parameter (every name below is an Optuna parameter):

===================  =============================================  ==========================
parameter            values                                         genome field
===================  =============================================  ==========================
``resolution``       96, 128, ..., 320 (int, step 32)                ``resolution``
``s{i}_width``       0.25 .. 1.5 step 0.05, i = 1..4                 ``stages[i-1].width``
``s{i}_depth``       ``DEPTHS[i]`` (int)                              ``stages[i-1].depth``
``s{i}_block``       lb, dlb, dlb_skip                               ``stages[i-1].block``
``s{i}_kernel``      3, 5                                            ``stages[i-1].kernel``
``s{i}_tap``         i = 1: none, end; i = 2, 3: none, end, prev     ``taps`` (stage 4's end
                                                                     always feeds the head)
``n_extras``         0 .. 4, clipped to what the resolution allows  ``len(head.extras)``
``extra{j}_ch``      64, 128, 192, 256                               ``head.extras[j]``
``head``             ssd, ssdlite                                    ``head.kind``
``anchor_smin``      0.05 .. 0.30 step 0.01                          smallest min scale
``anchor_smax``      0.60 .. 0.95 step 0.05                          largest min scale
``map{k}_ratios``    "", "2", "2,3"                                  ``head.anchors[k].ratios``
===================  =============================================  ==========================

``prev`` taps the second-to-last block of the stage (the seed's choice) and falls back to the
stage end when the stage has one block. Scales follow SSD's linear schedule between
``anchor_smin`` and ``anchor_smax`` (see :func:`search_space.genome.linear_anchors`).
Channels are rounded to multiples of :data:`CHANNEL_DIVISOR`, friendlier to int8 kernels than
the seed's truncation. Clipping keeps every sample valid, so the sampler never has to retry;
``Genome`` still validates, and rebuilding from ``optuna.trial.FixedTrial(trial.params)``
gives an equal genome.
"""

from __future__ import annotations

import math

import optuna

from search_space.genome import (
    BLOCK_TYPES,
    HEAD_TYPES,
    KERNELS,
    NUM_STAGES,
    STAGE_STRIDES,
    AnchorGene,
    Genome,
    HeadGene,
    StageGene,
    linear_anchors,
)

CHANNEL_DIVISOR = 8
DEPTHS = {1: (1, 4), 2: (1, 5), 3: (1, 4), 4: (1, 4)}
WIDTH = (0.25, 1.5, 0.05)
MAX_EXTRAS = 4
EXTRA_CHANNELS = (64, 128, 192, 256)
RATIO_CHOICES = ("", "2", "2,3")


def sample_genome(trial: optuna.trial.BaseTrial) -> Genome:
    """Ask ``trial`` for every choice of the space and return the (always valid) genome."""
    resolution = trial.suggest_int("resolution", 96, 320, step=32)
    stages = tuple(_sample_stage(trial, i) for i in range(1, NUM_STAGES + 1))
    taps = _sample_taps(trial, stages)
    extras = _sample_extras(trial, resolution)
    kind = trial.suggest_categorical("head", list(HEAD_TYPES))
    anchors = _sample_anchors(trial, len(taps) + len(extras))
    return Genome(resolution, stages, taps, HeadGene(kind, extras, anchors),
                  channel_divisor=CHANNEL_DIVISOR)


def _sample_stage(trial: optuna.trial.BaseTrial, i: int) -> StageGene:
    lo, hi, step = WIDTH
    width = round(trial.suggest_float(f"s{i}_width", lo, hi, step=step), 4)
    depth = trial.suggest_int(f"s{i}_depth", *DEPTHS[i])
    block = trial.suggest_categorical(f"s{i}_block", list(BLOCK_TYPES))
    kernel = trial.suggest_categorical(f"s{i}_kernel", list(KERNELS))
    return StageGene(width, depth, block, kernel)


def _sample_taps(trial: optuna.trial.BaseTrial, stages: tuple[StageGene, ...]
                 ) -> tuple[tuple[int, int], ...]:
    taps = []
    for i in range(1, NUM_STAGES):
        choices = ["none", "end"] if i == 1 else ["none", "end", "prev"]
        choice = trial.suggest_categorical(f"s{i}_tap", choices)
        depth = stages[i - 1].depth
        if choice == "end" or (choice == "prev" and depth == 1):
            taps.append((i, depth))
        elif choice == "prev":
            taps.append((i, depth - 1))
    taps.append((NUM_STAGES, stages[-1].depth))
    return tuple(taps)


def max_extras(resolution: int) -> int:
    """How many stride-2 extra layers fit before the map is 1x1."""
    size, n = resolution // STAGE_STRIDES[-1], 0
    while size > 1 and n < MAX_EXTRAS:
        size, n = math.ceil(size / 2), n + 1
    return n


def _sample_extras(trial: optuna.trial.BaseTrial, resolution: int) -> tuple[int, ...]:
    n = min(trial.suggest_int("n_extras", 0, MAX_EXTRAS), max_extras(resolution))
    return tuple(trial.suggest_categorical(f"extra{j}_ch", list(EXTRA_CHANNELS))
                 for j in range(n))


def _sample_anchors(trial: optuna.trial.BaseTrial, num_maps: int) -> tuple[AnchorGene, ...]:
    smin = round(trial.suggest_float("anchor_smin", 0.05, 0.30, step=0.01), 4)
    smax = round(trial.suggest_float("anchor_smax", 0.60, 0.95, step=0.05), 4)
    ratios = []
    for k in range(num_maps):
        text = trial.suggest_categorical(f"map{k}_ratios", list(RATIO_CHOICES))
        ratios.append(tuple(float(r) for r in text.split(",") if r))
    return linear_anchors(num_maps, smin, smax, tuple(ratios))


def random_genomes(n: int, seed: int = 0) -> list[Genome]:
    """``n`` genomes drawn uniformly from the space (an in-memory study, RandomSampler)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    genomes = []
    for _ in range(n):
        trial = study.ask()
        genomes.append(sample_genome(trial))
        study.tell(trial, 0.0)
    return genomes
