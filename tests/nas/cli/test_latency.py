"""Latency in the command line: `estimate`, `baselines` and `targets` show the prediction with
its band; `--clock` and `--target name@profile` are checked."""

from __future__ import annotations

import json

import pytest

from estimators.targets import list_targets
from search_space.baselines import list_baselines

LATENCY_KEYS = {"latency_ms", "latency_ms_low", "latency_ms_high"}




@pytest.fixture(autouse=True)
def config(tmp_path, monkeypatch):
    """No profile of the machine's user leaks into these tests."""
    monkeypatch.setenv("TINYNAS_CONFIG", str(tmp_path / "config"))
    return tmp_path / "config"


def _estimate(cli, *extra: str) -> dict:
    code, out, _ = cli("estimate", "etn-w0.35-ssdlite", "--json", *extra)
    assert code in (0, 1)
    return json.loads(out)


def test_estimate_json_has_latency_with_its_band(cli):
    row = _estimate(cli, "--target", "stm32h7")
    assert row.keys() >= LATENCY_KEYS
    assert 0 < row["latency_ms_low"] <= row["latency_ms"] <= row["latency_ms_high"]
    assert row["latency_clock_mhz"] == 400


def test_estimate_at_480_mhz_is_faster(cli):
    default = _estimate(cli, "--target", "stm32h7")
    fast = _estimate(cli, "--target", "stm32h7", "--clock", "480")
    assert fast["latency_ms"] < default["latency_ms"]
    assert fast["latency_ms"] == pytest.approx(default["latency_ms"] * 400 / 480)
    assert fast["latency_clock_mhz"] == 480
    # The clock changes latency only: memory is the same.
    assert (fast["flash_bytes"], fast["ram_bytes"]) == (default["flash_bytes"],
                                                       default["ram_bytes"])


def test_estimate_runtime_changes_the_latency(cli):
    xcube = _estimate(cli, "--target", "stm32h7")
    ref = _estimate(cli, "--target", "stm32h7", "--runtime", "tflm-ref")
    assert ref["runtime"] == "tflm-ref"
    assert ref["latency_ms"] > 5 * xcube["latency_ms"]


@pytest.mark.parametrize("target", ["host-litert", "host-tflm", "esp32", "esp32s3"])
def test_estimate_on_every_kind_of_target(cli, target):
    row = _estimate(cli, "--target", target)
    assert row["target"] == target
    assert 0 < row["latency_ms_low"] <= row["latency_ms"] <= row["latency_ms_high"]


def test_human_estimate_shows_latency(cli):
    code, out, _ = cli("estimate", "etn-w0.35-ssdlite", "--target", "esp32")
    assert code in (0, 1)
    assert "latency at 240 MHz" in out and " ms (" in out
    assert "thin calibration data" in out


def test_baselines_json_rows_have_latency(cli):
    code, out, _ = cli("baselines", "--target", "stm32h7", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [r["name"] for r in rows] == [b.name for b in list_baselines()]
    for r in rows:
        assert r.keys() >= LATENCY_KEYS
        assert 0 < r["latency_ms_low"] <= r["latency_ms"] <= r["latency_ms_high"]


def test_targets_json_has_latency_calibration(cli):
    code, out, _ = cli("targets", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0
    assert set(rows) == {t.name for t in list_targets()}
    assert {"host-litert", "host-tflm"} <= set(rows)
    for target in list_targets():
        latency = rows[target.name]["latency"]
        assert [c["runtime"] for c in latency] == list(target.runtime_names)
        for c in latency:
            assert "error" not in c, c
            assert c.keys() >= {"rows", "thin_data", "method", "error_low", "error_high"}
            assert c["method"].strip()
    # kernel-aware, 10 kernel timings + 1 whole-model run each: still thin (issue 19)
    for name in ("esp32", "esp32s3"):
        esp = rows[name]["latency"][0]
        assert esp["runtime"] == "tflm-esp-nn" and esp["thin_data"] and esp["rows"] == 11
        assert "kernel-aware" in esp["method"]
        assert set(esp["kind_ranges"]) == {"conv.dense", "depthwise.large", "other"}
    h7 = rows["stm32h7"]["latency"][0]
    assert h7["runtime"] == "xcubeai" and h7["rows"] >= 8 and not h7["thin_data"]


def test_human_targets_table_says_thin(cli):
    code, out, _ = cli("targets")
    assert code == 0 and "THIN" in out


@pytest.mark.parametrize(("argv", "needle"), [
    (["estimate", "etn-w0.35-ssdlite", "--target", "stm32h7@nope"], "no latency profile 'nope'"),
    (["baselines", "--target", "stm32h7@nope"], "no latency profile 'nope'"),
    (["estimate", "etn-w0.35-ssdlite", "--target", "stm32h7@"], "names no profile"),
    (["estimate", "etn-w0.35-ssdlite", "--target", "stm32h7@Bad/Name"], "profile name"),
    (["estimate", "etn-w0.35-ssdlite", "--target", "stm32h7", "--clock", "0"], "invalid clock"),
    (["estimate", "etn-w0.35-ssdlite", "--target", "stm32h7", "--clock", "fast"], "--clock"),
])
def test_bad_target_or_clock_is_one_line_and_exit_2(cli, argv, needle):
    code, out, err = cli(*argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and needle in err


# -- host targets on another machine (issue 20) ----------------------------------------------

def _fake_machine(monkeypatch, **change):
    from estimators.latency import environment, shipped_host_models

    record = {**shipped_host_models()["tflm"].environment, **change}
    monkeypatch.setattr(environment, "this_machine", lambda: dict(record))
    return record


def test_host_estimate_on_another_machine_says_so_once(cli, monkeypatch):
    _fake_machine(monkeypatch, cpu="Intel(R) Xeon(R) CPU @ 2.20GHz", clock_mhz=2200)
    code, out, err = cli("estimate", "etn-w0.35-ssdlite", "--target", "host-tflm", "--json")
    assert code in (0, 1)
    assert err.count("note:") == 1 and err.count("\n") == 1
    assert "AMD EPYC" in err and "Intel(R) Xeon(R)" in err  # both machines
    assert "tinynas calibrate --measure host" in err
    row = json.loads(out)
    assert row["latency_environment_match"] is False
    assert row["latency_environment"]["this_machine"]["clock_mhz"] == 2200
    assert row["latency_ms_high"] / row["latency_ms"] > 2


def test_host_estimate_on_its_own_machine_is_quiet(cli, monkeypatch):
    _fake_machine(monkeypatch)
    _code, out, err = cli("estimate", "etn-w0.35-ssdlite", "--target", "host-litert", "--json")
    row = json.loads(out)
    assert "note:" not in err and row["latency_environment_match"] is True
    assert row["latency_environment"]["differences"] == []


def test_board_estimate_has_no_machine(cli, monkeypatch):
    _fake_machine(monkeypatch, cpu="Some ARM laptop")
    _code, out, err = cli("estimate", "etn-w0.35-ssdlite", "--target", "esp32s3", "--json")
    row = json.loads(out)
    assert "note:" not in err
    assert row["latency_environment"] is None and row["latency_environment_match"] is True


def test_baselines_on_another_machine_notes_once_for_all_rows(cli, monkeypatch):
    _fake_machine(monkeypatch, cores=16)
    _code, out, err = cli("baselines", "--target", "host-tflm", "--json")
    rows = json.loads(out)
    assert err.count("note:") == 1 and "cores" in err
    assert all(r["latency_environment_match"] is False for r in rows)


def test_targets_say_which_host_models_describe_another_machine(cli, monkeypatch):
    _fake_machine(monkeypatch, cpu="Intel Xeon")
    _, out, _ = cli("targets", "--json")
    rows = {r["name"]: r["latency"][0] for r in json.loads(out)}
    assert rows["host-tflm"]["environment_match"] is False
    assert rows["esp32s3"]["environment_match"] is True  # boards have no machine
    _, out, _ = cli("targets")
    assert "OTHER" in out
    _fake_machine(monkeypatch)
    _, out, _ = cli("targets", "--json")
    assert all(r["latency"][0]["environment_match"] for r in json.loads(out))
