"""Fitting latency coefficients: the solver, the relative-error fit and the board / user
refits, each checked on synthetic data whose true coefficients are known."""

from __future__ import annotations

import numpy as np
import pytest

from estimators.latency.features import FEATURES, GROUPS
from estimators.latency.fit import (
    FULL_REFIT_ROWS,
    ONE_WEIGHT,
    ErrorSummary,
    FitError,
    fit_board,
    fit_host,
    fit_relative,
    fit_scale,
    group_matrix,
    host_identity,
    loo_errors,
    nnls,
    refit,
    relative_errors,
    scaled,
    single_run_error_range,
)
from estimators.latency.predictor import GROUP_NAMES, HostModel, LatencyModel

# -- the solver ---------------------------------------------------------------------------------


def _kkt(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> None:
    """Lawson-Hanson optimality: x >= 0, the gradient vanishes on x > 0, points outward at 0."""
    w = a.T @ (b - a @ x)
    scale = np.abs(a.T @ b).max()
    assert (x >= 0).all()
    assert np.abs(w[x > 0]).max(initial=0.0) <= 1e-8 * scale
    assert (w[x == 0] <= 1e-8 * scale).all()


def test_nnls_returns_a_known_non_negative_solution():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 1.0, (12, 5))
    truth = np.array([0.5, 2.0, 0.0, 1.5, 3.0])
    np.testing.assert_allclose(nnls(a, a @ truth), truth, atol=1e-10)


def test_nnls_clips_a_negative_component():
    a = np.eye(3)
    np.testing.assert_allclose(nnls(a, np.array([1.0, -2.0, 3.0])), [1.0, 0.0, 3.0])


def test_nnls_is_optimal_when_the_free_solution_is_negative():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.normal(size=(15, 6))
        b = rng.normal(size=15)
        free = np.linalg.lstsq(a, b, rcond=None)[0]
        x = nnls(a, b)
        _kkt(a, b, x)
        if (free < 0).any():
            assert (x == 0).any()


def test_nnls_of_a_zero_column_is_zero():
    a = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    np.testing.assert_allclose(nnls(a, np.array([2.0, 4.0, 6.0])), [2.0, 0.0])


# -- relative fit ---------------------------------------------------------------------------


def _wide_scale_rows(n: int, seed: int = 0) -> np.ndarray:
    """MACs ~1e7-5e8, elements ~1e4-1e6, op counts 5-60 and a constant column."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(1e7, 5e8, n), rng.uniform(1e4, 1e6, n),
                            rng.integers(5, 60, n).astype(float), np.ones(n)])


WIDE_TRUTH = np.array([2e-8, 3e-6, 0.05, 0.3])  # every term a sizeable share of the total


def test_fit_relative_recovers_coefficients_across_scales():
    x = _wide_scale_rows(40)
    np.testing.assert_allclose(fit_relative(x, x @ WIDE_TRUTH), WIDE_TRUTH, rtol=1e-6)


def test_fit_relative_with_one_percent_noise_is_within_a_few_percent():
    x = _wide_scale_rows(300, seed=2)
    noise = 1 + 0.01 * np.random.default_rng(3).normal(size=len(x))
    c = fit_relative(x, (x @ WIDE_TRUTH) * noise)
    np.testing.assert_allclose(c, WIDE_TRUTH, rtol=0.05)
    errors = relative_errors(x @ c, x @ WIDE_TRUTH)
    assert np.abs(errors).max() < 0.02


def test_fit_relative_weighs_rows_by_their_size():
    # One feature, two rows 1 and 100 ms: the relative fit splits the error evenly in
    # relative terms; an absolute fit would follow the 100 ms row.
    x = np.array([[1.0], [1.0]])
    y = np.array([1.0, 100.0])
    c = fit_relative(x, y)[0]
    expected = np.sum(1 / y) / np.sum(1 / y**2)  # argmin sum((c - y) / y)^2
    assert c == pytest.approx(expected)


def test_fit_relative_keeps_costs_non_negative():
    # The free solution of y = 2 x0 - 0.5 x1 has a negative cost; the fit must not.
    rng = np.random.default_rng(4)
    x = rng.uniform(1, 2, (20, 2))
    c = fit_relative(x, x @ np.array([2.0, -0.5]) + 5.0)
    assert (c >= 0).all()


@pytest.mark.parametrize(("x", "y"), [
    (np.ones((3, 2)), np.ones(2)),           # rows do not line up
    (np.ones((0, 2)), np.ones(0)),           # nothing to fit
    (np.ones((2, 2)), np.array([1.0, 0.0])),  # a non-positive time
    (np.ones((2, 2)), np.array([1.0, -3.0])),
])
def test_fit_relative_refuses_unusable_rows(x, y):
    with pytest.raises(FitError):
        fit_relative(x, y)


def test_loo_errors_on_exact_data_are_zero():
    x = _wide_scale_rows(12, seed=5)
    errors = loo_errors(x, x @ WIDE_TRUTH)
    assert errors.shape == (12,)
    assert np.abs(errors).max() < 1e-6


def test_loo_errors_needs_two_rows():
    with pytest.raises(FitError):
        loo_errors(np.ones((1, 1)), np.ones(1))


def test_loo_error_of_a_scale_fit_by_hand():
    # One feature equal to 1: leaving row i out fits c = sum(1/y) / sum(1/y^2) over the others.
    y = np.array([100.0, 105.0, 98.0])
    x = np.ones((3, 1))
    expected = []
    for i in range(3):
        rest = np.delete(y, i)
        expected.append((np.sum(1 / rest) / np.sum(1 / rest**2) - y[i]) / y[i])
    np.testing.assert_allclose(loo_errors(x, y), expected, rtol=1e-9)


def test_error_summary():
    s = ErrorSummary.of(np.array([-0.2, 0.05, 0.1, -0.1]))
    assert s.count == 4
    assert s.within_10 == pytest.approx(0.75)
    assert s.mape == pytest.approx(0.1125)
    assert (s.min_error, s.max_error) == (pytest.approx(-0.2), pytest.approx(0.1))
    assert s.to_dict() == {"count": 4, "within_10": s.within_10, "mape": s.mape,
                           "min_error": s.min_error, "max_error": s.max_error}


# -- host and board models ------------------------------------------------------------------


def _host(seed: int = 0, runtime: str = "tflm") -> HostModel:
    coefficients = tuple(np.random.default_rng(seed).uniform(0.5, 2.0, len(FEATURES)))
    return HostModel(runtime=runtime, coefficients=coefficients, error_range=(-0.05, 0.05),
                     accuracy={"fit_rows": 30}, environment={"clock_mhz": 2400, "cpu": "test"})


def _features(n: int, seed: int = 0) -> np.ndarray:
    """Rows whose conv / depthwise / other shares vary independently from row to row."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (n, len(FEATURES)))
    share = rng.uniform(0.2, 5.0, (n, 3))
    for j, name in enumerate(FEATURES):
        x[:, j] *= share[:, GROUP_NAMES.index(GROUPS[name])]
    return x


# Boards fit one weight shared by conv and depthwise (the published networks cannot tell
# their speed-ups apart), one for the rest, and a fixed cost.
TRUE_WEIGHTS = {"conv": 0.4, "depthwise": 0.4, "other": 1.7}
TRUE_FIXED = 1.5


def _board_ms(host: HostModel, x: np.ndarray, weights: dict[str, float] = TRUE_WEIGHTS,
              fixed: float = TRUE_FIXED) -> np.ndarray:
    return np.array([fixed + sum(weights[g] * v for g, v in host.groups(row).items())
                     for row in x])


def _model(host: HostModel, weights: dict[str, float] = TRUE_WEIGHTS, fixed: float = TRUE_FIXED,
           clock: int = 400, error_range: tuple[float, float] = (-0.15, 0.2),
           clock_scaling: bool = True) -> LatencyModel:
    return LatencyModel(target="stm32h7", runtime="xcubeai", basis=host.runtime,
                        weights=dict(weights), fixed_ms=fixed, clock_mhz=clock,
                        error_range=error_range, rows=20, thin=False, method="synthetic",
                        clock_scaling=clock_scaling)


def test_host_groups_split_the_prediction():
    host, x = _host(), _features(1)[0]
    groups = host.groups(x)
    assert set(groups) == set(GROUP_NAMES)
    assert sum(groups.values()) == pytest.approx(host.predict(x))
    conv = sum(c * v for c, v, n in zip(host.coefficients, x, FEATURES, strict=True)
               if GROUPS[n] == "conv")
    assert groups["conv"] == pytest.approx(conv)


def test_group_matrix_has_the_groups_and_a_one():
    host, x = _host(), _features(4)
    g = group_matrix(host, x)
    assert g.shape == (4, 4)
    np.testing.assert_allclose(g[:, 3], 1.0)
    np.testing.assert_allclose(g[:, :3].sum(axis=1), [host.predict(r) for r in x])
    assert group_matrix(host, x[0]).shape == (1, 4)


def test_fit_host_recovers_its_coefficients():
    truth = _host(seed=7)
    x = _features(60, seed=8)
    y = np.array([truth.predict(r) for r in x])
    host = fit_host("tflm", x, y, {"cpu": "test"})
    np.testing.assert_allclose(host.coefficients, truth.coefficients, rtol=1e-5)
    assert host.accuracy["fit_rows"] == 60
    assert max(abs(e) for e in host.error_range) < 1e-5
    assert host.environment == {"cpu": "test"}


def test_fit_board_recovers_group_weights():
    host = _host()
    x = _features(12, seed=1)
    model = fit_board("stm32h7", "xcubeai", host, x, _board_ms(host, x), 400, "synthetic")
    for g, w in TRUE_WEIGHTS.items():
        assert model.weights[g] == pytest.approx(w, rel=1e-6)
    assert model.fixed_ms == pytest.approx(TRUE_FIXED, rel=1e-6)
    assert (model.target, model.runtime, model.basis) == ("stm32h7", "xcubeai", "tflm")
    assert model.clock_mhz == 400 and model.rows == 12 and not model.thin
    assert max(abs(e) for e in model.error_range) < 1e-6
    assert model.accuracy["loo"]["count"] == 12


def test_fit_board_ties_conv_and_depthwise():
    host = _host()
    x = _features(12, seed=1)
    untied = {"conv": 0.25, "depthwise": 0.8, "other": 1.7}
    model = fit_board("stm32h7", "xcubeai", host, x, _board_ms(host, x, untied), 400, "m")
    assert model.weights["conv"] == model.weights["depthwise"]
    assert 0.25 < model.weights["conv"] < 0.8


def test_fit_board_with_one_weight_recovers_a_scale_and_a_fixed_cost():
    host = _host()
    x = _features(12, seed=1)
    ms = _board_ms(host, x, dict.fromkeys(GROUP_NAMES, 2.5), fixed=0.7)
    model = fit_board("stm32h7", "xcubeai", host, x, ms, 400, "one", ties=ONE_WEIGHT)
    assert model.weights == pytest.approx(dict.fromkeys(GROUP_NAMES, 2.5), rel=1e-6)
    assert model.fixed_ms == pytest.approx(0.7, rel=1e-6)
    assert max(abs(e) for e in model.error_range) < 1e-6


def test_one_weight_is_a_compromise_where_the_groups_differ():
    host = _host()
    x = _features(12, seed=1)
    untied = {"conv": 0.4, "depthwise": 0.4, "other": 1.7}
    model = fit_board("stm32h7", "xcubeai", host, x, _board_ms(host, x, untied, fixed=0.0),
                      400, "one", ties=ONE_WEIGHT)
    assert len(set(model.weights.values())) == 1
    assert 0.4 < model.weights["conv"] < 1.7
    assert model.error_range[0] < 0 < model.error_range[1]


def test_fit_board_on_few_rows_is_thin():
    host = _host()
    x = _features(5, seed=2)
    model = fit_board("esp32", "tflm-esp-nn", host, x, _board_ms(host, x), 240, "few")
    assert model.thin and model.rows == 5


def test_fit_scale_is_one_factor_on_the_host_total():
    host = _host()
    x = _features(1, seed=3)
    total = host.predict(x[0])
    model = fit_scale("esp32", "tflm-esp-nn", host, x, np.array([3.0 * total]), 240,
                      (-0.3, 0.4), "one run")
    assert model.weights == pytest.approx(dict.fromkeys(GROUP_NAMES, 3.0))
    assert model.fixed_ms == 0.0
    assert model.error_range == (-0.3, 0.4)
    assert model.thin and model.rows == 1 and model.clock_mhz == 240
    assert model.predict(host, x[0]).ms == pytest.approx(3.0 * total)


def test_single_run_error_range_by_hand():
    host = _host()
    x = _features(2, seed=4)
    t = [host.predict(r) for r in x]
    ms = np.array([2.0 * t[0], 2.5 * t[1]])
    # Scaled to row 1, row 0 is predicted 2.5 t0 (truth 2 t0): +25%; the other way -20%.
    assert single_run_error_range(host, x, ms) == (pytest.approx(-0.2), pytest.approx(0.25))


def test_single_run_error_range_brackets_zero():
    host = _host()
    x = _features(6, seed=5)
    ms = np.array([host.predict(r) for r in x]) * np.linspace(0.8, 1.3, 6)
    low, high = single_run_error_range(host, x, ms)
    assert low < 0 < high
    exact = single_run_error_range(host, x, 4.0 * np.array([host.predict(r) for r in x]))
    assert exact == (pytest.approx(0.0, abs=1e-12), pytest.approx(0.0, abs=1e-12))


def test_scaled_band_by_hand():
    host = _host()
    base = _model(host, error_range=(-0.1, 0.2))
    derived = scaled(base, 2.0, (1.5, 2.5), "derived", "tflm-cmsis-nn")
    # prediction / truth = (2 / r) (1 + e): lowest 2 / 2.5 x 0.9 = 0.72, highest 2 / 1.5 x 1.2.
    assert derived.error_range == (pytest.approx(-0.28), pytest.approx(0.6))
    assert derived.runtime == "tflm-cmsis-nn" and derived.target == "stm32h7"
    assert derived.weights == pytest.approx({g: 2 * w for g, w in TRUE_WEIGHTS.items()})
    assert derived.fixed_ms == pytest.approx(2 * TRUE_FIXED)
    assert derived.rows == 0 and derived.thin and derived.method == "derived"
    x = _features(1, seed=6)[0]
    assert derived.predict(host, x).ms == pytest.approx(2 * base.predict(host, x).ms)


# -- a user's refit ---------------------------------------------------------------------------


def test_refit_with_three_rows_scales_the_model():
    host = _host()
    old = _model(host)
    x = _features(3, seed=10)
    truth = 1.2 * np.array([old.predict(host, r).ms for r in x])
    measured = truth * np.array([1.0, 1.03, 0.98])
    result = refit(old, host, x, measured, 400)
    assert "scaled" in result.method
    new = result.model
    assert new.rows == 3 and new.thin and new.clock_mhz == 400
    for g in GROUP_NAMES:  # one factor on every weight and on the fixed cost
        assert new.weights[g] / old.weights[g] == pytest.approx(new.fixed_ms / old.fixed_ms)
    assert new.fixed_ms / old.fixed_ms == pytest.approx(1.2, rel=0.03)
    assert result.before.mape > 0.15 and result.after.mape < 0.03
    assert result.loo is not None and result.loo.count == 3
    assert new.error_range == (pytest.approx(result.loo.min_error),
                               pytest.approx(result.loo.max_error))
    assert new.error_range[0] < 0 < new.error_range[1]


def test_refit_with_two_rows_keeps_the_band():
    host = _host()
    old = _model(host, error_range=(-0.12, 0.18))
    x = _features(2, seed=11)
    measured = 0.5 * np.array([old.predict(host, r).ms for r in x])
    result = refit(old, host, x, measured, 400)
    assert result.loo is None
    assert result.model.error_range == (-0.12, 0.18)
    assert result.after.mape < 1e-9


def test_refit_with_enough_rows_refits_every_weight():
    host = _host()
    old = _model(host, weights={"conv": 1.0, "depthwise": 1.0, "other": 1.0}, fixed=0.0)
    x = _features(FULL_REFIT_ROWS + 4, seed=12)
    measured = _board_ms(host, x)
    result = refit(old, host, x, measured, 400)
    new = result.model
    assert "refitted" in result.method
    assert new.weights == pytest.approx(TRUE_WEIGHTS, rel=1e-6)
    assert new.fixed_ms == pytest.approx(TRUE_FIXED, rel=1e-6)
    assert not new.thin and new.rows == len(x)
    assert result.before.mape > 0.1
    assert result.after.mape < 1e-6 and result.after.within_10 == 1.0
    assert result.loo is not None and result.loo.mape < 1e-6


def test_refit_at_twice_the_clock_predicts_twice_the_time_at_the_reference():
    host = _host()
    old = _model(host, clock=400)  # exactly right at 400 MHz
    x = _features(3, seed=13)
    at_400 = np.array([old.predict(host, r).ms for r in x])
    measured_at_800 = at_400 / 2  # compute-bound: the same network at 800 MHz
    result = refit(old, host, x, measured_at_800, 800)
    assert result.before.mape < 1e-9  # the old model already scales to 800 MHz correctly
    new = result.model
    assert new.clock_mhz == 800
    for row, fast, slow in zip(x, measured_at_800, at_400, strict=True):
        assert new.predict(host, row, 800).ms == pytest.approx(fast)
        assert new.predict(host, row, 400).ms == pytest.approx(slow)
        assert new.predict(host, row).ms == pytest.approx(fast)


def test_refit_at_another_clock_with_enough_rows():
    host = _host()
    old = _model(host, clock=400)
    x = _features(FULL_REFIT_ROWS, seed=14)
    truth_at_400 = _board_ms(host, x, fixed=2.0)
    result = refit(old, host, x, truth_at_400 * 400 / 480, 480)
    new = result.model
    assert new.clock_mhz == 480
    predicted = np.array([new.predict(host, r, 400).ms for r in x])
    np.testing.assert_allclose(predicted, truth_at_400, rtol=1e-6)


def test_refit_of_a_host_model_ignores_the_clock():
    host = _host()
    old = host_identity(host, "host")
    x = _features(3, seed=15)
    measured = 1.1 * np.array([host.predict(r) for r in x])
    result = refit(old, host, x, measured, 1234)
    assert not result.model.clock_scaling
    for row, ms in zip(x, measured, strict=True):
        assert result.model.predict(host, row, 1234).ms == pytest.approx(ms)
        assert result.model.predict(host, row, 99).ms == pytest.approx(ms)


def test_host_identity_is_the_host_model_and_does_not_scale_with_clock():
    host = _host(runtime="litert")
    model = host_identity(host, "measured here")
    assert (model.target, model.runtime, model.basis) == ("host-litert", "litert", "litert")
    assert model.clock_mhz == 2400 and not model.clock_scaling
    assert model.error_range == host.error_range and model.rows == 30 and not model.thin
    x = _features(1, seed=16)[0]
    expected = host.predict(x)
    for clock in (None, 1, 2400, 4800):
        latency = model.predict(host, x, clock)
        assert latency.ms == pytest.approx(expected)
        assert latency.clock_mhz == 2400
