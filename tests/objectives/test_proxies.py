"""Accuracy proxies: registry, determinism, sensitivity to the architecture, the short-training
proxy's reporting and pruning, and Kendall's tau."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import ClassVar

import pytest
import torch

from objectives.data import open_dataset
from objectives.proxies import (
    DEFAULT_PROXY,
    AccuracyProxy,
    ProxyData,
    ProxyError,
    ProxyOutOfTime,
    ProxyPruned,
    get_proxy,
    kendall_tau,
    list_proxies,
    register_proxy,
)
from objectives.proxies.probe import Taps, probe_batch
from objectives.proxies.short_train import ShortTrainProxy
from objectives.train import Recipe, TrainingDiverged
from search_space.baselines import seed_genome
from search_space.genome import genome_at_resolution
from search_space.spec import ModelSpec

FREE = ("naswot", "zen", "params", "macs")


@pytest.fixture(scope="module")
def data(demo_dir) -> ProxyData:
    return ProxyData(open_dataset(demo_dir, "train"), open_dataset(demo_dir, "val"), seed=0)


@pytest.fixture(scope="module")
def wide_spec() -> ModelSpec:
    """The tiny spec's family, 0.75 wide instead of 0.35."""
    return ModelSpec(3, genome=genome_at_resolution(seed_genome(0.75), 96), name="wide")


def fast_short_train(**kwargs) -> ShortTrainProxy:
    settings = {"steps": 3, "reports": 2, "val_images": 4, "report_val_images": 4,
                "recipe": Recipe(batch_size=4)}
    return ShortTrainProxy(**{**settings, **kwargs})


# ---- registry --------------------------------------------------------------------------------

def test_registry_lists_the_proxies_and_the_default_is_one_of_them():
    assert set(list_proxies()) >= {*FREE, "short-train"}
    assert DEFAULT_PROXY in list_proxies()
    assert get_proxy("short-train").training_free is False
    assert all(get_proxy(name).training_free for name in FREE)


def test_unknown_proxy_is_a_one_line_error_listing_valid_names():
    with pytest.raises(ProxyError) as info:
        get_proxy("zen-score")
    message = str(info.value)
    assert "\n" not in message and "'zen-score'" in message
    assert ", ".join(list_proxies()) in message
    assert isinstance(info.value, ValueError)


def test_options_set_a_proxys_numeric_settings():
    proxy = get_proxy("short-train:steps=12, val_images=10,warmup_share=0.5")
    assert isinstance(proxy, ShortTrainProxy)
    assert (proxy.steps, proxy.val_images, proxy.warmup_share) == (12, 10, 0.5)
    assert get_proxy("naswot:images=8").images == 8


@pytest.mark.parametrize(("name", "needle"), [
    ("short-train:steps", "'steps' of short-train: settable options are steps (an integer)"),
    ("short-train:recipe=1", "'recipe=1' of short-train: settable options are"),
    ("short-train:steps=1.5", "steps='1.5' of short-train: expected an integer"),
    ("short-train:steps=0", "steps=0"),
    ("params:x=1", "'x=1' of params: settable options are none"),
    ("nope:steps=1", "unknown proxy 'nope'"),
])
def test_bad_options_are_one_line_errors(name, needle):
    with pytest.raises(ProxyError) as info:
        get_proxy(name)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_name_cannot_be_registered_twice():
    class Other(AccuracyProxy):
        name: ClassVar[str] = "naswot"
        training_free: ClassVar[bool] = True

        def score(self, spec, data, report=None) -> float:
            return 0.0

    with pytest.raises(ProxyError, match="already registered"):
        register_proxy(Other)
    assert type(get_proxy("naswot")).__name__ == "NaswotProxy"


# ---- training-free proxies ---------------------------------------------------------------------

def test_probe_batch_is_real_images_at_the_models_size(data):
    batch = probe_batch(data.train, 96, 5, seed=0)
    assert batch.shape == (5, 3, 96, 96) and batch.dtype == torch.float32
    assert torch.equal(batch, probe_batch(data.train, 96, 5, seed=0))
    assert not torch.equal(batch, probe_batch(data.train, 96, 5, seed=1))
    # More images asked for than there are: all of them, once.
    assert len(probe_batch(data.train, 64, 100, seed=0)) == len(data.train)


def test_taps_find_every_activation_and_every_predicted_map(tiny_spec):
    net = tiny_spec.build()
    taps = Taps.of(net)
    activations = sum(op.kind in ("relu", "relu6") for op in net.arch.graph.ops)
    assert len(taps.pre_activations) == activations
    assert len(taps.head_inputs) == len(net.arch.map_sizes)


@pytest.mark.parametrize("name", ["naswot", "zen"])
def test_free_proxies_are_deterministic_and_leave_the_callers_rng_alone(name, tiny_spec, data):
    proxy = get_proxy(name)
    torch.manual_seed(123)
    first = proxy.score(tiny_spec, data)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert proxy.score(tiny_spec, data) == first
    assert torch.equal(torch.rand(3), after)
    assert math.isfinite(first)


@pytest.mark.parametrize("name", FREE)
def test_a_wider_model_of_the_same_family_scores_higher(name, tiny_spec, wide_spec, data):
    proxy = get_proxy(name)
    assert proxy.score(wide_spec, data) > proxy.score(tiny_spec, data)


def test_the_proxy_sees_the_models_resolution(data):
    genome = seed_genome(0.35)
    low, high = (ModelSpec(3, genome=genome_at_resolution(genome, r)) for r in (96, 160))
    for name in ("naswot", "zen"):
        assert get_proxy(name).score(high, data) > get_proxy(name).score(low, data)


def test_prior_iou_measures_the_priors_not_the_width(tiny_spec, wide_spec, data):
    proxy = get_proxy("prior-iou")
    value = proxy.score(tiny_spec, data)
    assert 0.0 < value < 1.0
    # Same head geometry, other widths: the same priors.
    assert proxy.score(wide_spec, data) == value


# ---- short training ----------------------------------------------------------------------------

def test_short_train_reports_intermediate_ap50_and_returns_the_final_one(tiny_spec, data):
    calls: list[tuple[int, float]] = []
    value = fast_short_train().score(tiny_spec, data,
                                     lambda step, v: calls.append((step, v)) or False)
    assert [step for step, _ in calls] == [1, 2, 3]
    assert 0.0 <= value <= 1.0 and calls[-1] == (3, value)


def test_short_train_is_deterministic_for_a_seed(tiny_spec, data):
    proxy = fast_short_train(steps=2, reports=0)
    assert proxy.score(tiny_spec, data) == proxy.score(tiny_spec, data)


def test_report_returning_true_prunes_with_the_step(tiny_spec, data):
    seen: list[int] = []

    def stop_at_second(step: int, value: float) -> bool:
        seen.append(step)
        return len(seen) == 2

    with pytest.raises(ProxyPruned) as info:
        fast_short_train().score(tiny_spec, data, stop_at_second)
    assert info.value.step == 2 and seen == [1, 2]
    assert str(info.value) == f"AP50 {info.value.value:.3f} at step 2"


def test_short_train_stops_at_the_deadline(tiny_spec, data):
    late = dataclasses.replace(data, deadline=time.monotonic())
    with pytest.raises(ProxyOutOfTime) as info:
        fast_short_train(steps=50).score(tiny_spec, late)
    assert (info.value.step, info.value.steps) == (1, 50)
    assert str(info.value) == "stopped at step 1 of 50"
    later = dataclasses.replace(data, deadline=time.monotonic() + 3600)
    assert 0.0 <= fast_short_train(steps=2).score(tiny_spec, later) <= 1.0


def test_short_train_refuses_a_diverged_loss(tiny_spec, data):
    proxy = fast_short_train(steps=6, reports=0, recipe=Recipe(batch_size=4, lr=1e9))
    with pytest.raises(TrainingDiverged, match=r"loss nan at step \d \(lr "):
        proxy.score(tiny_spec, data)


def test_short_train_needs_a_validation_split(tiny_spec, data):
    with pytest.raises(ProxyError, match="validation split"):
        fast_short_train().score(tiny_spec, ProxyData(data.train))
    with pytest.raises(ProxyError, match="steps=0"):
        fast_short_train(steps=0)


# ---- Kendall tau -------------------------------------------------------------------------------

def test_kendall_tau_known_values():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # By hand: pairs 6; x ties one pair (the two 2s); concordant 5, discordant 0;
    # tau-b = 5 / sqrt((6 - 1) * (6 - 0)).
    assert kendall_tau([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(5 / math.sqrt(30))
    # Ties on both sides: x (0,1) tied, y (2,3) tied; concordant (0,2),(0,3),(1,2),(1,3),
    # discordant none; tau-b = 4 / sqrt(5 * 5).
    assert kendall_tau([1, 1, 2, 3], [1, 2, 3, 3]) == pytest.approx(4 / 5)
    # One swap among four: 5 concordant, 1 discordant.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)


def test_kendall_tau_edge_cases():
    assert kendall_tau([-math.inf, 0.5, 1.0], [0.1, 0.2, 0.3]) == 1.0
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="equal length"):
        kendall_tau([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        kendall_tau([1, math.nan], [1, 2])
