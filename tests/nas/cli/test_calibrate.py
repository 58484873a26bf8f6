"""`tinynas calibrate --measurements`: a user's board runs refit a target's latency, saved as
a profile that `--target name@profile` then predicts with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from estimators.latency.profiles import load_profile, profile_path
from nas.export.files import LAYOUT


@pytest.fixture(autouse=True)
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYNAS_CONFIG", str(tmp_path / "config"))
    return tmp_path / "config"


def _csv(folder: Path, text: str) -> Path:
    path = folder / "runs.csv"
    path.write_text(text)
    return path


def _scale_fit(ms: list[float]) -> float:
    """What one factor fitted on relative error predicts for rows of the same model."""
    y = np.asarray(ms)
    return float(np.sum(1 / y) / np.sum(1 / y**2))


@pytest.mark.parametrize("argv", [
    ["calibrate", "--target", "stm32h7", "--profile", "lab"],
    ["calibrate", "--target", "stm32h7", "--profile", "lab", "--measurements", "runs.csv",
     "--measure", "host"],
])
def test_neither_or_both_sources_is_exit_2(cli, argv, config):
    code, out, err = cli(*argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--measurements" in err and "--measure host" in err
    assert not config.exists()


def test_measure_takes_only_host(cli):
    code, _, err = cli("calibrate", "--measure", "board")
    assert code == 2 and "host" in err


def test_a_bad_row_names_its_line_and_saves_nothing(cli, tmp_path):
    path = _csv(tmp_path, "# board runs\nmodel,latency_ms\nmissing.tflite,100\n")
    code, out, err = cli("calibrate", "--target", "stm32h7", "--measurements",
                         str(path), "--profile", "lab", "--json")
    assert code == 2 and out == ""
    assert "line 3" in err and "missing.tflite" in err and err.count("\n") == 1
    assert not profile_path("stm32h7", "lab").exists()


def test_a_bad_profile_name_saves_nothing(cli, tmp_path):
    path = _csv(tmp_path, "model,latency_ms\nmissing.tflite,100\n")
    code, _, err = cli("calibrate", "--target", "stm32h7", "--measurements",
                       str(path), "--profile", "Lab/1")
    assert code == 2 and "profile name" in err
    code, _, err = cli("calibrate", "--target", "stm32h7", "--measurements", str(path))
    assert code == 2 and "--profile" in err


@pytest.mark.slow
def test_a_bad_latency_after_good_rows_saves_nothing(cli, tmp_path, tiny_int8_export):
    out_dir, _ = tiny_int8_export
    path = _csv(tmp_path, f"model,latency_ms\n{out_dir},100\n{out_dir},fast\n")
    code, out, err = cli("calibrate", "--target", "stm32h7", "--measurements",
                         str(path), "--profile", "lab")
    assert code == 2 and out == ""
    assert "line 3" in err and "'fast'" in err and err.count("\n") == 1
    assert not profile_path("stm32h7", "lab").exists()


@pytest.mark.slow
def test_calibrate_then_estimate_with_the_profile(cli, tmp_path, tiny_int8_export, tiny_spec):
    out_dir, _ = tiny_int8_export
    measured = [100.0, 105.0, 98.0]
    path = _csv(tmp_path, "model,latency_ms,note\n" + "".join(
        f"{out_dir},{ms},run {i}\n" for i, ms in enumerate(measured)))
    code, out, err = cli("calibrate", "--target", "stm32h7", "--measurements",
                         str(path), "--profile", "lab", "--json")
    assert code == 0, err
    report = json.loads(out)
    saved = profile_path("stm32h7", "lab")
    assert report["profile"] == "stm32h7@lab" and report["profile_path"] == str(saved)
    assert saved.is_file()
    assert (report["target"], report["runtime"], report["rows"]) == ("stm32h7", "xcubeai", 3)
    assert report["clock_mhz"] == 400
    for key in ("before", "after"):
        assert report[key]["count"] == 3
    assert report["leave_one_out"]["count"] == 3
    expected = _scale_fit(measured)
    assert [r["line"] for r in report["per_row"]] == [2, 3, 4]
    assert [r["measured_ms"] for r in report["per_row"]] == measured
    for r in report["per_row"]:
        assert r["after_ms"] == pytest.approx(expected, rel=1e-6)
        assert r["before_ms"] == pytest.approx(report["per_row"][0]["before_ms"])
    assert report["after"]["mape"] < 0.05
    assert report["after"]["mape"] <= report["before"]["mape"]
    low, high = report["band"]
    assert low < 0 < high
    profile = load_profile("stm32h7", "lab")
    assert set(profile.models) == {"xcubeai"} and profile.models["xcubeai"].rows == 3

    genome = tmp_path / "tiny.json"
    genome.write_text(tiny_spec.genome.to_json())
    base = ["estimate", "--genome", str(genome), "--num-classes",
            str(tiny_spec.num_classes), "--json"]
    code, out, _ = cli(*base, "--target", "stm32h7@lab")
    row = json.loads(out)
    assert code in (0, 1) and row["target"] == "stm32h7@lab"
    assert row["latency_ms"] == pytest.approx(expected, rel=1e-6)
    assert row["latency_ms_low"] < row["latency_ms"] < row["latency_ms_high"]
    # The shipped model is untouched: without the profile, the old prediction.
    code, out, _ = cli(*base, "--target", "stm32h7")
    assert json.loads(out)["latency_ms"] == pytest.approx(report["per_row"][0]["before_ms"])
    # Another runtime of the same board is not in the profile.
    code, _, err = cli(*base, "--target", "stm32h7@lab", "--runtime", "tflm-ref")
    assert code == 2 and "has no calibration for runtime 'tflm-ref'" in err


@pytest.mark.slow
def test_runs_at_another_clock(cli, tmp_path, tiny_int8_export, tiny_spec):
    out_dir, _ = tiny_int8_export
    path = _csv(tmp_path, f"model,latency_ms\n{out_dir},50\n")
    code, out, err = cli("calibrate", "--target", "stm32h7", "--clock", "480",
                         "--measurements", str(path), "--profile", "fast")
    assert code == 0, err
    assert "stm32h7@fast" in out and "saved" in out  # the human report
    genome = tmp_path / "tiny.json"
    genome.write_text(tiny_spec.genome.to_json())
    base = ["estimate", "--genome", str(genome), "--num-classes",
            str(tiny_spec.num_classes), "--target", "stm32h7@fast", "--json"]
    _, out, _ = cli(*base)  # a profile predicts at the clock it was measured at
    assert json.loads(out)["latency_ms"] == pytest.approx(50.0, rel=1e-6)
    assert json.loads(out)["latency_clock_mhz"] == 480
    _, out, _ = cli(*base, "--clock", "400")  # compute-bound: 480 / 400 x longer
    assert json.loads(out)["latency_ms"] == pytest.approx(50.0 * 480 / 400, rel=1e-6)
    # refitting the profile without --clock keeps the 480 MHz its runs were measured at
    code, out, _ = cli("calibrate", "--target", "stm32h7@fast", "--measurements",
                       str(path), "--json")
    report = json.loads(out)
    assert code == 0 and report["clock_mhz"] == 480 and report["before"]["mape"] < 1e-6


@pytest.mark.slow
def test_target_at_a_new_profile_creates_it(cli, tmp_path, tiny_int8_export):
    out_dir, _ = tiny_int8_export
    path = _csv(tmp_path, f"model,latency_ms\n{out_dir},70\n{out_dir},72\n")
    code, out, err = cli("calibrate", "--target", "esp32s3@bench", "--measurements",
                         str(path), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["profile"] == "esp32s3@bench" and report["runtime"] == "tflm-esp-nn"
    assert load_profile("esp32s3", "bench").models["tflm-esp-nn"].rows == 2
    # calibrating it again refits the saved profile, not the shipped coefficients
    code, out, _ = cli("calibrate", "--target", "esp32s3@bench", "--measurements",
                       str(path), "--json")
    assert code == 0 and json.loads(out)["before"]["mape"] < 0.02


@pytest.mark.slow
def test_measure_host_times_refits_and_saves_both_host_profiles(cli, tmp_path, monkeypatch,
                                                                tiny_int8_export, tiny_spec):
    """The real harness on this machine (LiteRT and TFLite Micro timings), with the plan cut
    to three copies of the tiny export so the test does not convert anything."""
    from nas.calibrate import measure

    out_dir, _ = tiny_int8_export
    tflite = (out_dir / LAYOUT.model).read_bytes()
    plan = [measure.Planned(n, tiny_spec, split) for n, split in
            (("a", measure.FIT), ("b", measure.FIT), ("c", measure.HOLDOUT))]
    monkeypatch.setattr(measure, "plan", lambda *a, **k: plan)
    monkeypatch.setattr(measure, "export_file", lambda model, cache=None: tflite)
    csv_path = tmp_path / "host.csv"
    code, out, err = cli("calibrate", "--measure", "host", "--profile", "t",
                         "--out", str(csv_path), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["models"] == 3 and report["runs_csv"] == str(csv_path)
    rows = measure.read_runs(csv_path)
    assert [r.runs for r in rows] == [40, 40, 40]  # 2 rounds x 20 runs, pooled
    for runtime in ("litert", "tflm"):
        r = report["runtimes"][runtime]
        assert r["profile"] == f"host-{runtime}@t" and r["after"]["count"] == 1
        profile = load_profile(f"host-{runtime}", "t")
        assert runtime in profile.hosts and not profile.models[runtime].clock_scaling
    genome = tmp_path / "tiny.json"
    genome.write_text(tiny_spec.genome.to_json())
    code, out, _ = cli("estimate", "--genome", str(genome), "--num-classes",
                       str(tiny_spec.num_classes), "--target", "host-tflm@t", "--json")
    measured = rows[2].tflm_ms
    assert code == 0 and json.loads(out)["latency_ms"] == pytest.approx(measured, rel=0.5)


def test_quick_measure_host_scales_the_shipped_models(cli, tmp_path, monkeypatch, tiny_spec):
    """--quick on a (faked) machine twice as fast as the fitted one: a few genomes, no
    baselines, one round; the saved profile predicts half the shipped time, matches this
    machine, and the shipped target's note then points at it."""
    from estimators.latency import environment, shipped_host_models
    from nas.calibrate import measure

    xeon = {**shipped_host_models()["tflm"].environment, "cpu": "Intel Xeon", "clock_mhz": 2200}
    monkeypatch.setattr(environment, "this_machine", lambda: dict(xeon))
    monkeypatch.setattr(environment.Environment, "current",
                        classmethod(lambda cls: cls(**xeon)))
    asked = {}

    def plan(fit, holdout, *args, baselines=True, **kwargs):
        asked.update(fit=fit, holdout=holdout, baselines=baselines)
        return [measure.Planned(f"g{i}", tiny_spec, measure.FIT) for i in range(fit)]

    from estimators.deploy import deployed
    from estimators.latency.features import graph_features

    x = graph_features(deployed(tiny_spec.lower().graph))
    truth = {rt: h.predict(x) / 2 for rt, h in shipped_host_models().items()}

    def time_file(tflite, runs, into=None):
        timings = into or measure.Timings()
        for rt in ("litert", "tflm"):
            getattr(timings, rt).extend([truth[rt]] * runs)
            getattr(timings, f"{rt}_cpu").extend([truth[rt]] * runs)
        return timings

    monkeypatch.setattr(measure, "plan", plan)
    monkeypatch.setattr(measure, "export_file", lambda model, cache=None: b"tiny")
    monkeypatch.setattr(measure, "time_file", time_file)
    code, out, err = cli("calibrate", "--measure", "host", "--quick", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert asked == {"fit": 6, "holdout": 0, "baselines": False}
    assert report["mode"] == "quick" and report["models"] == 6
    for runtime in ("litert", "tflm"):
        r = report["runtimes"][runtime]
        assert r["scale"] == pytest.approx(0.5) and r["before"]["mape"] == pytest.approx(1.0)
        assert abs(r["after"]["max_error"]) < 1e-9
    genome = tmp_path / "tiny.json"
    genome.write_text(tiny_spec.genome.to_json())
    args = ("estimate", "--genome", str(genome), "--num-classes", str(tiny_spec.num_classes),
            "--json", "--target")
    code, out, err = cli(*args, "host-tflm@local")
    row = json.loads(out)
    assert "note:" not in err and row["latency_environment_match"] is True
    assert row["latency_ms"] == pytest.approx(truth["tflm"])
    code, out, err = cli(*args, "host-tflm")
    assert "--target host-tflm@local" in err and json.loads(out)["latency_ms"] == \
        pytest.approx(2 * truth["tflm"])


def test_quick_needs_three_genomes(cli):
    code, _, err = cli("calibrate", "--measure", "host", "--quick", "--genomes", "2")
    assert code == 2 and "3 genomes" in err and err.count("\n") == 1
