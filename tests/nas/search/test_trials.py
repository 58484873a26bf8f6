"""Trial rows, the feasible front and the top-k records, from a hand-built study."""

from __future__ import annotations

import json
import math
import random

import optuna
import pytest

from nas.errors import UsageError
from nas.search import trials
from nas.search.finalize import pick


def test_rows_read_every_attr(make_views_study):
    vs = make_views_study()
    rows = {r.trial: r for r in trials.rows(vs.study)}
    assert sorted(rows) == [0, 1, 2, 3, 4, 5, 6]
    ok = rows[1]
    assert (ok.state, ok.proxy, ok.latency_ms, ok.fits, ok.feasible) == (
        "COMPLETE", 0.8, 20.0, True, True)
    assert ok.latency_ms_low == pytest.approx(18.0) and ok.flash_bytes == 300_000
    assert ok.head == "ssdlite" and ok.input_size == 96 and ok.genome["resolution"] == 96
    assert ok.budget("flash") == 512 * 1024 and ok.budget_used("ram") == 120_000 / 262_144
    rejected = rows[3]
    assert rejected.proxy is None and rejected.fits is False and not rejected.feasible
    assert "flash 600000" in rejected.rejected and rejected.constraints["flash"] > 0
    assert rows[4].state == "FAIL" and rows[4].fail_reason == "RuntimeError: boom"
    # Its estimate fitted (fits comes from there when no constraint was set); it failed after.
    assert rows[4].fits is True and not rows[4].feasible
    assert rows[5].state == "PRUNED" and "step 60" in rows[5].fail_reason


def test_front_is_feasible_pareto_fastest_first(make_views_study):
    vs = make_views_study()
    # Trial 3 (rejected, fastest) must not be there even though Optuna sees -inf < others.
    assert [r.trial for r in trials.front(vs.study)] == [0, 1, 6]
    assert all(trials.feasible(t) for t in trials.front_trials(vs.study))


def test_best_trials_in_optuna_5_hold_only_feasible_trials():
    # The front relies on this (toolchain notes): a dominating trial that breaks a
    # constraint is not among best_trials.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for proxy, latency, over in ((1.0, 10.0, -1.0), (5.0, 1.0, 3.0)):
        t = study.ask()
        t.set_constraint("flash", over)
        study.tell(t, [proxy, latency])
    assert [t.number for t in study.best_trials] == [0]


def test_to_dict_is_strict_json(make_views_study):
    vs = make_views_study()
    rows = [r.to_dict() for r in trials.rows(vs.study)]
    text = json.dumps(rows, allow_nan=False)  # raises on -inf/NaN
    assert json.loads(text)[3]["proxy"] is None
    assert trials.json_safe({"a": [math.nan, 1.0, -math.inf]}) == {"a": [None, 1.0, None]}


def test_results_are_merged_and_replaced(make_views_study):
    vs = make_views_study()
    trials.record_result(vs.study, 1, {"trained": {"ap50": 0.5, "checkpoint": "/x"},
                                       "ignored": 1})
    row = trials.row_of(vs.study, vs.study.trials[1])
    assert row.trained == {"ap50": 0.5, "checkpoint": "/x"} and row.exported is None
    trials.record_result(vs.study, 1, {"trained": {"ap50": 0.6}, "export_error": "parity"})
    row = {r.trial: r for r in trials.rows(vs.study)}[1]
    assert row.trained == {"ap50": 0.6} and row.export_error == "parity"
    assert "ignored" not in vs.study.user_attrs[f"{trials.RESULT_PREFIX}1"]


def test_trained_results_are_the_trained_genomes_with_their_ap50(make_views_study):
    vs = make_views_study()
    assert trials.trained_results(vs.study) == ()
    trials.record_result(vs.study, 1, {"trained": {"ap50": 0.5}})
    trials.record_result(vs.study, 0, {"trained": {"ap50": None}})  # a failed evaluation
    trials.record_result(vs.study, 6, {"train_error": "loss nan"})
    assert trials.trained_results(vs.study) == ((vs.spec, 0.5),)


def test_trial_model_refuses_failed_pruned_unknown_and_untrained(make_views_study, tmp_path):
    vs = make_views_study()
    with pytest.raises(UsageError, match=r"trial 4 of study 'search' is failed: RuntimeError"):
        trials.trial_model(vs.study, 4, need_checkpoint=False)
    with pytest.raises(UsageError, match=r"is pruned: AP50"):
        trials.trial_model(vs.study, 5, need_checkpoint=False)
    with pytest.raises(UsageError, match=r"--trial 99: .* its trials are 0-6"):
        trials.trial_model(vs.study, 99, need_checkpoint=False)
    with pytest.raises(UsageError, match="never trained"):
        trials.trial_model(vs.study, 1, need_checkpoint=True)
    model = trials.trial_model(vs.study, 1, need_checkpoint=False)
    assert model.spec == vs.spec and model.checkpoint is None and model.data_root is None
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"x")
    trials.record_result(vs.study, 1, {"trained": {"checkpoint": str(ckpt)}})
    assert trials.trial_model(vs.study, 1, need_checkpoint=True).checkpoint == ckpt
    ckpt.unlink()
    with pytest.raises(UsageError, match="checkpoint is gone"):
        trials.trial_model(vs.study, 1, need_checkpoint=True)


def test_number_ranges():
    assert trials.number_ranges([5, 0, 1, 2, 7, 8]) == "0-2, 5, 7-8"
    assert trials.number_ranges([]) == "none"


def test_pick_rivals_each_baseline_then_fills_by_proxy(make_views_study):
    vs = make_views_study()
    front = trials.front(vs.study)  # (latency, proxy): #0 (10, .5), #1 (20, .8), #6 (40, .9)
    bases = trials.rows(vs.baselines)  # ssd-mbv1 at 15 ms, etn at 30 ms
    # ssd-mbv1's rival: best proxy at <= 15 ms = #0; etn's: best at <= 30 ms = #1.
    assert [r.trial for r in pick(front, bases, 2)] == [0, 1]
    assert [r.trial for r in pick(front, bases, 3)] == [0, 1, 6]
    assert [r.trial for r in pick(front, bases, 1)] == [0]
    assert [r.trial for r in pick(front, [], 2)] == [6, 1]
    assert pick([], bases, 3) == []


def _front_pairwise(study: optuna.Study) -> list[int]:
    """The feasible front by definition: feasible trials no other feasible trial dominates."""
    signs = [1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0
             for d in study.directions]
    points = {t.number: [s * v for s, v in zip(signs, t.values, strict=True)]
              for t in study.get_trials(deepcopy=False) if trials.feasible(t)}

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    return sorted(n for n, p in points.items()
                  if not any(dominates(q, p) for q in points.values()))


def _made_trial(proxy: float, latency: float, state: str, flash_over: float
                ) -> optuna.trial.FrozenTrial:
    """A finished trial as the objective records it (user attrs cut to what the front reads)."""
    if state != "COMPLETE":
        return optuna.trial.create_trial(state=getattr(optuna.trial.TrialState, state))
    rejected = flash_over > 0
    return optuna.trial.create_trial(
        values=[-math.inf if rejected else proxy, latency],
        constraints={"flash": flash_over, "ram": -1.0},
        user_attrs={"rejected": "flash"} if rejected else {"proxy": proxy})


@pytest.mark.parametrize("seed", range(4))
def test_front_is_the_pairwise_feasible_front_ties_and_rejects_included(seed):
    # A better proxy costs latency, so the front has several trials; few distinct values, so
    # many tie (equal points are both on it); rejected trials (-inf proxy, over budget, a
    # constraint of exactly 0 fits) fall anywhere; failed and pruned ones in between.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"])
    rng = random.Random(seed)
    for _ in range(40):
        level = rng.randrange(5)
        state = rng.choice(["COMPLETE"] * 5 + ["FAIL", "PRUNED"])
        study.add_trial(_made_trial(0.1 + 0.2 * level, 10.0 * (level + 1) + rng.choice([0, 5, 10]),
                                    state, rng.choice([-1.0, -1.0, 0.0, 100.0])))
    front = trials.front_trials(study)
    assert len(front) >= 3
    assert sorted(t.number for t in front) == _front_pairwise(study)
    assert [t.number for t in front] == [
        t.number for t in sorted(front, key=lambda t: (t.values[1], t.number))]


def test_front_leaves_out_trials_without_constraints():
    # Where no trial recorded constraints, Optuna's best_trials takes every COMPLETE trial for
    # feasible, a -inf proxy included; the front wants recorded constraints that hold.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.tell(study.ask(), [-math.inf, 1.0])
    study.tell(study.ask(), [0.5, 10.0])
    assert len(study.best_trials) == 2
    assert trials.front_trials(study) == []
