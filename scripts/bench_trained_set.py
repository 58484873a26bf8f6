"""Grow the trained-architecture set: genomes from budget-fitted spaces, each trained with the
default recipe on the demo data, appended to ``objectives/proxies/data/trained_set.json``.

Spaces: ``fit_space`` for stm32h7 at 512 KiB flash / 256 KiB RAM and for esp32 at its default
budgets (3 classes, no latency budget). From each, ``--pool`` genomes are drawn with
``random_genomes`` (the search's own sampler) and the feasible ones sorted by predicted
latency; the architectures are then taken at latency quantiles in van der Corput order (0.5,
0.25, 0.75, 0.125, ...), so every prefix of the plan is spread over latency and a later run
with larger counts extends the plan without changing what is already in it. Two splits, two
draw seeds: ``fit`` (``--fit-seed``) and ``heldout`` (``--heldout-seed``, which no fit ever
sees). The plan interleaves targets and splits (one held-out per two fit), so an interrupted
run leaves both splits growing.

The plan is pinned: the first training run writes it (genomes, fitted spaces, settings) beside
the results file (``trained_set_plan.json`` for the shipped set), and later runs train from
that file, so an estimator change that moves ``fit_space`` cannot change what a resumed run
trains. ``--replan`` draws a new plan from the current estimators (what is already trained
stays in the set). ``--plan-file`` pins another draw elsewhere, so a fresh held-out split (a
new ``--heldout-seed``, ``--fit-per-space 0``) grows the same set:

    .venv/bin/python scripts/bench_trained_set.py --fit-per-space 0 --heldout-per-space 8 \
        --heldout-seed 9018 --plan-file objectives/proxies/data/trained_set_heldout9018_plan.json

    .venv/bin/python scripts/bench_trained_set.py --work /tmp/trained-set   # resumable
    nohup .venv/bin/python scripts/bench_trained_set.py --work /tmp/trained-set \
        > /tmp/trained-set.log 2>&1 &
    .venv/bin/python scripts/bench_trained_set.py --plan --json   # the plan, no training
    .venv/bin/python scripts/bench_trained_set.py --replan ...   # draw again, then train

Resumable: an architecture already in the results file is skipped; one whose training was
interrupted resumes from its last epoch checkpoint in ``--work``. Each finished architecture is
appended (atomically) at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import platform
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from artefacts.atomic import atomic_write_json
from artefacts.tags import check_format
from estimators.estimate import Budgets
from estimators.targets import KIB, get_target
from nas.search.objective import assess
from nas.search.space_fit import fit_space
from objectives.data.demo import demo_dataset
from objectives.proxies.trained_set import read_set_file, shipped_path
from objectives.train import Recipe
from search_space.sampling import random_genomes
from search_space.space import SearchSpace
from search_space.spec import ModelSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_proxies import finished, train_one  # the scripts folder's own helpers

NUM_CLASSES = 3  # the demo data's
PLAN_FORMAT = "tinynas-trained-plan/1"
# The settings a plan is drawn with: a pinned plan made with others is not silently reused.
PLAN_SETTINGS = ("pool", "fit_per_space", "heldout_per_space", "fit_seed", "heldout_seed")
# (label, target name, flash budget, RAM budget): None is the target's default.
SPACES = (("stm32h7-512k-256k", "stm32h7", 512 * KIB, 256 * KIB),
          ("esp32-default", "esp32", None, None))


@dataclasses.dataclass(frozen=True)
class Planned:
    id: str
    split: str
    space: str
    target: str
    seed: int
    spec: ModelSpec
    predicted: dict[str, Any]
    fitted_for: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "split": self.split, "space": self.space, "target": self.target,
                "seed": self.seed, "spec": self.spec.to_dict(), "predicted": self.predicted,
                "fitted_for": self.fitted_for}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Planned:
        return cls(data["id"], data["split"], data["space"], data["target"], data["seed"],
                   ModelSpec.from_dict(data["spec"]), data["predicted"], data["fitted_for"])


def genome_id(genome_dict: dict[str, Any]) -> str:
    text = json.dumps(genome_dict, sort_keys=True)
    return "g" + hashlib.sha1(text.encode()).hexdigest()[:10]


def van_der_corput(count: int) -> Iterator[float]:
    """0.5, 0.25, 0.75, 0.125, ... (base 2), the first ``count`` of them."""
    for n in range(1, count + 1):
        q, denominator, k = 0.0, 1.0, n
        while k:
            denominator *= 2
            k, bit = divmod(k, 2)
            q += bit / denominator
        yield q


def fitted_space(target_name: str, flash: int | None, ram: int | None) -> SearchSpace:
    target = get_target(target_name)
    return fit_space(target, Budgets.for_target(target, flash, ram), None, NUM_CLASSES)


def draw(label: str, target_name: str, flash: int | None, ram: int | None, seed: int,
         pool: int, count: int, split: str) -> list[Planned]:
    """``count`` feasible genomes of the fitted space, at latency quantiles."""
    target = get_target(target_name)
    budgets = Budgets.for_target(target, flash, ram)
    space = fitted_space(target_name, flash, ram)
    feasible = []
    for genome in random_genomes(pool, seed=seed, space=space):
        spec = ModelSpec(NUM_CLASSES, genome=genome)
        assessed = assess(spec, target, budgets, None)
        if assessed.fits:
            est = assessed.estimate
            feasible.append((est.latency.ms, genome, {
                "latency_ms": round(est.latency.ms, 2), "macs": est.macs, "params": est.params,
                "flash_bytes": est.flash_bytes, "ram_bytes": est.ram_bytes}))
    feasible.sort(key=lambda item: item[0])
    chosen: list[Planned] = []
    taken: set[int] = set()
    for q in van_der_corput(4 * count):
        if len(chosen) == count or len(taken) == len(feasible):
            break
        aim = round(q * (len(feasible) - 1))
        # The free rank nearest the quantile's, the higher one on a tie.
        index = min((i for i in range(len(feasible)) if i not in taken),
                    key=lambda i: (abs(i - aim), -i))
        taken.add(index)
        _, genome, predicted = feasible[index]
        gid = genome_id(genome.to_dict())
        chosen.append(Planned(gid, split, label, target_name, seed,
                              ModelSpec(NUM_CLASSES, genome=genome, name=gid), predicted,
                              space.fit.fitted_for if space.fit else ""))
    if len(chosen) < count:
        raise SystemExit(f"only {len(feasible)} of {pool} genomes drawn from the {label} space "
                         f"fit; raise --pool")
    return chosen


def plan(args: argparse.Namespace) -> list[Planned]:
    fit = {s[0]: draw(*s, args.fit_seed, args.pool, args.fit_per_space, "fit") for s in SPACES}
    held = {s[0]: draw(*s, args.heldout_seed, args.pool, args.heldout_per_space, "heldout")
            for s in SPACES}
    order: list[Planned] = []
    rounds = max(args.heldout_per_space, (args.fit_per_space + 1) // 2)
    for k in range(rounds):
        for label in fit:
            order += held[label][k:k + 1] + fit[label][2 * k:2 * k + 2]
    unique: dict[str, Planned] = {}
    for p in order:  # a genome drawn twice (both seeds, or both spaces) is trained once
        unique.setdefault(p.id, p)
    return list(unique.values())


def plan_path(results: Path) -> Path:
    """Where the plan of the set file ``results`` is pinned."""
    return results.with_name(f"{results.stem}_plan.json")


def plan_file(order: list[Planned], args: argparse.Namespace) -> dict[str, Any]:
    """The pinned plan: the settings, the fitted spaces the genomes were drawn from, the
    genomes in training order."""
    spaces = [{"label": label, "target": name, "flash_bytes": flash, "ram_bytes": ram,
               "space": fitted_space(name, flash, ram).to_dict()}
              for label, name, flash, ram in SPACES]
    return {"format": PLAN_FORMAT, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "settings": {k: getattr(args, k) for k in PLAN_SETTINGS}, "spaces": spaces,
            "architectures": [p.to_dict() for p in order]}


def pinned_plan(args: argparse.Namespace) -> list[Planned] | None:
    """The plan pinned beside ``args.results``, if there is one and ``--replan`` is not set."""
    path = args.plan_file
    if args.replan or not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    check_format(data, PLAN_FORMAT, lambda found: SystemExit(
        f"{path}: format {found!r} is not {PLAN_FORMAT!r}"))
    asked = {k: getattr(args, k) for k in PLAN_SETTINGS}
    pinned = {k: data.get("settings", {}).get(k) for k in PLAN_SETTINGS}
    if pinned != asked:
        changed = ", ".join(f"--{k.replace('_', '-')} {pinned[k]} (asked {asked[k]})"
                            for k in PLAN_SETTINGS if pinned[k] != asked[k])
        raise SystemExit(f"{path} was drawn with {changed}; pass those or --replan")
    return [Planned.from_dict(a) for a in data["architectures"]]


def record(p: Planned, summary: dict[str, Any], recipe: Recipe, data: str) -> dict[str, Any]:
    history = summary.get("history", [])
    return {
        "id": p.id, "split": p.split, "space": p.space, "target": p.target,
        "fitted_for": p.fitted_for, "draw_seed": p.seed, "num_classes": NUM_CLASSES,
        "genome": p.spec.genome.to_dict(),  # type: ignore[union-attr]
        "spec": p.spec.to_dict(),  # what was trained, padding included
        "predicted": p.predicted, "ap50": round(summary["ap50"], 5),
        "map": round(summary["map"], 5),
        "loss_curve": [round(h["loss"], 5) for h in history],
        # Training time of the last invocation (all of it unless the run was resumed).
        "train_s": round(summary["wall_s"], 1),
        "recipe": dataclasses.replace(recipe, threads=1, workers=0).to_dict(),
        "data": data, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__, "python": platform.python_version(),
    }


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def append(path: Path, entry: dict[str, Any]) -> int:
    data = read_set_file(path)
    data["architectures"] = [a for a in data["architectures"] if a["id"] != entry["id"]]
    data["architectures"].append(entry)
    atomic_write_json(path, data, indent=1)
    return len(data["architectures"])


def train_plan(todo: list[Planned], args: argparse.Namespace, recipe: Recipe, data: Path
               ) -> None:
    """Train ``todo`` ``args.jobs`` at a time (spawned processes, one torch thread each),
    appending each as it finishes; a failure is logged and the rest go on."""
    label = "demo:default" if args.data is None else str(data)
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        running: dict[Future, Planned] = {}
        queue = list(todo)
        while queue or running:
            while queue and len(running) < args.jobs:
                p = queue.pop(0)
                run_dir = args.work / p.id
                running[pool.submit(train_one, p.spec.to_dict(), str(data), str(run_dir),
                                    recipe.to_dict())] = p
                log(f"start {p.id} ({p.split}, {p.space}, predicted "
                    f"{p.predicted['latency_ms']:.0f} ms, {p.predicted['macs'] / 1e6:.1f} MMACs)")
            done = next(iter(f for f in running if f.done()), None)
            if done is None:
                time.sleep(2)
                continue
            p = running.pop(done)
            try:
                outcome = done.result()
            except Exception as exc:  # one broken architecture must not stop the set
                log(f"{p.id} FAILED: {type(exc).__name__}: {exc}")
                continue
            summary = finished(args.work / p.id)
            assert summary is not None
            entry = {**record(p, summary, recipe, label), "resumed": outcome["resumed"]}
            total = append(args.results, entry)
            log(f"done {p.id}: AP50 {100 * summary['ap50']:.1f}, "
                f"{summary['history'][-1]['wall_s']:.0f} s; {total} in {args.results}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/tinynas-trained-set"),
                        help="training runs (checkpoints) are kept here, outside git")
    parser.add_argument("--results", type=Path, default=shipped_path(),
                        help="the set file appended to (default: the shipped one)")
    parser.add_argument("--data", type=Path, help="dataset (default: the demo set)")
    parser.add_argument("--pool", type=int, default=300, help="genomes drawn per space")
    parser.add_argument("--fit-per-space", type=int, default=16)
    parser.add_argument("--heldout-per-space", type=int, default=8)
    parser.add_argument("--fit-seed", type=int, default=1)
    parser.add_argument("--heldout-seed", type=int, default=9017,
                        help="draw seed of the held-out split (never used by a fit)")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at once")
    parser.add_argument("--epochs", type=int, help="override the recipe's (smoke runs only)")
    parser.add_argument("--limit", type=int, help="train at most this many this run")
    parser.add_argument("--plan", action="store_true", help="print the plan, train nothing")
    parser.add_argument("--plan-file", type=Path,
                        help="where the plan is pinned (default: beside --results, "
                        "RESULTS_plan.json); another file holds another draw, e.g. a fresh "
                        "held-out split trained into the same set")
    parser.add_argument("--replan", action="store_true",
                        help="draw the plan again from the current estimators and pin it")
    parser.add_argument("--json", action="store_true", help="the plan as JSON on stdout")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    recipe = Recipe(threads=1, workers=0)
    if args.epochs is not None and args.results.resolve() == shipped_path().resolve():
        # The shipped set is the default recipe's ground truth; a smoke run goes elsewhere.
        print(f"--epochs {args.epochs}: a changed recipe needs its own --results file, not "
              "the shipped set", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 0:
        print(f"--limit {args.limit}: give 0 or more architectures", file=sys.stderr)
        return 2
    if args.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    data = (args.data or demo_dataset("default")).resolve()
    args.work = args.work.resolve()
    args.plan_file = args.plan_file or plan_path(args.results)
    pinned = pinned_plan(args)
    order = pinned if pinned is not None else plan(args)
    have = {a["id"] for a in read_set_file(args.results)["architectures"]}
    todo = [p for p in order if p.id not in have][:args.limit]
    rows = [{"id": p.id, "split": p.split, "space": p.space, "done": p.id in have,
             **p.predicted} for p in order]
    if args.json:
        sys.stdout.write(json.dumps({"plan": rows, "recipe": recipe.to_dict()}, indent=2) + "\n")
    done = sum(p.id in have for p in order)
    log(f"plan: {len(order)} architectures, {done} already in {args.results}; training "
        f"{0 if args.plan else len(todo)} now")
    if not args.plan and pinned is None:
        atomic_write_json(args.plan_file, plan_file(order, args), indent=1)
        log(f"plan pinned in {args.plan_file}")
    if not args.plan and todo:
        train_plan(todo, args, recipe, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
