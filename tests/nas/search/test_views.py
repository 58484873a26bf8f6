"""``tinynas pareto`` and ``tinynas show`` on a hand-built study, and ``--study/--trial`` in
``train``, ``export`` and ``evaluate``."""

from __future__ import annotations

import importlib.util
import json

import pytest

from nas.search import trials

ROW_KEYS = {"trial", "proxy", "latency_ms", "latency_ms_low", "latency_ms_high", "flash_bytes",
            "ram_bytes", "macs", "genome", "fits", "trained", "exported"}
HAVE_PLOTS = all(importlib.util.find_spec(m) for m in ("matplotlib", "plotly"))


def test_pareto_json_has_the_keys(make_views_study, cli, tmp_path):
    vs = make_views_study()
    out = tmp_path / "plots"
    code, stdout, err = cli("pareto", *vs.args(), "--out", str(out), "--json")
    assert code == 0, err
    data = json.loads(stdout)
    assert set(data) >= {"study", "front", "baselines", "png", "html"}
    assert data["study"] == "search"
    assert [r["trial"] for r in data["front"]] == [0, 1, 6]
    assert all(set(r) >= ROW_KEYS for r in data["front"] + data["baselines"])
    assert {r["baseline"] for r in data["baselines"]} == {"etn-w0.35-ssdlite",
                                                          "ssd-mbv1-0.25-192"}
    assert data["front"][0]["fits"] is True and data["front"][0]["genome"]["resolution"] == 96
    if HAVE_PLOTS:
        assert data["png"] == str(out / "pareto.png") and (out / "pareto.png").stat().st_size
        assert (out / "pareto.html").stat().st_size
    else:  # written when the libraries are there; the table never depends on them
        assert data["png"] is None and "not installed" in err


def test_pareto_all_lists_every_trial_with_reasons(make_views_study, cli):
    vs = make_views_study()
    code, stdout, _ = cli("pareto", *vs.args(), "--all", "--json")
    assert code == 0
    listed = {r["trial"]: r for r in json.loads(stdout)["trials"]}
    assert sorted(listed) == list(range(7)) and listed[4]["fail_reason"] == "RuntimeError: boom"
    code, stdout, _ = cli("pareto", *vs.args(), "--all")
    assert code == 0
    assert "Pareto front" in stdout and "etn-w0.35-ssdlite" in stdout
    assert "RuntimeError: boom" in stdout and "rejected" in stdout
    assert "7 trials: 4 feasible, 1 rejected, 1 pruned, 1 failed; front 3" in stdout


def test_pareto_default_out_dir_is_runs_study(make_views_study, cli):
    vs = make_views_study()
    code, stdout, _ = cli("pareto", *vs.args(), "--json")
    assert code == 0
    if HAVE_PLOTS:
        assert json.loads(stdout)["png"] == str(vs.runs_dir / "search" / "pareto.png")


def test_pareto_shows_top_k_results(make_views_study, cli):
    vs = make_views_study()
    trials.record_result(vs.study, 1, {"trained": {"ap50": 0.4567, "map": 0.2},
                                       "exported": {"int8_ap50": 0.4411}})
    trials.record_result(vs.study, 6, {"trained": {"ap50": 0.5}, "export_error": "parity"})
    code, stdout, _ = cli("pareto", *vs.args())
    assert code == 0 and "45.7" in stdout and "44.1" in stdout and "failed" in stdout
    code, stdout, _ = cli("pareto", *vs.args(), "--json")
    front = {r["trial"]: r for r in json.loads(stdout)["front"]}
    assert front[1]["trained"]["ap50"] == 0.4567 and front[6]["export_error"] == "parity"


def test_unknown_study_lists_the_studies(make_views_study, cli):
    vs = make_views_study()
    for argv in (["pareto"], ["show", "--trial", "0"]):
        code, _, err = cli(*argv, *vs.args(), "--study", "nope")
        assert code == 2 and "'nope'" in err and "search" in err
        assert len(err.strip().splitlines()) == 1


def test_no_storage_yet_is_one_line(cli, tmp_path):
    code, _, err = cli("pareto", "--runs-dir", str(tmp_path / "none"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not exist" in err


def test_show_unknown_trial_lists_the_trials(make_views_study, cli):
    vs = make_views_study()
    code, _, err = cli("show", "--trial", "42", *vs.args())
    assert code == 2 and "--trial 42" in err and "0-6" in err
    assert len(err.strip().splitlines()) == 1


def test_show_failed_and_rejected_trials_give_their_reason(make_views_study, cli):
    vs = make_views_study()
    code, stdout, _ = cli("show", "--trial", "4", *vs.args())
    assert code == 0 and "RuntimeError: boom" in stdout and "fail" in stdout
    code, stdout, _ = cli("show", "--trial", "5", *vs.args(), "--json")
    assert json.loads(stdout)["fail_reason"] == "pruned: AP50 0.031 at step 60"
    code, stdout, _ = cli("show", "--trial", "3", *vs.args(), "--json")
    data = json.loads(stdout)
    assert data["proxy"] is None and data["values"][0] is None and "flash" in data["rejected"]


def test_show_trial_json_and_table(make_views_study, cli, tmp_path):
    vs = make_views_study()
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"x")
    trials.record_result(vs.study, 1, {"trained": {"ap50": 0.5, "map": 0.25, "epochs": 3,
                                                   "wall_s": 9.0, "stopped_by": "time-budget",
                                                   "checkpoint": str(ckpt)}})
    code, stdout, _ = cli("show", "--trial", "1", *vs.args(), "--json")
    data = json.loads(stdout)
    assert code == 0 and data["study"] == "search" and data["state"] == "COMPLETE"
    assert data["estimate"]["tflite_bytes_estimated"] == 200_000
    assert data["constraints"]["flash"] < 0 and data["genome"]["resolution"] == 96
    assert data["artefacts"]["checkpoint"] == {"path": str(ckpt), "exists": True}
    code, stdout, _ = cli("show", "--trial", "1", *vs.args())
    assert code == 0 and "50.0 / 25.0" in stdout and "time-budget" in stdout
    assert str(ckpt) in stdout


def test_show_trial_lists_the_proxy_components(make_views_study, cli):
    vs = make_views_study()
    parts = {"coverage": 0.81, "backbone_macs": 2_500_000, "score": 0.7}
    number = vs.add(0.7, 30.0, proxy_components=parts)
    code, stdout, err = cli("show", "--trial", str(number), *vs.args(), "--json")
    assert code == 0, err
    assert json.loads(stdout)["proxy_components"] == parts
    code, stdout, _ = cli("show", "--trial", str(number), *vs.args())
    assert code == 0 and "coverage" in stdout and "0.81" in stdout and "2,500,000" in stdout
    # A trial scored before the components were stored has none.
    code, stdout, _ = cli("show", "--trial", "1", *vs.args(), "--json")
    assert code == 0 and json.loads(stdout)["proxy_components"] is None


def test_show_baseline(make_views_study, cli):
    vs = make_views_study()
    code, stdout, _ = cli("show", "--baseline", "etn-w0.35-ssdlite", *vs.args(), "--json")
    data = json.loads(stdout)
    assert code == 0 and data["study"] == "search:baselines" and data["proxy"] == 0.6
    code, _, err = cli("show", "--baseline", "nope", *vs.args())
    assert code == 2 and "etn-w0.35-ssdlite, ssd-mbv1-0.25-192" in err


@pytest.mark.parametrize(("argv", "needle"), [
    (["train", "--trial", "4", "--out", "X"], "trial 4 of study 'search' is failed: RuntimeError"),
    (["train", "--trial", "5", "--out", "X"], "is pruned: AP50 0.031"),
    (["train", "--trial", "9", "--out", "X"], "its trials are 0-6"),
    (["train", "etn-w0.35-ssdlite", "--trial", "1", "--out", "X"], "not several"),
    (["export", "--trial", "4", "--out", "X"], "is failed"),
    (["evaluate", "--trial", "1"], "never trained"),
    (["evaluate", "--trial", "5"], "is pruned"),
])
def test_study_trial_refusals(make_views_study, cli, monkeypatch, tmp_path, argv, needle):
    monkeypatch.chdir(tmp_path)
    vs = make_views_study()
    code, _, err = cli(*argv, "--study", "search", *vs.args())
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_trial_without_study_is_refused(cli):
    code, _, err = cli("evaluate", "--trial", "1")
    assert code == 2 and "--study and --trial go together" in err


def test_export_of_a_trial_is_judged_on_the_study_board(make_views_study):
    import argparse

    from nas.cli.export import _study_target

    vs = make_views_study()
    model = trials.trial_model(vs.study, 1, need_checkpoint=False)
    args = argparse.Namespace(target=None, runtime=None, clock=None, flash=None, ram="1MiB")
    assert "judged on stm32h7" in _study_target(args, model)
    assert (args.target, args.runtime, args.clock) == ("stm32h7", "xcubeai", 400)
    assert (args.flash, args.ram) == (str(512 * 1024), "1MiB")  # the command line wins
    plain = argparse.Namespace(target=None, runtime=None, clock=None, flash=None, ram=None)
    assert _study_target(plain, None) is None
    assert plain.target == "stm32h7" and plain.flash is None


def test_trial_stores_and_shows_the_runtimes_four_memory_figures(make_views_study, cli):
    """What the objective records for a trial on stm32h7 (xcubeai) carries the X-CUBE-AI
    model's four figures with their bands, and ``show`` prints them."""
    from estimators.estimate import Budgets
    from estimators.targets import get_target
    from nas.search.objective import assess, estimate_attr

    vs = make_views_study()
    target = get_target("stm32h7")
    assessed = assess(vs.spec, target, Budgets.for_target(target), None)
    attr = estimate_attr(vs.spec, assessed)
    assert attr["memory_model"].startswith("X-CUBE-AI")
    for f in ("activation_ram", "weights_flash", "code_flash", "runtime_ram"):
        assert attr[f"{f}_bytes_low"] <= attr[f"{f}_bytes"] <= attr[f"{f}_bytes_high"], f
    assert attr["ram_bytes"] == attr["activation_ram_bytes_high"] + attr["runtime_ram_bytes_high"]
    trial = vs.study.ask()  # recorded as the objective does (spec, genome, estimate)
    for key, value in (("spec", vs.spec.to_dict()), ("genome", vs.spec.genome.to_dict()),
                       ("estimate", attr), ("proxy", 0.7)):
        trial.set_user_attr(key, value)
    vs.study.tell(trial, [0.7, attr["latency_ms"]])
    code, stdout, _ = cli("show", "--trial", str(trial.number), *vs.args())
    assert code == 0 and "activations (band)" in stdout and "code flash (band)" in stdout
    assert "X-CUBE-AI" in stdout
