"""``bench_search.py --versus-random``: the search's top-k against k random genomes of the same
fitted space and the fitting seed baselines, all trained with one fixed recipe (see
``bench_search.py`` for the protocol and the goal)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_proxies import finished, refuse, run_jobs, train_one  # the scripts folder's own helpers

from artefacts.atomic import atomic_write_json
from nas.search.config import CONFIG_ATTR, SearchConfig
from nas.search.driver import BASELINES_SUFFIX
from nas.search.finalize import candidates
from nas.search.objective import assess
from nas.search.storage import open_study
from objectives.data.demo import demo_dataset
from objectives.train import Recipe
from search_space.sampling import random_genomes
from search_space.spec import ModelSpec

STUDY = "versus-random"
RANDOM_SEED_OFFSET = 1000  # the random arm's draw seed: never the search's own sampler seed
RANDOM_POOL = 400  # genomes drawn for the random arm; the first k feasible are kept


@dataclasses.dataclass(frozen=True)
class Entrant:
    name: str
    arm: str  # "search", "random" or "baseline"
    spec: ModelSpec
    latency_ms: float
    proxy: float | None = None

    def row(self, summaries: list[dict[str, Any] | None]) -> dict[str, Any]:
        """Its metrics: the mean over its trainings (one per training seed), None until all
        are done."""
        done = [s for s in summaries if s is not None]
        complete = bool(done) and len(done) == len(summaries)

        def mean(key: str) -> float | None:
            return statistics.fmean(s[key] for s in done) if complete else None

        minutes = mean("wall_s")
        return {"name": self.name, "arm": self.arm, "latency_ms": round(self.latency_ms, 2),
                "proxy": self.proxy, "ap50": mean("ap50"), "map": mean("map"),
                "ap50_per_train_seed": [s["ap50"] for s in done] if complete else None,
                "train_min": None if minutes is None else round(minutes / 60, 1),
                "genome": self.spec.genome.to_dict() if self.spec.genome else None,
                "baseline": self.spec.baseline}


def run_search(args: argparse.Namespace, seed: int, runs: Path) -> None:
    """The search of one seed (a rerun of a finished study adds no trials)."""
    tinynas = Path(sys.executable).with_name("tinynas")
    cmd = [str(tinynas), "search", "--target", args.target, "--flash", args.flash, "--ram",
           args.ram, "--trials", str(args.trials), "--seed", str(seed), "--study", STUDY,
           "--runs-dir", str(runs), "--quiet", "--json", *args.extra]
    if args.data is not None:
        cmd += ["--data", str(args.data)]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"tinynas search exited {done.returncode}")


def entrants(args: argparse.Namespace, seed: int, runs: Path) -> list[Entrant]:
    """What ``--train-top K`` would train (the same selection: ``finalize.candidates``), then
    the random arm."""
    study = open_study(STUDY, None, runs)
    base_study = open_study(STUDY + BASELINES_SUFFIX, None, runs)
    config = SearchConfig.from_dict(study.user_attrs[CONFIG_ATTR])
    found = [Entrant(f"s{seed}-baseline-{c.row.baseline}" if c.row.baseline
                     else f"s{seed}-search-{c.row.trial}",
                     "baseline" if c.row.baseline else "search", c.spec,
                     c.row.latency_ms or 0.0, None if c.row.baseline else c.row.proxy)
             for c in candidates(study, base_study, args.k, runs)]
    return found + random_arm(config, seed, args.k)


def search_seconds(runs: Path) -> float:
    """Wall seconds the search's trials ran, summed over trials (its proxy scores: the cost
    the random arm does not pay)."""
    study = open_study(STUDY, None, runs)
    spans = [t.duration.total_seconds() for t in study.get_trials(deepcopy=False)
             if t.duration is not None]
    return round(sum(spans), 1)


def random_arm(config: SearchConfig, seed: int, k: int) -> list[Entrant]:
    """The first ``k`` feasible genomes drawn at random from the study's own fitted space."""
    target, budgets = config.target_and_budgets()
    arm = []
    draws = random_genomes(RANDOM_POOL, seed=seed + RANDOM_SEED_OFFSET,
                           space=config.search_space())
    for index, genome in enumerate(draws):
        spec = ModelSpec(config.num_classes, genome=genome, name=f"random-{index}")
        assessed = assess(spec, target, budgets, config.latency_budget_ms)
        if assessed.fits:
            arm.append(Entrant(f"s{seed}-random-{index}", "random", spec,
                               assessed.estimate.latency.ms))
        if len(arm) == k:
            return arm
    refuse(f"only {len(arm)} of {RANDOM_POOL} random genomes fit; lower --k")


def beats(winners: list[dict[str, Any]], rival: dict[str, Any]) -> list[str]:
    """The models of ``winners`` with a higher AP50 than ``rival`` at equal or lower latency."""
    return [w["name"] for w in winners if w["ap50"] is not None and rival["ap50"] is not None
            and w["ap50"] > rival["ap50"] and w["latency_ms"] <= rival["latency_ms"]]


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    search = [r for r in rows if r["arm"] == "search"]
    randoms = [r for r in rows if r["arm"] == "random" and r["ap50"] is not None]
    best_random = max(randoms, key=lambda r: r["ap50"]) if randoms else None
    over_random = beats(search, best_random) if best_random else []
    baselines = {r["name"]: beats(search, r) for r in rows if r["arm"] == "baseline"}
    best_search = max((r for r in search if r["ap50"] is not None), key=lambda r: r["ap50"],
                      default=None)
    return {"best_search": best_search and best_search["name"],
            "best_random": best_random and best_random["name"],
            "beats_random_best": over_random, "beats_baselines": baselines,
            "goal_met": bool(over_random) and all(baselines.values())}


def markdown(seed: int, rows: list[dict[str, Any]]) -> str:
    lines = [f"seed {seed}", "", "| model | arm | predicted latency (ms) | proxy | AP50 | mAP "
             "| training (min) |", "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["arm"], -(r["ap50"] or 0))):
        proxy = "-" if r["proxy"] is None else f"{r['proxy']:.4g}"
        ap = "-" if r["ap50"] is None else f"{100 * r['ap50']:.1f}"
        if r["ap50"] is not None and len(r["ap50_per_train_seed"]) > 1:
            ap += " (" + " / ".join(f"{100 * a:.1f}" for a in r["ap50_per_train_seed"]) + ")"
        mp = "-" if r["map"] is None else f"{100 * r['map']:.1f}"
        minutes = "-" if r["train_min"] is None else f"{r['train_min']:.1f}"
        lines.append(f"| {r['name']} | {r['arm']} | {r['latency_ms']:.1f} | {proxy} | {ap} "
                     f"| {mp} | {minutes} |")
    return "\n".join(lines)


def seed_list(text: str, flag: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        refuse(f"{flag} {text!r}: expected distinct integers separated by commas, e.g. 0,1,2")
    return seeds


def run_name(entrant: str, train_seed: int) -> str:
    """The training's directory: the recipe's own seed (0) keeps the bare name, so runs made
    before training seeds were an option are reused."""
    return entrant if train_seed == 0 else f"{entrant}@t{train_seed}"


def recipe_tag(recipe: Recipe) -> str:
    """A short digest of what a recipe computes (not how many threads or workers run it)."""
    text = json.dumps(dataclasses.replace(recipe, threads=1, workers=0).to_dict(),
                      sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def versus_random(args: argparse.Namespace) -> int:
    seeds = seed_list(args.seeds, "--seeds")
    train_seeds = seed_list(args.train_seeds, "--train-seeds")
    recipe = Recipe(threads=1, workers=0)
    if args.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    data = (args.data or demo_dataset("default")).resolve()
    out = args.out.resolve()
    started = time.monotonic()
    per_seed = {}
    # Trainings are kept per recipe: a smoke run's are never taken for the real run's.
    trained = f"train-{recipe_tag(recipe)}"
    for seed in seeds:
        runs = out / f"seed-{seed}"
        run_search(args, seed, runs)
        field = entrants(args, seed, runs)
        runs_of = {e.name: {run_name(e.name, t): dataclasses.replace(recipe, seed=t)
                            for t in train_seeds} for e in field}
        tasks = {name: (train_one, (e.spec.to_dict(), str(data), str(runs / trained / name),
                                    seeded.to_dict()))
                 for e in field for name, seeded in runs_of[e.name].items()
                 if finished(runs / trained / name) is None}
        run_jobs(args.jobs, tasks, "train")
        rows = [e.row([finished(runs / trained / name) for name in runs_of[e.name]])
                for e in field]
        per_seed[seed] = {"rows": rows, "search_trial_s": search_seconds(runs),
                          **verdict(rows)}
        print(markdown(seed, rows) + f"\n\nsearch: {per_seed[seed]['search_trial_s'] / 60:.1f} "
              "trial-minutes of proxy scoring\n", flush=True)
    result = {"date": datetime.date.today().isoformat(),
              "command": " ".join(["scripts/bench_search.py", *sys.argv[1:]]),
              "cores": os.cpu_count(), "wall_s": round(time.monotonic() - started, 1),
              "target": args.target, "flash": args.flash, "ram": args.ram,
              "trials": args.trials, "k": args.k, "train_seeds": train_seeds,
              "extra": args.extra,
              "recipe": recipe.to_dict(), "data": str(data), "seeds": per_seed,
              "goal_met": all(s["goal_met"] for s in per_seed.values())}
    atomic_write_json(out / "versus_random.json", result, indent=2)
    if args.json:
        atomic_write_json(args.json, result, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k not in ("seeds", "recipe")}
                     | {"verdicts": {s: {k: v for k, v in r.items() if k != "rows"}
                                     for s, r in per_seed.items()}}, indent=2))
    return 0 if result["goal_met"] else 1
