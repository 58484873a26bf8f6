"""Genomes per second for estimate-only scoring, on one core.

One genome's score = lower it to the layer graph + params + MACs (both conventions) + int8
flash + TFLM arena plan + budget check: exactly what ``estimators.estimate.estimate`` does in a
search. Genomes are pre-sampled (sampling is Optuna's cost, not ours).

    .venv/bin/python scripts/bench_estimators_speed.py [--genomes 300] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

GOAL_PER_S = 50.0


def _pin_one_core() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _rate(genomes: list, target: object, repeats: int) -> list[float]:
    from estimators.estimate import estimate
    from search_space.model import lower

    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for genome in genomes:
            estimate(lower(genome, 20).graph, target)  # type: ignore[arg-type]
        rates.append(len(genomes) / (time.perf_counter() - start))
    return rates


def _largest_genome() -> object:
    """The most expensive genome the sampler can produce: widest, deepest, 320, every tap."""
    from search_space.genome import Genome, HeadGene, StageGene, linear_anchors
    from search_space.sampling import CHANNEL_DIVISOR, max_extras
    from search_space.space import FULL_SPACE as SPACE

    stages = tuple(StageGene(SPACE.widths[i][1], SPACE.depths[i][1], "dlb_skip", 5)
                   for i in range(4))
    taps = ((1, stages[0].depth), (2, stages[1].depth), (3, stages[2].depth),
            (4, stages[3].depth))
    extras = (max(SPACE.extra_channels),) * max_extras(320)
    n_maps = len(taps) + len(extras)
    anchors = linear_anchors(n_maps, 0.05, 0.95, ((2.0, 3.0),) * n_maps)
    return Genome(320, stages, taps, HeadGene("ssd", extras, anchors), CHANNEL_DIVISOR)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genomes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    _pin_one_core()

    import torch

    torch.set_num_threads(1)
    from estimators.targets import get_target
    from search_space.baselines import seed_genome
    from search_space.sampling import random_genomes

    target = get_target("stm32h7")
    sampled = random_genomes(args.genomes, seed=args.seed)
    seed = [seed_genome(1.0)] * 50
    _rate(sampled[:20], target, 1)  # warm-up: imports, caches
    result = {
        "sampled_genomes_per_s": statistics.median(_rate(sampled, target, args.repeats)),
        "etn_w1_0_per_s": statistics.median(_rate(seed, target, args.repeats)),
        "largest_genome_per_s": statistics.median(
            _rate([_largest_genome()] * 20, target, args.repeats)),
        "genomes": args.genomes, "seed": args.seed, "repeats": args.repeats,
        "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
        "goal_per_s": GOAL_PER_S,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"sampled genomes: {result['sampled_genomes_per_s']:.1f} genomes/s "
              f"(median of {args.repeats} passes over {args.genomes}, seed {args.seed})")
        print(f"etn-w1.0-ssdlite: {result['etn_w1_0_per_s']:.1f} genomes/s")
        print(f"largest genome of the space: {result['largest_genome_per_s']:.1f} genomes/s")
        slowest = min(result["sampled_genomes_per_s"], result["etn_w1_0_per_s"],
                      result["largest_genome_per_s"])
        print(f"goal >= {GOAL_PER_S:.0f}/s: {'met' if slowest >= GOAL_PER_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
