"""The measurement harness: the plan, the export cache, a real timing of one tiny model and
the versioned runs CSV."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from estimators.deploy import deployed
from estimators.latency.features import graph_features
from nas.calibrate import measure
from nas.calibrate.measure import (
    COLUMNS,
    FIT,
    GENOME_CLASSES,
    HOLDOUT,
    SCHEMA,
    Environment,
    Planned,
    Run,
    export_file,
    measure_one,
    plan,
    read_runs,
    sampling_seed,
    write_runs,
)
from nas.export.files import LAYOUT
from search_space.baselines import list_baselines
from search_space.spec import ModelSpec


def _no_conversion(*args, **kwargs):
    raise AssertionError("export_file converted a model the cache holds")


@pytest.fixture
def cache(tmp_path, tiny_int8_export, tiny_spec) -> Path:
    """A cache holding the session's tiny export under the name "tiny", as ``export_file``
    writes it: the spec as JSON next to the .tflite."""
    out, _ = tiny_int8_export
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "tiny.tflite").write_bytes((out / LAYOUT.model).read_bytes())
    (folder / "tiny.json").write_text(json.dumps(tiny_spec.to_dict(), indent=1))
    return folder


def test_plan_covers_baselines_and_two_seeds():
    models = plan(4, 2)
    baselines = [b.name for b in list_baselines()]
    assert [m.name for m in models[:len(baselines)]] == baselines
    assert all(m.split == FIT and m.spec.baseline == m.name for m in models[:len(baselines)])
    genomes = models[len(baselines):]
    assert [m.name for m in genomes] == [f"genome-0-{i:02d}" for i in range(4)] + \
        [f"genome-1-{i:02d}" for i in range(2)]
    assert Counter(m.split for m in genomes) == {FIT: 4, HOLDOUT: 2}
    assert [m.spec.num_classes for m in genomes[:4]] == [*GENOME_CLASSES, GENOME_CLASSES[0]]
    assert all(m.spec.name == m.name and m.spec.genome is not None for m in genomes)
    fit_genomes = {m.spec.genome.to_json() for m in genomes if m.split == FIT}
    assert not fit_genomes & {m.spec.genome.to_json() for m in genomes if m.split == HOLDOUT}
    assert [m.name for m in plan(1, 1, baselines=False)] == ["genome-0-00", "genome-1-00"]
    assert [m.spec for m in plan(3, 0, baselines=False)] == \
        [m.spec for m in plan(3, 0, baselines=False)]


def test_sampling_seed_is_read_back_from_every_planned_name():
    models = plan(3, 2, fit_seed=7, holdout_seed=12)
    assert [sampling_seed(m.name) for m in models if m.spec.genome is not None] == \
        [7, 7, 7, 12, 12]
    assert {sampling_seed(m.name) for m in models if m.spec.baseline} == {None}
    for name in ("genome", "genome-x-01", "mygenome-1-01", "etn-w1.0-ssdlite", ""):
        assert sampling_seed(name) is None, name


def _run(name: str = "genome-0-00", **changes) -> Run:
    spec = ModelSpec(10, baseline="resnet8-cifar10")
    values = dict(schema=SCHEMA, name=name, split=FIT,
                  spec=json.dumps(spec.to_dict(), sort_keys=True), input_size=32, macs=12345,
                  tflite_bytes=999, tflite_sha256="ab" * 32, litert_ms=0.1,
                  litert_p10_ms=0.09, litert_p90_ms=0.123456789012345, litert_cpu_ms=0.095,
                  tflm_ms=12.5, tflm_p10_ms=12.0, tflm_p90_ms=13.0, tflm_cpu_ms=12.25, runs=20,
                  **dataclasses.asdict(_env()))
    values.update(changes)
    return Run(**values)


def _env() -> Environment:
    return Environment(cpu="Test CPU, 8 cores", clock_mhz=2400, cores=8, machine="x86_64",
                       python="3.11.9", litert="1.0", tflite_micro="0.1", tensorflow="2.0",
                       onnx2tf="1.0", date="2025-01-01")


def test_runs_csv_round_trips_exactly(tmp_path):
    rows = [_run(), _run("genome-0-01", split=HOLDOUT, cpu='CPU "quoted", with comma')]
    path = tmp_path / "data" / "runs.csv"
    write_runs(rows, path)
    assert read_runs(path) == rows
    assert path.read_text().splitlines()[0].split(",") == list(COLUMNS)
    assert [p.name for p in path.parent.iterdir()] == ["runs.csv"]  # no temporary left


def test_run_features_and_environment():
    run = _run()
    assert run.environment() == dataclasses.asdict(_env())
    assert run.model_spec() == ModelSpec(10, baseline="resnet8-cifar10")
    expected = graph_features(deployed(run.model_spec().lower().graph))
    np.testing.assert_array_equal(run.features(), expected)


def test_read_runs_rejects_another_schema(tmp_path):
    path = tmp_path / "runs.csv"
    write_runs([_run(), _run(schema="tinynas-latency-runs/0")], path)
    with pytest.raises(ValueError, match=r"runs\.csv:3: schema"):
        read_runs(path)


def test_export_file_reuses_the_cache_for_the_same_spec(tmp_path, tiny_spec, monkeypatch):
    import nas.export.convert

    monkeypatch.setattr(nas.export.convert, "convert", _no_conversion)
    cache = tmp_path / "cache"
    cache.mkdir()
    expected = b"TFL3 not really a model"
    (cache / "tiny.tflite").write_bytes(expected)
    (cache / "tiny.json").write_text(json.dumps(tiny_spec.to_dict(), indent=1))
    assert export_file(Planned("tiny", tiny_spec, FIT), cache) == expected
    other = ModelSpec(tiny_spec.num_classes + 1, genome=tiny_spec.genome, name="tiny")
    with pytest.raises(AssertionError, match="converted"):  # another spec: not reused
        export_file(Planned("tiny", other, FIT), cache)
    (cache / "tiny.json").write_text("{broken")
    with pytest.raises(AssertionError, match="converted"):
        export_file(Planned("tiny", tiny_spec, FIT), cache)


@pytest.mark.slow
def test_a_real_measurement_of_one_tiny_model(cache, tiny_spec, monkeypatch, tmp_path):
    import nas.export.convert

    monkeypatch.setattr(nas.export.convert, "convert", _no_conversion)
    planned = Planned("tiny", tiny_spec, FIT)
    env = Environment.current()
    assert env.cores >= 1 and env.cpu and env.litert != "not installed"
    run = measure_one(planned, env, runs=20, cache=cache)
    tflite = (cache / "tiny.tflite").read_bytes()
    assert run.schema == SCHEMA and (run.name, run.split, run.runs) == ("tiny", FIT, 20)
    assert run.tflite_sha256 == hashlib.sha256(tflite).hexdigest()
    assert run.tflite_bytes == len(tflite)
    assert run.input_size == 96
    assert run.macs > 0
    for runtime in ("litert", "tflm"):
        p10, median, p90 = (getattr(run, f"{runtime}{s}_ms") for s in ("_p10", "", "_p90"))
        assert 0 < p10 <= median <= p90
    assert run.tflm_ms > run.litert_ms  # reference kernels vs XNNPACK
    assert run.environment() == dataclasses.asdict(env)
    assert run.model_spec() == tiny_spec
    np.testing.assert_array_equal(run.features(),
                                  graph_features(deployed(tiny_spec.lower().graph)))
    path = tmp_path / "runs.csv"
    write_runs([run], path)
    assert read_runs(path) == [run]
    # Again from the cache: the same file, measured again.
    again = measure_one(planned, env, runs=20, cache=cache)
    assert again.tflite_sha256 == run.tflite_sha256


def test_measure_pools_rounds_and_exports_once(tmp_path, tiny_spec, monkeypatch):
    import nas.export.convert

    monkeypatch.setattr(nas.export.convert, "convert", _no_conversion)
    cache = tmp_path / "cache"
    cache.mkdir()
    planned = [Planned(n, ModelSpec(tiny_spec.num_classes, genome=tiny_spec.genome, name=n), FIT)
               for n in ("a", "b")]
    for p in planned:
        (cache / f"{p.name}.tflite").write_bytes(f"file {p.name}".encode())
        (cache / f"{p.name}.json").write_text(json.dumps(p.spec.to_dict()))
    calls = []

    def fake_time_file(tflite, runs, into=None):
        timings = into or measure.Timings()
        calls.append(tflite)
        base = 1.0 if tflite == b"file a" else 10.0
        timings.litert += [base * (1 + len(calls) / 100)] * runs
        timings.tflm += [5 * base * (1 + len(calls) / 100)] * runs
        timings.litert_cpu += [0.9 * base] * runs  # preempted time left out
        timings.tflm_cpu += [4.5 * base] * runs
        return timings

    monkeypatch.setattr(measure, "time_file", fake_time_file)
    seen = []
    rows = measure.measure(planned, runs=20, cache=cache, rounds=3,
                           done=lambda *args: seen.append(len(args[-1])))  # rows so far
    assert calls == [b"file a", b"file b"] * 3  # rounds interleave the models
    assert seen == [1, 2, 2, 2, 2, 2]
    assert [r.name for r in rows] == ["a", "b"] and all(r.runs == 60 for r in rows)
    a, b = rows
    assert a.tflite_sha256 == hashlib.sha256(b"file a").hexdigest()
    assert a.litert_p10_ms <= a.litert_ms <= a.litert_p90_ms
    assert a.litert_ms == pytest.approx(1.03)  # calls 1, 3, 5: the median is round two's
    assert b.tflm_ms == pytest.approx(50 * 1.04)
    assert a.litert_cpu_ms == pytest.approx(0.9) and b.tflm_cpu_ms == pytest.approx(45.0)
