"""Latency runs on this machine: real int8 exports timed in LiteRT and in TFLite Micro.

The plan covers the whole search space (genomes drawn uniformly by ``random_genomes``: every
block type, kernel, head, resolution and width) plus every baseline. Each model is exported
exactly as ``tinynas export`` would (PyTorch -> ONNX -> onnx2tf -> int8, depthwise rewrite,
our operator order) with BN statistics drawn like a trained net's, then timed: LiteRT with
one thread (XNNPACK) and TFLite Micro (reference kernels), each after a warm-up, keeping the
median and the 10th / 90th percentiles of the runs' wall time, and the median of the calling
thread's CPU time (the same on a quiet machine; lower when the thread was preempted).

Exports are slow (~10-20 s) and timing wants a quiet machine, so the two can be split:
``export_only`` fills a cache of ``.tflite`` files (reused when the recorded spec is the same)
and a later run times them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import statistics
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from artefacts.atomic import atomic_open, atomic_write_bytes, atomic_write_text
from estimators.latency.environment import Environment

SCHEMA = "tinynas-latency-runs/1"
GENOME_CLASSES = (1, 3, 20)  # genomes cycle through these class counts
FIT, HOLDOUT = "fit", "holdout"
DEFAULT_RUNS = 20


@dataclass(frozen=True)
class Planned:
    name: str
    spec: Any  # search_space.spec.ModelSpec
    split: str


@dataclass(frozen=True)
class Run:
    """One model's timing. ``*_ms`` are medians, ``*_p10_ms`` / ``*_p90_ms`` the spread."""

    schema: str
    name: str
    split: str
    spec: str  # ModelSpec.to_dict() as JSON: the features are recomputed from it
    input_size: int
    macs: int
    tflite_bytes: int
    tflite_sha256: str
    litert_ms: float
    litert_p10_ms: float
    litert_p90_ms: float
    litert_cpu_ms: float
    tflm_ms: float
    tflm_p10_ms: float
    tflm_p90_ms: float
    tflm_cpu_ms: float
    runs: int
    cpu: str
    clock_mhz: int
    cores: int
    machine: str
    python: str
    litert: str
    tflite_micro: str
    tensorflow: str
    onnx2tf: str
    date: str

    def model_spec(self) -> Any:
        from search_space.spec import ModelSpec

        return ModelSpec.from_dict(json.loads(self.spec))

    def environment(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in Environment.__dataclass_fields__}

    def features(self) -> Any:
        """The latency features of the model, recomputed from its spec by today's code."""
        from estimators.deploy import deployed
        from estimators.latency.features import graph_features

        return graph_features(deployed(self.model_spec().lower().graph))


COLUMNS = tuple(f.name for f in fields(Run))


def plan(fit_genomes: int, holdout_genomes: int, fit_seed: int = 0, holdout_seed: int = 1,
         baselines: bool = True) -> list[Planned]:
    """Baselines and ``fit_genomes`` sampled genomes to fit on; ``holdout_genomes`` drawn with
    another seed that the fit never sees."""
    from search_space.baselines import list_baselines
    from search_space.spec import ModelSpec

    models = [Planned(b.name, ModelSpec(b.num_classes, baseline=b.name), FIT)
              for b in (list_baselines() if baselines else [])]
    for seed, count, split in ((fit_seed, fit_genomes, FIT),
                               (holdout_seed, holdout_genomes, HOLDOUT)):
        models += _genomes(seed, count, split)
    return models


GENOME_PREFIX = "genome"


def sampling_seed(name: str) -> int | None:
    """The seed a sampled genome's row was drawn with (None for a baseline): held-out rows of
    different seeds are separate draws, judged apart as well as together."""
    prefix, _, rest = name.partition("-")
    seed = rest.split("-")[0]
    return int(seed) if prefix == GENOME_PREFIX and seed.isdigit() else None


def _genomes(seed: int, count: int, split: str) -> list[Planned]:
    from search_space.sampling import random_genomes
    from search_space.spec import ModelSpec

    planned = []
    for i, genome in enumerate(random_genomes(count, seed) if count else []):
        name = f"{GENOME_PREFIX}-{seed}-{i:02d}"
        spec = ModelSpec(GENOME_CLASSES[i % len(GENOME_CLASSES)], genome=genome, name=name)
        planned.append(Planned(name, spec, split))
    return planned


def export_file(model: Planned, cache: Path | None = None) -> bytes:
    """The model's int8 file, converted now or read from ``cache`` when it holds the same spec."""
    spec_json = json.dumps(model.spec.to_dict(), sort_keys=True)
    cached = cache / f"{model.name}.tflite" if cache else None
    if cached is not None and cached.is_file() and _cached_spec(cache, model.name) == spec_json:
        return cached.read_bytes()
    from nas.export import representative
    from nas.export.convert import convert
    from search_space.model import as_if_trained

    net = as_if_trained(model.spec.build()).eval()
    images = representative.synthetic(net.arch.input_size, 16)
    with tempfile.TemporaryDirectory() as work:
        tflite = convert(net, images, Path(work)).tflite
    if cache is not None:
        # Each file whole, and the spec last: it is what marks the cached file as this
        # model's, so a run killed between the two leaves a stale spec, never a torn file.
        atomic_write_bytes(cache / f"{model.name}.tflite", tflite)
        atomic_write_text(cache / f"{model.name}.json", spec_json)
    return tflite


def _cached_spec(cache: Path, name: str) -> str | None:
    path = cache / f"{name}.json"
    if not path.is_file():
        return None
    try:
        return json.dumps(json.loads(path.read_text()), sort_keys=True)
    except json.JSONDecodeError:
        return None


def _spread(times: list[float]) -> tuple[float, float, float]:
    deciles = statistics.quantiles(times, n=10, method="inclusive")
    return statistics.median(times), deciles[0], deciles[-1]


@dataclass
class Timings:
    """Every timed invocation of one file so far, pooled over rounds: wall and thread CPU
    milliseconds per runtime."""

    litert: list[float] = field(default_factory=list)
    tflm: list[float] = field(default_factory=list)
    litert_cpu: list[float] = field(default_factory=list)
    tflm_cpu: list[float] = field(default_factory=list)

    def stats(self) -> dict[str, float]:
        lite, micro = _spread(self.litert), _spread(self.tflm)
        return {"litert_ms": lite[0], "litert_p10_ms": lite[1], "litert_p90_ms": lite[2],
                "litert_cpu_ms": statistics.median(self.litert_cpu),
                "tflm_ms": micro[0], "tflm_p10_ms": micro[1], "tflm_p90_ms": micro[2],
                "tflm_cpu_ms": statistics.median(self.tflm_cpu)}


def time_file(tflite: bytes, runs: int = DEFAULT_RUNS, into: Timings | None = None) -> Timings:
    """``runs`` timed invocations in each runtime on one synthetic image, after a warm-up."""
    from nas.export import representative, runtimes

    timings = into or Timings()
    size = runtimes.input_size(tflite)
    x = runtimes.quantised_inputs(tflite, representative.synthetic(size, 1))[0]
    lite = runtimes.litert_times_ms(tflite, x, runs, warmup=5)
    micro = runtimes.tflm_times_ms(tflite, x, runs, warmup=2)
    timings.litert += lite.wall_ms
    timings.litert_cpu += lite.cpu_ms
    timings.tflm += micro.wall_ms
    timings.tflm_cpu += micro.cpu_ms
    return timings


def _identity(model: Planned, tflite: bytes) -> dict[str, Any]:
    """A row's fields that do not change between rounds (lowering and hashing happen once)."""
    from estimators.counting import macs

    arch = model.spec.lower()
    return {"schema": SCHEMA, "name": model.name, "split": model.split,
            "spec": json.dumps(model.spec.to_dict(), sort_keys=True),
            "input_size": arch.input_size, "macs": macs(arch.graph),
            "tflite_bytes": len(tflite), "tflite_sha256": hashlib.sha256(tflite).hexdigest()}


def _run(identity: dict[str, Any], timings: Timings, env: Environment) -> Run:
    return Run(**identity, runs=len(timings.tflm), **timings.stats(), **asdict(env))


def measure_one(model: Planned, env: Environment, runs: int = DEFAULT_RUNS,
                cache: Path | None = None) -> Run:
    tflite = export_file(model, cache)
    return _run(_identity(model, tflite), time_file(tflite, runs), env)


def measure(models: list[Planned], runs: int = DEFAULT_RUNS, cache: Path | None = None,
            rounds: int = 1, done: Callable[[Run, list[Run]], None] = lambda *_: None
            ) -> list[Run]:
    """Export every model, then time them all ``rounds`` times over, ``runs`` invocations per
    round. Rounds pool into one median and spread per model: spreading a model's runs over
    the whole session keeps a passing burst of load on the machine from skewing one model.
    ``done`` gets the row just updated and all rows so far, after every model of every
    round."""
    env = Environment.current()
    files = [export_file(model, cache) for model in models]
    timings = [Timings() for _ in models]
    identities = [_identity(m, f) for m, f in zip(models, files, strict=True)]
    rows: dict[int, Run] = {}
    for _ in range(rounds):
        for i, tflite in enumerate(files):
            rows[i] = _run(identities[i], time_file(tflite, runs, timings[i]), env)
            done(rows[i], [rows[k] for k in sorted(rows)])
    return [rows[k] for k in sorted(rows)]


def feature_matrix(runs: Iterable[Run]) -> Any:
    """One row of latency features per run (``numpy`` array), recomputed from the specs."""
    import numpy as np

    return np.array([run.features() for run in runs])


def write_runs(rows: Iterable[Run], path: Path) -> None:
    """Write the CSV atomically (:func:`artefacts.atomic.atomic_open`: a hidden temporary
    sibling, fsynced, renamed into place)."""
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))


def read_runs(path: Path) -> list[Run]:
    with path.open(newline="") as handle:
        return [_parse(row, path, line) for line, row in enumerate(csv.DictReader(handle), 2)]


def _parse(row: dict[str, str], path: Path, line: int) -> Run:
    if row.get("schema") != SCHEMA:
        raise ValueError(f"{path}:{line}: schema {row.get('schema')!r}, expected {SCHEMA!r}")
    values: dict[str, Any] = {}
    for f in fields(Run):
        raw = row.get(f.name)
        if raw is None:
            raise ValueError(f"{path}:{line}: no column {f.name!r}")
        values[f.name] = {"int": int, "float": float}.get(str(f.type), str)(raw)
    return Run(**values)
