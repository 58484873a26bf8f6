"""The geometry/capacity features, the composite proxy, the surrogate and the trained set."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from objectives.data import open_dataset
from objectives.proxies import ProxyData, ProxyError, get_proxy
from objectives.proxies.features import features, map_receptive_fields
from objectives.proxies.surrogate import MIN_FIT, fit_model, genome_features, on_shipped_scale
from objectives.proxies.trained_set import (
    SPLITS,
    TrainedArch,
    load_trained_set,
    read_set_file,
)
from search_space.baselines import seed_genome
from search_space.genome import genome_at_resolution
from search_space.spec import ModelSpec


@pytest.fixture(scope="module")
def data(demo_dir) -> ProxyData:
    return ProxyData(open_dataset(demo_dir, "train"), open_dataset(demo_dir, "val"), seed=0)


def at(width: float, resolution: int = 96) -> ModelSpec:
    return ModelSpec(3, genome=genome_at_resolution(seed_genome(width), resolution),
                     name=f"w{width}")


def test_geometry_matches_prior_iou_and_shares_are_shares(data):
    found = features(at(0.35), data)
    assert found["mean_iou"] == pytest.approx(get_proxy("prior-iou").score(at(0.35), data))
    for key in ("coverage", "small_recall", "rf_cover"):
        assert 0.0 <= found[key] <= 1.0
    # A box is matched at IoU >= 0.5 only if its best IoU is; the mean IoU sits below 1.
    assert found["coverage"] <= 1.0 and found["mean_iou"] < 1.0


def test_coarser_maps_see_more_of_the_image():
    arch = at(0.35, 160).lower()
    fields = map_receptive_fields(arch)
    assert len(fields) == len(arch.map_sizes)
    assert fields == sorted(fields) and fields[0] > 3


def test_composite_tells_backbones_apart_under_the_same_head(data):
    proxy = get_proxy("composite")
    thin, wide = proxy.components(at(0.35), data), proxy.components(at(0.75), data)
    assert thin["geometry"] == wide["geometry"]  # same priors
    assert wide["capacity"] > thin["capacity"]
    assert wide["score"] > thin["score"] == proxy.score(at(0.35), data)
    geometry_only = get_proxy("composite:capacity_weight=0")
    assert geometry_only.score(at(0.35), data) == geometry_only.score(at(0.75), data)


def test_composite_sees_resolution_through_the_geometry(data):
    proxy = get_proxy("composite")
    low, high = proxy.components(at(0.35, 64), data), proxy.components(at(0.35, 192), data)
    assert high["small_recall"] >= low["small_recall"]
    assert high["backbone_macs"] > low["backbone_macs"]


def _arch(width: float, ap50: float) -> TrainedArch:
    spec = at(width)
    return TrainedArch(f"w{width}", "fit", "stm32h7", spec.genome, 3, ap50, ap50 / 2, 10.0,
                       {})


def test_surrogate_learns_an_ordering_from_its_fit_set(data):
    widths = [0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 1.0]
    model, names, used = fit_model([_arch(w, w / 2) for w in widths], data, 150, 100, 2, 0.1)
    assert used == 0
    rows = [{**genome_features(at(w).genome), **features(at(w), data)} for w in (0.3, 0.9)]
    low, high = model.predict([[r[n] for n in names] for r in rows])
    assert high > low


def test_the_surrogate_refits_on_the_users_own_results(data):
    """The user's data ranks thin above wide, against the shipped set: refitted on three such
    results, the surrogate follows the user where the user has spoken."""
    shipped = [_arch(w, w / 2) for w in (0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 1.0)]
    user = dataclasses.replace(data, trained=((at(0.3), 0.6), (at(0.6), 0.4), (at(0.9), 0.2)))
    before, names, _ = fit_model(shipped, data, 150, 100, 2, 0.1)
    after, _, used = fit_model(shipped, data, 150, 100, 2, 0.1, user)
    rows = [[r[n] for n in names]
            for r in ({**genome_features(at(w).genome), **features(at(w), data)}
                      for w in (0.3, 0.9))]
    assert used == 3
    thin, wide = before.predict(rows)
    assert thin < wide
    thin, wide = after.predict(rows)
    assert thin > wide
    # Two results are not enough to refit on.
    two = dataclasses.replace(data, trained=user.trained[:2])
    assert fit_model(shipped, data, 150, 100, 2, 0.1, two)[2] == 0


def test_the_users_ap50_keeps_its_order_on_the_shipped_scale():
    moved = on_shipped_scale(np.array([0.9, 0.5, 0.7]), np.array([0.2, 0.3, 0.4]))
    assert list(np.argsort(moved)) == [1, 2, 0]
    assert moved.mean() == pytest.approx(0.3) and moved.std() == pytest.approx(np.std([.2, .3, .4]))
    assert list(on_shipped_scale(np.array([0.5, 0.5]), np.array([0.1, 0.3]))) == [0.2, 0.2]


def test_a_search_refuses_the_surrogate_before_its_set_can_rank(monkeypatch):
    from objectives.proxies import surrogate

    monkeypatch.setattr(surrogate, "load_trained_set", lambda split=None: ())
    with pytest.raises(ProxyError, match=f"at least {MIN_FIT}"):
        get_proxy("surrogate").ready()
    get_proxy("composite").ready()  # most proxies are always ready


def test_the_surrogate_keeps_only_its_latest_fits(monkeypatch):
    """A long continued search refits each time its results grow: memory stays bounded."""
    from objectives.proxies import surrogate

    fits: list[int] = []
    monkeypatch.setattr(surrogate, "_FITS", {})
    monkeypatch.setattr(surrogate, "_demo_data", lambda seed: None)
    monkeypatch.setattr(surrogate, "load_trained_set", lambda split=None: ())
    monkeypatch.setattr(surrogate, "fit_model", lambda *args: fits.append(args[2]) or fits[-1])
    for images in range(10):
        surrogate._fitted((images, 1, 1, 0.1), 0, None)
    assert len(surrogate._FITS) == surrogate._MAX_FITS and len(fits) == 10
    surrogate._fitted((9, 1, 1, 0.1), 0, None)  # the latest is kept: no new fit
    assert len(fits) == 10


def test_surrogate_refuses_a_set_too_small_to_rank(data):
    with pytest.raises(ProxyError, match=f"at least {MIN_FIT}"):
        fit_model([_arch(0.35, 0.1)], data, 150, 10, 2, 0.1)


def test_the_shipped_set_records_what_it_promises():
    archs = load_trained_set()
    assert {a.split for a in archs} <= set(SPLITS)
    seeds = {split: {a.record["draw_seed"] for a in archs if a.split == split}
             for split in SPLITS}
    assert not seeds["fit"] & seeds["heldout"]  # the held-out draws are no fit's
    assert len({a.id for a in archs}) == len(archs)
    for a in archs:
        assert 0.0 <= a.map <= a.ap50 <= 1.0
        assert a.record["recipe"]["epochs"] == 12 and a.record["loss_curve"]
        assert len(a.record["loss_curve"]) == 12 and a.record["train_s"] > 0
        assert a.spec.lower().map_sizes  # the genome still lowers
        # The first six were trained before SAME padding: they rebuild as they were trained.
        assert a.spec.padding == ("symmetric" if a.record["date"] < "2026-12-03" else "same")


def test_a_set_file_of_another_format_is_refused(tmp_path):
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"format": "something-else/9", "architectures": []}))
    with pytest.raises(ValueError, match="something-else/9"):
        read_set_file(path)
    assert read_set_file(tmp_path / "absent.json")["architectures"] == []


def test_every_proxy_reports_its_components_with_the_score(data):
    for name in ("prior-iou", "macs", "composite"):
        proxy = get_proxy(name)
        parts = proxy.components(at(0.35), data)
        assert parts["score"] == proxy.score(at(0.35), data)
    assert {"coverage", "small_recall", "capacity", "rf_cover"} <= set(
        get_proxy("composite").components(at(0.35), data))
