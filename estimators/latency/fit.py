"""Fitting latency coefficients: non-negative least squares on relative error, and the
leave-one-out and held-out errors that say how far to trust the result.

Only fitting lives here (scripts and ``tinynas calibrate`` call it); prediction needs nothing
but the coefficients it produces.

Every coefficient is a cost (time per MAC, per element, per op), so it must not be negative:
a free least-squares fit happily trades a negative cost on one feature against another on a
correlated one, and then extrapolates badly to the genomes it never saw. Rows are weighted by
1 / measured time, which makes the fit minimise *relative* error: a 0.4 ms model matters as
much as a 200 ms one, and "within +-10%" is a relative goal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from estimators.latency.predictor import GROUP_NAMES, HostModel, LatencyModel, mixed_band

_MAX_ITER_FACTOR = 30


class FitError(ValueError):
    """Too few or unusable rows to fit on; the message says what is missing."""


def nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve min ||a x - b|| subject to x >= 0 (scipy's Lawson-Hanson active-set solver)."""
    from scipy.optimize import nnls as scipy_nnls

    return scipy_nnls(a, b, maxiter=_MAX_ITER_FACTOR * a.shape[1])[0]


def fit_relative(x: np.ndarray, y: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Non-negative coefficients c minimising sum(((x @ c) - y) / y) ** 2.

    Columns are scaled to unit size before solving (MAC counts are ~1e8, op counts ~10), so
    the solver's tolerance means the same for every feature.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 2 or len(x) != len(y):
        raise FitError(f"features {x.shape} and times {y.shape} do not line up")
    if len(y) == 0 or (y <= 0).any():
        raise FitError("need at least one row, and every measured time must be positive")
    weighted = x / y[:, None]
    norms = np.abs(weighted).max(axis=0) if scale is None else scale
    norms = np.where(norms > 0, norms, 1.0)
    return nnls(weighted / norms, np.ones(len(y))) / norms


def relative_errors(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    return (np.asarray(predicted) - np.asarray(measured)) / np.asarray(measured)


def loo_errors(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row predicted by a fit on all the others: the honest error of a small data set."""
    if len(y) < 2:
        raise FitError("leave-one-out needs at least two rows")
    errors = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        errors[i] = relative_errors(x[i] @ fit_relative(x[keep], y[keep]), y[i])
    return errors


@dataclass(frozen=True)
class ErrorSummary:
    """How predictions compare with measurements (relative errors, (pred - true) / true)."""

    count: int
    within_10: float
    mape: float
    min_error: float
    max_error: float

    @classmethod
    def of(cls, errors: np.ndarray) -> ErrorSummary:
        errors = np.asarray(errors, dtype=float)
        return cls(count=len(errors), within_10=float(np.mean(np.abs(errors) <= 0.10)),
                   mape=float(np.mean(np.abs(errors))), min_error=float(errors.min()),
                   max_error=float(errors.max()))

    def to_dict(self) -> dict[str, float | int]:
        return {"count": self.count, "within_10": self.within_10, "mape": self.mape,
                "min_error": self.min_error, "max_error": self.max_error}


# -- host and board models --------------------------------------------------------------------


def fit_host(runtime: str, x: np.ndarray, y: np.ndarray, environment: dict[str, Any]
             ) -> HostModel:
    """A host runtime's per-feature costs; its band is the leave-one-out error range."""
    loo = loo_errors(x, y)
    return HostModel(runtime=runtime, coefficients=tuple(float(c) for c in fit_relative(x, y)),
                     error_range=(float(loo.min()), float(loo.max())),
                     accuracy={"fit_rows": len(y), "loo": ErrorSummary.of(loo).to_dict()},
                     environment=environment)


def scale_host(host: HostModel, x: np.ndarray, y: np.ndarray, environment: dict[str, Any]
               ) -> tuple[HostModel, np.ndarray]:
    """``host`` measured again on another machine, few runs: one factor on all its costs
    (the kernels' relative costs are kept, only the machine's speed is refitted), and the
    factor's leave-one-out errors. The band is the union of the host's own range (the model's
    error over the whole search space, which a handful of runs cannot measure) and that
    leave-one-out range (the factor's own error on this machine)."""
    y = np.asarray(y, dtype=float)
    pred = (np.atleast_2d(x) @ np.asarray(host.coefficients))[:, None]
    s = float(fit_relative(pred, y)[0])
    loo = loo_errors(pred, y)
    error_range = (min(host.error_range[0], float(loo.min())),
                   max(host.error_range[1], float(loo.max())))
    scaled_host = HostModel(
        runtime=host.runtime, coefficients=tuple(c * s for c in host.coefficients),
        error_range=error_range, environment=environment,
        accuracy={"fit_rows": len(y), "scale": s, "scaled_from": host.environment,
                  "loo": ErrorSummary.of(loo).to_dict()})
    return scaled_host, loo


def group_matrix(host: HostModel, x: np.ndarray) -> np.ndarray:
    """Per row: the host's conv / depthwise / other milliseconds and a 1 for the fixed cost."""
    rows = [[*host.groups(row).values(), 1.0] for row in np.atleast_2d(x)]
    return np.asarray(rows)


def _as_model(target: str, runtime: str, host: HostModel, c: np.ndarray, clock_mhz: int,
              error_range: tuple[float, float], rows: int, thin: bool, method: str,
              accuracy: dict[str, Any]) -> LatencyModel:
    return LatencyModel(target=target, runtime=runtime, basis=host.runtime,
                        weights=dict(zip(GROUP_NAMES, (float(v) for v in c[:3]), strict=True)),
                        fixed_ms=float(c[3]), clock_mhz=clock_mhz, error_range=error_range,
                        rows=rows, thin=thin, method=method, accuracy=accuracy)


# Which host groups share one board weight. Conv and depthwise always do: every published
# network has both in similar proportion, so the runs cannot tell their speed-ups apart, and a
# free fit sets one of them to zero, which a depthwise-heavy genome would then get for free.
Ties = tuple[tuple[str, ...], ...]
COMPUTE_AND_REST: Ties = (("conv", "depthwise"), ("other",))
# One weight for everything: where "other" is a small, barely varying share of the runs' host
# time (the published classifiers: 0-7%, depending on the host fit), its weight is not
# identified. A refit of the host model moved it from 7.6 to 0 and the STM32H7 prediction of
# sampled genomes by up to -23%, with the leave-one-out error unchanged; tied, the same refit
# moves them by -5% .. +8%.
ONE_WEIGHT: Ties = (("conv", "depthwise", "other"),)


def _tied(g: np.ndarray, ties: Ties) -> np.ndarray:
    """The group matrix with the columns of each tie summed, the fixed-cost column last."""
    index = {name: i for i, name in enumerate(GROUP_NAMES)}
    columns = [g[:, [index[n] for n in tie]].sum(axis=1) for tie in ties]
    return np.column_stack([*columns, g[:, 3]])


def _untie(c: np.ndarray, ties: Ties) -> np.ndarray:
    """Fitted tie weights + fixed cost -> one weight per group + fixed cost."""
    weight = {name: c[i] for i, tie in enumerate(ties) for name in tie}
    return np.array([*(weight[g] for g in GROUP_NAMES), c[-1]])


# Below this many runs, four group weights would chase the noise: a model fitted on fewer is
# thin, and a user's refit scales the previous prediction instead.
FULL_REFIT_ROWS = 8


def _fit_tied(host: HostModel, x: np.ndarray, ms: np.ndarray, ties: Ties
              ) -> tuple[np.ndarray, np.ndarray]:
    """Group weights (shared as ``ties`` says) + fixed cost, and their leave-one-out errors."""
    g = _tied(group_matrix(host, x), ties)
    return _untie(fit_relative(g, ms), ties), loo_errors(g, ms)


def fit_board(target: str, runtime: str, host: HostModel, x: np.ndarray, ms: np.ndarray,
              clock_mhz: int, method: str, ties: Ties = COMPUTE_AND_REST) -> LatencyModel:
    """Board ms at ``clock_mhz`` = a weight per tie of host groups x their host ms + a fixed
    cost, fitted on board runs; the band is the leave-one-out error range."""
    c, loo = _fit_tied(host, x, ms, ties)
    return _as_model(target, runtime, host, c, clock_mhz, (float(loo.min()), float(loo.max())),
                     len(ms), len(ms) < FULL_REFIT_ROWS, method,
                     {"loo": ErrorSummary.of(loo).to_dict()})


def _host_totals(host: HostModel, x: np.ndarray) -> np.ndarray:
    return np.atleast_2d(x) @ np.asarray(host.coefficients)


def fit_scale(target: str, runtime: str, host: HostModel, x: np.ndarray, ms: np.ndarray,
              clock_mhz: int, error_range: tuple[float, float], method: str) -> LatencyModel:
    """One factor on the host's whole prediction: all a single board run can support. The
    band cannot come from its own data and is given (see ``single_run_error_range``)."""
    s = float(fit_relative(_host_totals(host, x)[:, None], ms)[0])
    return _as_model(target, runtime, host, np.array([s, s, s, 0.0]), clock_mhz, error_range,
                     len(ms), True, method, {})


def single_run_error_range(host: HostModel, x: np.ndarray, ms: np.ndarray
                           ) -> tuple[float, float]:
    """What a one-run scale fit does on a board with many runs: for every run, scale the
    host prediction to match it and predict every other run; the range of those errors."""
    totals = _host_totals(host, x)
    errors = [relative_errors(totals[i] * ms[j] / totals[j], ms[i])
              for j in range(len(ms)) for i in range(len(ms)) if i != j]
    return float(np.min(errors)), float(np.max(errors))


def scaled(model: LatencyModel, ratio: float, ratio_range: tuple[float, float], method: str,
           runtime: str) -> LatencyModel:
    """Another runtime on the same board as ``ratio`` x this one. The truth's ratio lies in
    ``ratio_range``, which widens the band: prediction / truth = (ratio / r) x (1 + e)."""
    lo, hi = ratio_range
    e_min, e_max = model.error_range
    band = (ratio / hi * (1 + e_min) - 1, ratio / lo * (1 + e_max) - 1)
    return replace(model, runtime=runtime, fixed_ms=model.fixed_ms * ratio,
                   weights={g: w * ratio for g, w in model.weights.items()},
                   error_range=band, rows=0, thin=True, method=method, accuracy={})


# -- a user's own board runs ------------------------------------------------------------------

@dataclass(frozen=True)
class Refit:
    model: LatencyModel
    before: ErrorSummary
    after: ErrorSummary
    loo: ErrorSummary | None
    method: str


def refit(model: LatencyModel, host: HostModel, x: np.ndarray, ms: np.ndarray,
          clock_mhz: int, kinds: np.ndarray | None = None) -> Refit:
    """``model`` refitted to runs a user measured at ``clock_mhz`` (the new model's clock):
    all four weights with enough runs, else one scale on the current prediction. The band
    becomes the refit's leave-one-out range (kept from ``model`` with fewer than three runs).

    A kernel-aware model (``kind_weights``; ``kinds`` gives each run's kind matrix) keeps its
    kernel profile from the published kernel table and is scaled by one factor whatever the
    number of runs: a user's handful of models cannot refit a dozen kind weights."""
    x, ms = np.atleast_2d(x), np.asarray(ms, dtype=float)
    rows = [None] * len(x) if kinds is None else list(kinds)

    def predict(m: LatencyModel) -> np.ndarray:
        return np.array([m.predict(host, row, clock_mhz, k).ms
                         for row, k in zip(x, rows, strict=True)])

    before = predict(model)
    kind_weights = None
    if len(ms) >= FULL_REFIT_ROWS and model.kind_weights is None:
        how = f"refitted on {len(ms)} user runs: compute / other weights + fixed"
        c, loo = _fit_tied(host, x, ms, COMPUTE_AND_REST)
    else:
        how = f"scaled to {len(ms)} user run(s): one factor on the previous prediction"
        ratio = model.clock_mhz / clock_mhz if model.clock_scaling else 1.0
        s = float(fit_relative(before[:, None], ms)[0]) * ratio
        c = np.array([*(model.weights[k] * s for k in GROUP_NAMES), model.fixed_ms * s])
        if model.kind_weights is not None:
            kind_weights = {k: w * s for k, w in model.kind_weights.items()}
        loo = loo_errors(before[:, None], ms) if len(ms) >= 3 else None
    error_range = (float(loo.min()), float(loo.max())) if loo is not None else model.error_range
    new = replace(_as_model(model.target, model.runtime, host, c, clock_mhz, error_range,
                            len(ms), len(ms) < FULL_REFIT_ROWS, how, {}),
                  clock_scaling=model.clock_scaling, kind_weights=kind_weights,
                  # a scale keeps each kind's relative error: an unfitted kind keeps its range
                  kind_ranges=model.kind_ranges if kind_weights is not None else None)
    after = predict(new)
    return Refit(new, ErrorSummary.of(relative_errors(before, ms)),
                 ErrorSummary.of(relative_errors(after, ms)),
                 ErrorSummary.of(loo) if loo is not None else None, how)


def host_identity(host: HostModel, method: str) -> LatencyModel:
    """The ``host-<runtime>`` target's model: the host model itself, banded by its own
    leave-one-out range; no clock scaling (another clock is another machine)."""
    return LatencyModel(target=f"host-{host.runtime}", runtime=host.runtime, basis=host.runtime,
                        weights=dict.fromkeys(GROUP_NAMES, 1.0), fixed_ms=0.0,
                        clock_mhz=int(host.environment.get("clock_mhz") or 1),
                        error_range=host.error_range, rows=int(host.accuracy["fit_rows"]),
                        thin=False, method=method, accuracy=host.accuracy, clock_scaling=False)


# -- kernel-aware boards: a weight per kernel kind ---------------------------------------------

# How far one kind's weight may stray from the shared one before the fit pays for it: a
# log-normal prior of this spread (20x; the ESP32-S3 weights span 15x, the ESP32's 7x) lets
# every kind with a row of its own follow it, while a kind with no row (or its row left out)
# falls back on the shared weight, i.e. on what the other rows say. On the graphs before
# issue 15, 10x gave the kernel rows up to +33% in the fit and 100x moved the S3 whole-model
# run's leave-one-out error from +7% to +10%.
KIND_PRIOR = math.log(20.0)
# The kernel table's "External" rows ran with their data in PSRAM (behind a 64 KB data cache),
# the whole-model runs from internal RAM: one factor on the external rows, fitted, with a
# prior of 2x around 1 so that it cannot absorb a kind's own weight.
PSRAM_PRIOR = math.log(2.0)
# A whole-model run stands for dozens of kernels: its residual counts this many kernel rows.
WHOLE_WEIGHT = 3.0


@dataclass(frozen=True)
class KindRow:
    """One timing a kernel-aware board is fitted on: a kernel of a kernel table or a whole
    network; ``kinds`` its kind matrix (``estimators.latency.kinds.kind_matrix``)."""

    name: str
    kinds: np.ndarray
    ms: float
    external: bool = False
    whole: bool = False


@dataclass(frozen=True)
class KindFit:
    weights: dict[str, float]
    psram: float
    fitted: np.ndarray  # relative error of each row under the fit on all rows
    loo: np.ndarray  # relative error of each row under the fit without it
    band: tuple[float, float]  # for the share of a prediction in kinds with a kernel row
    kind_ranges: dict[str, tuple[float, float]]  # kinds with no kernel row: their group's range
    group_ranges: dict[str, tuple[float, float]]  # kernel rows' leave-one-out range per group
    inside: np.ndarray  # each row's truth lies in the band around its leave-one-out prediction
    inside_strict: np.ndarray  # the same with a band built without that row's own residual


def _kind_params(costs: np.ndarray, ms: np.ndarray, external: np.ndarray, whole: np.ndarray,
                 keep: np.ndarray) -> np.ndarray:
    """[log shared weight, log kind deviations..., log PSRAM factor] by scipy's trust-region
    least squares on log(predicted / measured), with the priors above as extra residuals."""
    from scipy.optimize import least_squares

    k = costs.shape[1]
    row_weight = np.where(whole, WHOLE_WEIGHT, 1.0)

    def residuals(p: np.ndarray) -> np.ndarray:
        pred = _kind_predict(p, costs, external)
        r = row_weight * np.log(np.maximum(pred, 1e-12) / ms)
        return np.concatenate([r[keep], p[1:k + 1] / KIND_PRIOR, [p[k + 1] / PSRAM_PRIOR]])

    start = np.zeros(k + 2)
    start[0] = np.log(np.median(ms[keep] / np.maximum(costs[keep].sum(axis=1), 1e-12)))
    return least_squares(residuals, start).x


def _kind_parts(p: np.ndarray, costs: np.ndarray, external: np.ndarray) -> np.ndarray:
    """Per row, per kind: the predicted ms (rows x kinds)."""
    k = costs.shape[1]
    return costs * np.exp(p[0] + p[1:k + 1]) * np.exp(p[k + 1] * external)[:, None]


def _kind_predict(p: np.ndarray, costs: np.ndarray, external: np.ndarray) -> np.ndarray:
    return _kind_parts(p, costs, external).sum(axis=1)


def _span(values: list[float]) -> tuple[float, float] | None:
    return (float(min(values)), float(max(values))) if values else None


def _group_ranges(loo: np.ndarray, row_kind: list[str | None], skip: int | None
                  ) -> dict[str, tuple[float, float]]:
    """Per kind group, the leave-one-out range of its kernel rows (row ``skip`` not counted);
    a group without rows takes the range of all kernel rows."""
    from estimators.latency.kinds import KIND_GROUP

    rows = [i for i, k in enumerate(row_kind) if k is not None and i != skip]
    every = _span([float(loo[i]) for i in rows]) or (0.0, 0.0)
    found = {}
    for group in set(KIND_GROUP.values()):
        errors = [float(loo[i]) for i in rows if KIND_GROUP[row_kind[i]] == group]
        found[group] = _span(errors) or every
    return found


def fit_kinds(host: HostModel, rows: list[KindRow],
              extra_range: tuple[float, float] = (0.0, 0.0)) -> KindFit:
    """Kind weights fitted jointly on kernel rows and whole-model runs, and the errors that
    judge them, every row predicted by a fit that never saw it (leave-one-out).

    Two bands, both from leave-one-out residuals. The share of a prediction in kinds with a
    kernel row carries ``band``: the whole-model runs' leave-one-out errors, how far every
    whole-model prediction moves when any one kernel row is left out, the host model's own
    range (a network's kernels are priced by it) and ``extra_range`` (what the caller knows
    besides, e.g. how far runs of one architecture carry to others). The share in a kind
    with no kernel row, whose weight falls back on the shared one, carries the leave-one-out
    range of the kernel rows of its group (``kinds.KIND_GROUP``): a kernel row left out is
    exactly such a kind. ``inside`` says whether each row's truth lies in the band around its
    leave-one-out prediction; ``inside_strict`` the same with ranges built without that row's
    own residual (does the band reach a row it has not seen?)."""
    from estimators.latency.kinds import KIND_GROUP, KINDS, kind_costs

    if not any(r.whole for r in rows) or len(rows) < 3:
        raise FitError("a kernel-aware board needs kernel rows and at least one whole-model run")
    costs = kind_costs(host.coefficients, np.stack([r.kinds for r in rows]))
    ms = np.array([r.ms for r in rows], dtype=float)
    external = np.array([r.external for r in rows], dtype=float)
    whole = np.array([r.whole for r in rows])
    row_kind = [None if r.whole else _single_kind(r) for r in rows]
    p = _kind_params(costs, ms, external, whole, np.ones(len(rows), dtype=bool))
    fitted = relative_errors(_kind_predict(p, costs, external), ms)
    left_out = [_kind_parts(_kind_params(costs, ms, external, whole, np.arange(len(rows)) != i),
                            costs, external) for i in range(len(rows))]
    loo = np.array([relative_errors(parts[i].sum(), ms[i]) for i, parts in enumerate(left_out)])
    shifts = [list(relative_errors(left_out[i][whole].sum(axis=1), ms[whole]))
              for i in range(len(rows)) if not whole[i]]
    steady = [*(s for found in shifts for s in found), *host.error_range, *extra_range]
    base = _span([*loo[whole], *steady])
    groups = _group_ranges(loo, row_kind, None)
    with_rows = {k for k in row_kind if k is not None}
    kind_ranges = {k: groups[KIND_GROUP[k]] for k in KINDS if k not in with_rows}

    def holds(i: int, strict: bool) -> bool:
        own = i if strict else None
        g = _group_ranges(loo, row_kind, own)
        b = _span([*(e for j, e in enumerate(loo) if whole[j] and j != own), *steady])
        seen = {k for j, k in enumerate(row_kind) if k is not None and j != i}
        pieces = [(float(v), g[KIND_GROUP[k]] if k not in seen else b)
                  for k, v in zip(KINDS, left_out[i][i], strict=True) if v > 0]
        low, high = mixed_band(pieces)
        return low * (1 - 1e-9) <= ms[i] <= high * (1 + 1e-9)

    weights = dict(zip(KINDS, (float(w) for w in np.exp(p[0] + p[1:len(KINDS) + 1])),
                       strict=True))
    return KindFit(weights, float(np.exp(p[-1])), fitted, loo, base, kind_ranges, groups,
                   np.array([holds(i, False) for i in range(len(rows))]),
                   np.array([holds(i, True) for i in range(len(rows))]))


def _single_kind(row: KindRow) -> str:
    from estimators.latency.kinds import kinds_in

    found = kinds_in(row.kinds)
    if len(found) != 1:
        raise FitError(f"kernel row {row.name!r} has kernels of {len(found)} kinds; a kernel "
                       "table row times one kernel")
    return found.pop()
