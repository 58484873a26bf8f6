"""How well does each accuracy proxy rank architectures? Kendall tau-b against trained AP50.

Architectures: ``--pool`` genomes drawn uniformly from the space (``random_genomes(pool,
seed)``), those that fit the target's default budgets (what a search ranks), then ``--count``
of them at evenly spaced ranks of predicted latency (so small and large, low and high
resolution are all represented). Each is trained from scratch with the default recipe
(``objectives.train.Recipe()``, 12 epochs) on the demo data and evaluated on its val split
(AP50, pycocotools); then every proxy scores every architecture.

    .venv/bin/python scripts/bench_proxies.py --out /tmp/proxies --jobs 2   # ~1 h on 2 cores
    .venv/bin/python scripts/bench_proxies.py --out /tmp/proxies --only-score --json
    .venv/bin/python scripts/bench_proxies.py --quick --out /tmp/proxies-quick   # smoke run
    .venv/bin/python scripts/bench_proxies.py --heldout --json   # on the shipped trained set

``--heldout`` trains nothing: it scores the held-out split of the shipped trained set
(``objectives/proxies/data/trained_set.json``, grown by ``scripts/bench_trained_set.py``) with
the training-free proxies, and with ``loss-area`` replayed from each run's recorded loss curve
(the proxy's run is the first epoch of that run; its seconds are the recorded epoch's), and
reports Kendall tau and Spearman rho against trained AP50 with
bootstrap 90% intervals, top-5 recall, tau within latency bands and seconds per score.

Resumable: a finished training (``summary.json`` next to ``last.pt``) is reused, an
interrupted one resumed from its last epoch; proxy scores are cached in ``scores.json`` per
architecture (``--only-score`` recomputes those of ``--proxies`` from the finished trainings
and keeps the others). ``--jobs 2``
runs two trainings (or scorings) at once, each a separate process with one torch thread and
in-process data loading, which on 2 cores is about twice the throughput of one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from artefacts.atomic import atomic_write_json
from estimators.estimate import estimate
from estimators.targets import get_target
from objectives.data import open_dataset
from objectives.data.demo import demo_dataset
from objectives.proxies import (
    AccuracyProxy,
    ProxyData,
    ProxyError,
    get_proxy,
    kendall_tau,
    list_proxies,
)
from objectives.proxies.loss_area import LossAreaProxy
from objectives.proxies.measured import record_draw
from objectives.proxies.short_train import ShortTrainProxy
from objectives.proxies.trained_set import TrainedArch, load_trained_set
from objectives.train import CHECKPOINT_NAME, SUMMARY_NAME, Recipe, train
from search_space.genome import Genome
from search_space.sampling import random_genomes
from search_space.spec import ModelSpec

NUM_CLASSES = 3  # the demo data's
SCORES_NAME = "scores.json"


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    spec: ModelSpec
    latency_ms: float
    macs: int
    params: int

    @property
    def genome(self) -> Genome:
        return self.spec.genome  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        g = self.genome
        return {"name": self.name, "resolution": g.resolution, "head": g.head.kind,
                "blocks": "/".join(s.block for s in g.stages),
                "widths": "/".join(f"{s.width:g}" for s in g.stages),
                "depths": "/".join(str(s.depth) for s in g.stages),
                "extras": len(g.head.extras), "maps": len(g.head.anchors),
                "anchor_smin": round(g.head.anchors[0].min_scale, 3),
                "latency_ms": round(self.latency_ms, 1), "macs": self.macs,
                "params": self.params}


def pick(pool: int, seed: int, count: int, target: str) -> list[Candidate]:
    """``count`` genomes that fit ``target``: per head type, evenly spread over predicted
    latency. SSD heads are the minority among fitting genomes (they cost flash and RAM), so
    each head type first gets an equal share, and the rest goes by how common it is."""
    board = get_target(target)
    fitting: dict[str, list[Candidate]] = {}
    for index, genome in enumerate(random_genomes(pool, seed=seed)):
        spec = ModelSpec(NUM_CLASSES, genome=genome, name=f"a{index:03d}")
        est = estimate(spec.lower().graph, board)
        if est.fits:
            candidate = Candidate(spec.name, spec, est.latency.ms, est.macs, est.params)
            fitting.setdefault(genome.head.kind, []).append(candidate)
    total = sum(len(group) for group in fitting.values())
    if total < count:
        raise SystemExit(f"only {total} of {pool} sampled genomes fit {target}; raise --pool")
    base = count // (len(fitting) + 1)
    quotas = {kind: min(len(group), base) for kind, group in fitting.items()}
    for kind in sorted(fitting, key=lambda k: -len(fitting[k])):
        share = round((count - len(fitting) * base) * len(fitting[kind]) / total)
        quotas[kind] = min(len(fitting[kind]), quotas[kind] + share)
    largest = max(fitting, key=lambda k: len(fitting[k]))
    quotas[largest] += count - sum(quotas.values())  # rounding
    chosen = []
    for kind, group in sorted(fitting.items()):
        group.sort(key=lambda c: c.latency_ms)
        ranks = np.unique(np.round(np.linspace(0, len(group) - 1, quotas[kind])).astype(int))
        chosen += [group[i] for i in ranks]
    return sorted(chosen, key=lambda c: c.latency_ms)


# ---- training (one process per job) ---------------------------------------------------------

def finished(run_dir: Path) -> dict[str, Any] | None:
    """The training summary if the run in ``run_dir`` completed and was evaluated."""
    path = run_dir / SUMMARY_NAME
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    done = summary.get("total_epochs") and summary.get("epochs") == summary["total_epochs"]
    return summary if done and summary.get("ap50") is not None else None


def train_one(spec_dict: dict[str, Any], data: str, run_dir: str, recipe_dict: dict[str, Any]
              ) -> dict[str, Any]:
    """Train (or resume) one architecture; runs in a worker process."""
    torch.set_num_threads(1)
    spec, recipe, out = ModelSpec.from_dict(spec_dict), Recipe.from_dict(recipe_dict), Path(run_dir)
    train_set, val_set = open_dataset(data, "train"), open_dataset(data, "val")
    resume = (out / CHECKPOINT_NAME).is_file()
    info = {"root": str(Path(data).resolve()), "format": None, "train_split": "train",
            "val_split": "val"}
    result = train(spec, train_set, out, recipe, val_set=val_set, resume=resume,
                   data_info=info)
    assert result.evaluation is not None
    return {"ap50": result.evaluation.ap50, "wall_s": result.wall_s, "resumed": resume}


# ---- scoring ------------------------------------------------------------------------------

def proxies(names: list[str], short_steps: list[int]) -> dict[str, AccuracyProxy]:
    """The proxies to measure, by label: the registered ones (short-train at its default step
    count), plus short-train at each extra step count as ``short-train@K``."""
    chosen: dict[str, AccuracyProxy] = {name: get_proxy(name) for name in names}
    for steps in short_steps:
        chosen[f"short-train@{steps}"] = ShortTrainProxy(steps=steps)
    return chosen


def score_one(spec_dict: dict[str, Any], data: str, run_dir: str, labels: list[str],
              short_steps: list[int], seed: int, cached: dict[str, Any]) -> dict[str, Any]:
    """Score one architecture with every proxy not in ``cached``; runs in a worker process."""
    torch.set_num_threads(1)
    spec = ModelSpec.from_dict(spec_dict)
    data_set = ProxyData(open_dataset(data, "train"), open_dataset(data, "val"), seed)
    registered = [name for name in labels if "@" not in name]
    scores = dict(cached)
    for label, proxy in proxies(registered, short_steps).items():
        if label in scores or label not in labels:
            continue
        start = time.perf_counter()
        value = proxy.score(spec, data_set)
        scores[label] = {"score": value, "seconds": round(time.perf_counter() - start, 3)}
        write_json(Path(run_dir) / SCORES_NAME, scores)  # kept even if a later proxy fails
    return scores


def write_json(path: Path, data: Any) -> None:
    atomic_write_json(path, data, indent=2)


# ---- orchestration ------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_jobs(jobs: int, tasks: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]],
             what: str) -> dict[str, Any]:
    """Run ``tasks`` (name -> (function, args)) in ``jobs`` spawned processes; a failed task is
    logged and left out of the result, so the others still finish."""
    results: dict[str, Any] = {}
    if not tasks:
        return results
    # spawn, not fork: torch's thread pools do not survive a fork reliably.
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        started = time.monotonic()
        futures = {pool.submit(fn, *args): name for name, (fn, args) in tasks.items()}
        for future in as_completed(futures):
            name = futures[future]
            try:
                results[name] = future.result()
            except Exception as exc:  # one broken architecture must not stop the benchmark
                log(f"{what} {name} FAILED: {type(exc).__name__}: {exc}")
                continue
            log(f"{what} {name} done ({len(results)}/{len(tasks)}, "
                f"{time.monotonic() - started:.0f}s): {short(results[name])}")
    return results


def short(result: dict[str, Any]) -> str:
    """One line of a task's result: train {ap50, wall_s, resumed}, score {label: {score}}."""
    parts = []
    for key, value in result.items():
        value = value["score"] if isinstance(value, dict) else value
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts)


def train_all(chosen: list[Candidate], data: Path, out: Path, recipe: Recipe, jobs: int
              ) -> None:
    tasks = {}
    # Largest first: the long trainings start early and the short ones fill the gaps.
    for c in sorted(chosen, key=lambda c: -c.macs):
        run_dir = out / c.name / "train"
        if finished(run_dir) is None:
            tasks[c.name] = (train_one, (c.spec.to_dict(), str(data), str(run_dir),
                                         recipe.to_dict()))
    log(f"training {len(tasks)} of {len(chosen)} architectures ({jobs} at a time); "
        f"{len(chosen) - len(tasks)} already trained")
    run_jobs(jobs, tasks, "train")


def score_all(chosen: list[Candidate], data: Path, out: Path, labels: list[str],
              short_steps: list[int], seed: int, jobs: int, rescore: bool) -> None:
    tasks = {}
    for c in chosen:
        run_dir = out / c.name
        if finished(run_dir / "train") is None:
            continue
        path = run_dir / SCORES_NAME
        cached = json.loads(path.read_text("utf-8")) if path.is_file() else {}
        if rescore:  # only the proxies asked for; the others' scores stay
            cached = {k: v for k, v in cached.items() if k not in labels}
        if any(label not in cached for label in labels):
            tasks[c.name] = (score_one, (c.spec.to_dict(), str(data), str(run_dir), labels,
                                         short_steps, seed, cached))
    log(f"scoring {len(tasks)} architectures with {', '.join(labels)}")
    run_jobs(jobs, tasks, "score")


# ---- the report ---------------------------------------------------------------------------

def collect(chosen: list[Candidate], out: Path) -> list[dict[str, Any]]:
    """One row per finished training, with every score cached for it."""
    rows = []
    for c in chosen:
        summary = finished(out / c.name / "train")
        if summary is None:
            continue
        path = out / c.name / SCORES_NAME
        scores = json.loads(path.read_text("utf-8")) if path.is_file() else {}
        rows.append({**c.describe(), "ap50": summary["ap50"], "map": summary["map"],
                     "train_s": round(summary["wall_s"], 1),
                     "scores": {k: v["score"] for k, v in scores.items()},
                     "seconds": {k: v["seconds"] for k, v in scores.items()}})
    return rows


def taus(rows: list[dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
    result = []
    for label in labels:
        have = [r for r in rows if label in r["scores"]]
        tau = (kendall_tau([r["scores"][label] for r in have], [r["ap50"] for r in have])
               if len(have) >= 2 else float("nan"))
        seconds = [r["seconds"][label] for r in have]
        name = label.split("@")[0]
        free = name in list_proxies() and get_proxy(name).training_free
        # None, not NaN, for "no ranking": NaN is not JSON.
        result.append({"proxy": label, "kendall_tau": None if np.isnan(tau) else round(tau, 4),
                       "n": len(have),
                       "mean_seconds": round(float(np.mean(seconds)), 2) if seconds else None,
                       "training_free": free})
    return result


def print_report(rows: list[dict[str, Any]], tau_rows: list[dict[str, Any]],
                 labels: list[str], context: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title=f"Architectures ({context['date']}, {context['target']} budgets)")
    for col in ("arch", "res", "head", "blocks", "maps", "lat ms", "MMACs", "params",
                "train s", "AP50", *labels):
        table.add_column(col, justify="left" if col in ("arch", "head", "blocks") else "right")
    for r in sorted(rows, key=lambda r: -r["ap50"]):
        table.add_row(r["name"], str(r["resolution"]), r["head"], r["blocks"], str(r["maps"]),
                      f"{r['latency_ms']:.0f}", f"{r['macs'] / 1e6:.1f}", f"{r['params']:,}",
                      f"{r['train_s']:.0f}", f"{100 * r['ap50']:.1f}",
                      *(f"{r['scores'][k]:.4g}" if k in r["scores"] else "-" for k in labels))
    console.print(table)
    ranking = Table(title=f"Kendall tau-b of each proxy against trained AP50 "
                          f"({len(rows)} architectures)")
    for col in ("proxy", "tau", "n", "s / score", "training-free"):
        ranking.add_column(col, justify="left" if col == "proxy" else "right")
    for t in sorted(tau_rows, key=lambda t: 2 if t["kendall_tau"] is None else -t["kendall_tau"]):
        tau = "-" if t["kendall_tau"] is None else f"{t['kendall_tau']:.3f}"
        ranking.add_row(t["proxy"], tau, str(t["n"]),
                        "-" if t["mean_seconds"] is None else f"{t['mean_seconds']:.2f}",
                        "yes" if t["training_free"] else "no")
    console.print(ranking)


# ---- the held-out split of the shipped trained set ------------------------------------------

BOOTSTRAP = 2000
LATENCY_BANDS = 2  # per target: below and above its held-out median predicted latency


def rank_stats(scores: list[float], ap50: list[float], seed: int = 0,
               resamples: int = BOOTSTRAP) -> dict[str, Any]:
    """Kendall tau-b and Spearman rho with bootstrap 90% intervals (architectures resampled
    with replacement; a resample with a constant side counts as no ranking), and top-5 recall
    (None until there are more than 5 architectures: with 5 or fewer it is trivially 1)."""
    x, y = np.asarray(scores, dtype=float), np.asarray(ap50, dtype=float)
    x = np.nan_to_num(x, nan=-1e300, neginf=-1e300, posinf=1e300)
    n = len(x)
    result: dict[str, Any] = {"n": n, "kendall_tau": None, "kendall_tau_90": [None, None],
                              "spearman": None, "spearman_90": [None, None],
                              "top5_recall": None}
    if n >= 3:
        rng = np.random.default_rng(seed)
        draws = np.array([_correlations(x[idx], y[idx])
                          for idx in (rng.integers(0, n, n) for _ in range(resamples))])
        tau, rho = _correlations(x, y)
        low, high = np.nanpercentile(draws, 5, axis=0), np.nanpercentile(draws, 95, axis=0)
        result.update(kendall_tau=_num(tau), kendall_tau_90=[_num(low[0]), _num(high[0])],
                      spearman=_num(rho), spearman_90=[_num(low[1]), _num(high[1])])
    if n > 5:
        best = set(np.argsort(-y, kind="stable")[:5].tolist())
        picked = set(np.argsort(-x, kind="stable")[:5].tolist())
        result["top5_recall"] = len(best & picked) / 5
    return result


def _correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy.stats import kendalltau, spearmanr

    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    return float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)


def _num(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def band_taus(archs: list[TrainedArch], scores: list[float]) -> list[dict[str, Any]]:
    """Kendall tau within latency bands (per target, split at its median predicted latency):
    does the ranking still order models of similar cost?"""
    rows = []
    for target in sorted({a.target for a in archs}):
        members = [(a, s) for a, s in zip(archs, scores, strict=True) if a.target == target]
        members.sort(key=lambda m: m[0].latency_ms)
        for band, part in enumerate(np.array_split(np.arange(len(members)), LATENCY_BANDS)):
            chosen = [members[i] for i in part]
            tau = (_correlations(np.array([s for _, s in chosen], dtype=float),
                                 np.array([a.ap50 for a, _ in chosen]))[0]
                   if len(chosen) >= 3 else math.nan)
            rows.append({"target": target, "band": band, "n": len(chosen),
                         "latency_ms": [round(chosen[0][0].latency_ms, 1),
                                        round(chosen[-1][0].latency_ms, 1)] if chosen else None,
                         "kendall_tau": _num(tau)})
    return rows


def heldout_score(proxy: AccuracyProxy, arch: TrainedArch, proxy_data: ProxyData, data: Path
                  ) -> tuple[float, float]:
    """(score, seconds) of one held-out architecture: measured, or replayed for loss-area."""
    if isinstance(proxy, LossAreaProxy):
        return replayed(proxy, arch, proxy_data, data), epoch_seconds(arch) * proxy.epochs
    start = time.perf_counter()
    return proxy.score(arch.spec, proxy_data), time.perf_counter() - start


def replayed(proxy: LossAreaProxy, arch: TrainedArch, proxy_data: ProxyData, data: Path
             ) -> float:
    """``loss-area`` from the architecture's recorded full run: its first epochs are the
    proxy's run when the recipe (seed included) and data are the proxy's."""
    recorded = Recipe.from_dict(arch.record["recipe"])
    same_recipe = dataclasses.replace(recorded, threads=1, workers=0) == dataclasses.replace(
        proxy.recipe, seed=proxy_data.seed, threads=1, workers=0)
    if not same_recipe or arch.record.get("data") != demo_label(data):
        raise ProxyError(f"{arch.id} was trained with another recipe, seed or dataset than "
                         f"{proxy.name} would use: its loss curve cannot stand for the proxy")
    return proxy.replay(arch.spec, proxy_data, arch.record["loss_curve"])["score"]


def demo_label(data: Path) -> str:
    """How the trained set names its dataset (``bench_trained_set.py``)."""
    return "demo:default" if data == demo_dataset("default").resolve() else str(data)


def epoch_seconds(arch: TrainedArch) -> float:
    """Seconds of one epoch of the recorded run (single thread, a shared 2-core box)."""
    return arch.record["train_s"] / len(arch.record["loss_curve"])


def heldout_report(labels: list[str], data: Path, seed: int, set_path: Path | None,
                   split: str = "heldout", draw_seed: int | None = None) -> dict[str, Any]:
    """Every training-free proxy of ``labels`` on the held-out split (of the shipped set unless
    ``set_path``)."""
    archs = [a for a in load_trained_set(split, set_path)
             if draw_seed is None or a.record.get("draw_seed") == draw_seed]
    proxy_data = ProxyData(open_dataset(data, "train"), open_dataset(data, "val"), seed)
    results = []
    for label in labels:
        proxy = get_proxy(label)
        if not proxy.training_free and not isinstance(proxy, LossAreaProxy):
            continue  # the training proxies are measured by the main benchmark
        scores, seconds = [], []
        try:
            for a in archs:
                score, took = heldout_score(proxy, a, proxy_data, data)
                scores.append(score)
                seconds.append(took)
        except ProxyError as exc:  # e.g. a surrogate whose fit split is still too small
            log(f"{label}: {exc}")
            results.append({"proxy": label, "error": str(exc)})
            continue
        # The first call of a fitted proxy includes its fit: reported apart.
        results.append({"proxy": label, **rank_stats(scores, [a.ap50 for a in archs]),
                        "bands": band_taus(archs, scores),
                        "seconds_per_score": round(float(np.median(seconds)), 3)
                        if seconds else None,
                        "first_score_seconds": round(seconds[0], 2) if seconds else None,
                        "scores": {a.id: s for a, s in zip(archs, scores, strict=True)}})
    return {"split": split, "draw_seed": draw_seed,
            "heldout": len(load_trained_set("heldout", set_path)),
            "fit": len(load_trained_set("fit", set_path)), "n": len(archs),
            "proxies": results,
            "architectures": [{"id": a.id, "target": a.target, "ap50": a.ap50,
                               "latency_ms": a.latency_ms} for a in archs]}


def ranking_entry(report: dict[str, Any]) -> dict[str, Any]:
    """What the package keeps of a held-out draw's report (``objectives.proxies.measured``)."""
    keep = ("kendall_tau", "kendall_tau_90", "spearman", "top5_recall", "seconds_per_score")
    return {"date": datetime.date.today().isoformat(),
            "command": " ".join(["scripts/bench_proxies.py", *sys.argv[1:]]),
            "n": report["n"],
            "proxies": {r["proxy"]: {k: r[k] for k in keep} for r in report["proxies"]
                        if "error" not in r}}


def print_heldout(report: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 200)
    draw = f", draw seed {report['draw_seed']}" if report["draw_seed"] is not None else ""
    table = Table(title=f"Proxies on the {report['split']} split of the trained set{draw}: "
                        f"n = {report['n']} ({report['heldout']} held out, {report['fit']} "
                        "in the fit split)")
    for col in ("proxy", "tau", "tau 90%", "spearman", "rho 90%", "top-5 recall",
                "tau per band", "s / score"):
        table.add_column(col, justify="left" if col == "proxy" else "right")
    for r in sorted(report["proxies"], key=lambda r: -(r.get("kendall_tau") or -2)):
        if "error" in r:
            table.add_row(r["proxy"], "-", "-", "-", "-", "-", r["error"][:60], "-")
            continue
        def show(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"
        table.add_row(r["proxy"], show(r["kendall_tau"]),
                      " .. ".join(show(v) for v in r["kendall_tau_90"]), show(r["spearman"]),
                      " .. ".join(show(v) for v in r["spearman_90"]), show(r["top5_recall"]),
                      ", ".join(show(b["kendall_tau"]) for b in r["bands"]),
                      show(r["seconds_per_score"]))
    console.print(table)


def proxy_list(text: str) -> list[str]:
    """``a,b:k=1,j=2,c`` -> ``[a, b:k=1,j=2, c]``: a comma also separates a proxy's options,
    so a part with ``=`` and no ``:`` continues the proxy before it."""
    labels: list[str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if "=" in part and ":" not in part and labels:
            labels[-1] += "," + part
        else:
            labels.append(part)
    return labels


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-proxies"),
                        help="runs and scores are kept here (default: ./bench-proxies)")
    parser.add_argument("--data", type=Path, help="dataset (default: the demo set)")
    parser.add_argument("--target", default="stm32h7", help="whose default budgets to fit")
    parser.add_argument("--pool", type=int, default=200, help="genomes sampled")
    parser.add_argument("--seed", type=int, default=2, help="sampling seed")
    parser.add_argument("--count", type=int, default=12, help="architectures trained")
    parser.add_argument("--jobs", type=int, default=1, help="trainings/scorings at once")
    parser.add_argument("--proxies", default=",".join(list_proxies()),
                        help="comma-separated proxy names (default: all registered)")
    parser.add_argument("--short-steps", default="",
                        help="extra short-train step counts to measure, e.g. 50,300")
    parser.add_argument("--proxy-seed", type=int, default=0, help="ProxyData seed")
    parser.add_argument("--only-score", action="store_true",
                        help="no training: recompute the --proxies' scores from finished runs")
    parser.add_argument("--skip-score", action="store_true", help="train only")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: small demo set, 1 epoch, 3 architectures, "
                        "short-train@4")
    parser.add_argument("--heldout", action="store_true",
                        help="no training: measure the training-free proxies on the shipped "
                        "trained set's held-out split")
    parser.add_argument("--split", choices=("heldout", "fit"), default="heldout",
                        help="with --heldout: the split measured; 'fit' is for choosing a "
                        "proxy's weights, never for quoting its tau (the surrogate has seen it)")
    parser.add_argument("--draw-seed", type=int,
                        help="with --heldout: only the architectures of this draw (a fresh "
                        "held-out split)")
    parser.add_argument("--trained-set", type=Path,
                        help="with --heldout: this set file's held-out split instead of the "
                        "shipped one (the surrogate still fits on the shipped set)")
    parser.add_argument("--record", action="store_true",
                        help="with --heldout --draw-seed N: store the draw's tau and top-5 "
                        "recall per proxy in the package (what --proxy help quotes)")
    parser.add_argument("--json", action="store_true", help="the results as JSON on stdout")
    args = parser.parse_args()
    if args.record and not (args.heldout and args.draw_seed is not None
                            and args.split == "heldout" and args.trained_set is None):
        parser.error("--record needs --heldout --draw-seed N on the shipped set's held-out "
                     "split")
    return args


def main() -> int:
    args = parse_args()
    recipe = Recipe(threads=1, workers=0 if args.jobs > 1 else 1)
    data = args.data
    if args.quick:
        recipe = dataclasses.replace(recipe, epochs=1, batch_size=8)
        data = data or demo_dataset("small")
        args.count = min(args.count, 3)
    data = (data or demo_dataset("default")).resolve()
    short_steps = [int(s) for s in args.short_steps.split(",") if s]
    labels = proxy_list(args.proxies)
    for name in labels:
        get_proxy(name)  # an unknown name fails here, before hours of training
    if args.quick:  # a few steps of short training instead of the default's 150
        labels = [name for name in labels if name != "short-train"]
        short_steps = short_steps or [4]
    labels += [f"short-train@{k}" for k in short_steps]
    if args.heldout:
        report = heldout_report(labels, data, args.proxy_seed, args.trained_set, args.split,
                                args.draw_seed)
        if args.record:
            record_draw(args.draw_seed, ranking_entry(report))
        if args.json:
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
        else:
            print_heldout(report)
        return 0
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    chosen = pick(args.pool, args.seed, args.count, args.target)
    log(f"{len(chosen)} architectures (of {args.pool} sampled with seed {args.seed}, fitting "
        f"{args.target}):")
    for c in chosen:
        log("  " + ", ".join(f"{k} {v}" for k, v in c.describe().items()))
    if not args.only_score:
        train_all(chosen, data, out, recipe, args.jobs)
    if not args.skip_score:
        score_all(chosen, data, out, labels, short_steps, args.proxy_seed, args.jobs,
                  rescore=args.only_score)

    rows = collect(chosen, out)
    # Scores cached earlier for other proxies are reported too.
    labels += sorted({k for r in rows for k in r["scores"]} - set(labels))
    tau_rows = taus(rows, labels)
    context = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "command": " ".join(["scripts/bench_proxies.py", *sys.argv[1:]]),
               "python": platform.python_version(), "torch": torch.__version__,
               "target": args.target, "data": str(data), "pool": args.pool, "seed": args.seed,
               "recipe": dataclasses.replace(recipe, threads=1).to_dict(),
               "proxy_seed": args.proxy_seed}
    result = {"context": context, "architectures": rows, "tau": tau_rows}
    write_json(out / "results.json", result)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        print_report(rows, tau_rows, labels, context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
