"""The multi-fidelity ``loss-area`` proxy: it is the start of the real training, reports
thousandths of its run at halving rungs, and a search prunes it by successive halving."""

from __future__ import annotations

import dataclasses
import time

import optuna
import pytest

from nas.search.driver import make_pruner
from objectives.data import open_dataset
from objectives.proxies import (
    HALVING_FIRST_RUNG,
    ProxyData,
    ProxyError,
    ProxyOutOfTime,
    ProxyPruned,
    get_proxy,
)
from objectives.proxies.loss_area import LossAreaProxy
from objectives.train import Recipe, train


@pytest.fixture(scope="module")
def data(demo_dir) -> ProxyData:
    return ProxyData(open_dataset(demo_dir, "train"), None, seed=0)


def fast(**kwargs) -> LossAreaProxy:
    """One epoch scored whole, blended with geometry: every part of the score in play."""
    return LossAreaProxy(**{"images": 16, "recipe": Recipe(batch_size=2, threads=1),
                            "epochs": 1.0, "window": 0.0, "geometry_weight": 1.0, **kwargs})


def test_the_loss_area_is_the_first_epoch_of_the_real_training(tiny_spec, data, tmp_path):
    proxy = fast()
    parts = proxy.components(tiny_spec, data)
    result = train(tiny_spec, data.train, tmp_path / "run",
                   dataclasses.replace(proxy.recipe, epochs=1))
    assert parts["loss_area"] == pytest.approx(result.history[0]["loss"], rel=1e-5)
    assert parts["steps"] == 8  # 16 images in batches of 2
    assert 0 < parts["geometry"] <= 1
    assert parts["score"] == pytest.approx(parts["geometry"] / parts["loss_area"])


def test_geometry_weight_zero_is_the_inverse_loss_area(tiny_spec, data):
    parts = fast(geometry_weight=0.0).components(tiny_spec, data)
    assert parts["score"] == pytest.approx(1 / parts["loss_area"])


def test_it_reports_a_quarter_and_a_half_in_thousandths_and_not_the_end(tiny_spec, data):
    calls: list[tuple[int, float]] = []
    proxy = fast()
    value = proxy.score(tiny_spec, data, lambda step, v: calls.append((step, v)) or False)
    assert [step for step, _ in calls] == [HALVING_FIRST_RUNG, 500]
    assert proxy.rungs_at(8) == {2: 250, 4: 500}
    # The area so far at a quarter is the mean of the first two steps' losses: it differs.
    assert calls[0][1] != value and value == proxy.score(tiny_spec, data)


def test_report_returning_true_prunes_it(tiny_spec, data):
    with pytest.raises(ProxyPruned) as info:
        fast().score(tiny_spec, data, lambda step, v: True)
    assert info.value.step == 2 and "loss-area score" in str(info.value)


def test_it_stops_at_the_deadline(tiny_spec, data):
    late = dataclasses.replace(data, deadline=time.monotonic())
    with pytest.raises(ProxyOutOfTime):
        fast().score(tiny_spec, late)


def test_a_search_prunes_it_by_successive_halving_and_others_by_the_median():
    assert get_proxy("loss-area").pruning == "halving"
    assert get_proxy("short-train").pruning == "median"
    halving = make_pruner(get_proxy("loss-area"))
    assert isinstance(halving, optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner(get_proxy("short-train")), optuna.pruners.MedianPruner)
    study = optuna.create_study(direction="maximize", pruner=halving)
    kept = []
    for value in (1.0, 2.0, 0.5, 3.0, 0.1, 4.0):
        trial = study.ask()
        trial.report(value, HALVING_FIRST_RUNG)
        kept.append(not trial.should_prune())
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    # Only a value in the top half of those that reached the rung goes on.
    assert kept == [True, True, False, True, False, True]


def test_a_replay_of_recorded_epoch_losses_gives_the_trained_score(tiny_spec, data, tmp_path):
    proxy = fast()
    result = train(tiny_spec, data.train, tmp_path / "run",
                   dataclasses.replace(proxy.recipe, epochs=2))
    losses = [h["loss"] for h in result.history]
    assert proxy.replay(tiny_spec, data, losses)["score"] == \
        pytest.approx(proxy.score(tiny_spec, data), rel=1e-5)
    two = fast(epochs=2.0).replay(tiny_spec, data, losses)
    assert two["loss_area"] == pytest.approx(sum(losses) / 2)
    last = fast(epochs=2.0, window=1.0).replay(tiny_spec, data, losses)
    assert last["loss_area"] == pytest.approx(losses[1])
    with pytest.raises(ProxyError, match="whole numbers"):
        fast(epochs=0.5).replay(tiny_spec, data, losses)
    with pytest.raises(ProxyError, match="at most the 2 recorded"):
        fast(epochs=3.0).replay(tiny_spec, data, losses)


def test_the_window_scores_the_end_of_the_run_and_the_rungs_the_same_way(tiny_spec, data):
    proxy = fast(epochs=2.0, window=1.0)
    assert proxy.area([9.0, 7.0, 5.0, 3.0], 2) == 4.0  # the last epoch of two steps
    assert proxy.area([9.0], 2) == 9.0  # a rung before a whole window: what there is
    assert fast().area([9.0, 7.0, 5.0, 3.0], 2) == 6.0  # window 0: the whole run
    calls: list[tuple[int, float]] = []
    parts = proxy.components(tiny_spec, data, lambda s, v: calls.append((s, v)) or False)
    assert parts["steps"] == 16 and [s for s, _ in calls] == [250, 500]


def test_the_defaults_are_the_fit_splits_choice():
    proxy = get_proxy("loss-area")
    assert (proxy.epochs, proxy.window, proxy.geometry_weight) == (4.0, 1.0, 0.0)


def test_a_short_run_never_reports_at_its_end_and_each_step_once():
    proxy = fast()
    assert proxy.rungs_at(1) == {}
    assert proxy.rungs_at(2) == {1: 250}  # the half would be the last step
    assert proxy.rungs_at(3) == {1: 250, 2: 500}
    assert fast(rungs=3).rungs_at(16) == {2: 125, 4: 250, 8: 500}


def test_the_pruners_first_rung_is_the_proxys_first_report():
    for rungs, first in ((1, 500), (2, HALVING_FIRST_RUNG), (3, 125)):
        proxy = get_proxy(f"loss-area:rungs={rungs}")
        assert proxy.first_rung() == first == min(proxy.rungs_at(1000).values())
        study = optuna.create_study(direction="maximize", pruner=make_pruner(proxy))
        decisions = []
        for value in (1.0, 2.0, 0.5):
            trial = study.ask()
            trial.report(value, first)
            decisions.append(trial.should_prune())
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        assert decisions == [False, False, True]  # judged at the first rung, once
