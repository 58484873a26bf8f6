"""Fitting the X-CUBE-AI memory model on published runs, with leave-one-out errors.

Pure: it takes :class:`estimators.xcubeai.Features` and the published bytes of each run, so
the caller (``scripts/bench_xcubeai.py``) decides where the runs and their graphs come from.

* the graphs: ST's model-zoo files take a uint8 image and give float32 scores (their
  READMEs), so X-CUBE-AI runs a conversion layer (uint8 -> int8) whose output is a second
  input-sized buffer beside the input it reads; :func:`with_uint8_input` adds that layer to
  our rebuilt graph so the fit sees the file ST measured (our own exports are int8 in and
  out and need none; a user's uint8 file carries its QUANTIZE op, which the model reads);
* activations: a grid over the two overlap fractions (0, 0.1, ..., 1), and for each point
  ``scale`` and ``offset`` by least squares on relative error; the grid point with the
  smallest in-sample relative RMS wins;
* code flash and runtime RAM: non-negative least squares on relative error;
* weights: nothing to fit (exact count).

Leave-one-out refits everything (grid included) without the row it then predicts; the range of
those errors is the figure's band.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import nnls

from estimators.deploy import ACTIVATION, DeployedGraph, DeployedOp, DTensor
from estimators.xcubeai import FIGURES, Features, XCubeAIModel, activation_peak

QUANTIZE = "QUANTIZE"
_GRID = tuple(i / 10 for i in range(11))
# Fewer rows than this and a leave-one-out error means little.
MIN_ROWS = 4


class XCubeAIFitError(ValueError):
    """Too few or unusable rows to fit."""


def with_uint8_input(graph: DeployedGraph) -> DeployedGraph:
    """``graph`` behind a QUANTIZE from a uint8 input of the same shape (the interface of
    ST's model-zoo files, whose published figures are fitted on)."""
    (old,) = graph.inputs
    raw = DTensor(len(graph.tensors), "input_uint8", graph.tensors[old].shape, ACTIVATION, 1)
    convert = DeployedOp(QUANTIZE, "input_conversion", (raw.id,), old)
    return replace(graph, tensors=(*graph.tensors, raw), ops=(convert, *graph.ops),
                   inputs=(raw.id,))


@dataclass(frozen=True)
class Run:
    """One published run: its graph's features and the published figures in bytes (a figure
    ST did not publish is absent)."""

    name: str
    features: Features
    published: dict[str, float]


@dataclass(frozen=True)
class Prediction:
    name: str
    figure: str
    published: float
    fitted: float
    leave_one_out: float

    @property
    def error(self) -> float:
        return self.leave_one_out / self.published - 1.0


def _relative_lstsq(design: np.ndarray, y: np.ndarray, nonneg: bool) -> np.ndarray:
    a, b = design / y[:, None], np.ones_like(y)
    if nonneg:
        return nnls(a, b)[0]
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _activation_fit(runs: Sequence[Run]) -> tuple[float, float, float, float]:
    y = np.array([r.published["activation_ram"] for r in runs])
    best: tuple[float, float, float, float, float] | None = None
    for fdw, fpw in itertools.product(_GRID, _GRID):
        peak = np.array([activation_peak(list(r.features.plan), fdw, fpw) for r in runs], float)
        design = np.stack([peak, np.ones_like(peak)], 1)
        scale, offset = _relative_lstsq(design, y, nonneg=False)
        rms = float(np.sqrt(np.mean(((design @ [scale, offset]) / y - 1) ** 2)))
        if best is None or rms < best[0] - 1e-12:
            best = (rms, fdw, fpw, float(scale), float(offset))
    assert best is not None
    return best[1:]


def _linear_fit(runs: Sequence[Run], figure: str, columns: Sequence[str]) -> np.ndarray:
    y = np.array([r.published[figure] for r in runs])
    design = np.array([[1.0, *(float(getattr(r.features, c)) for c in columns)] for r in runs])
    return _relative_lstsq(design, y, nonneg=True)


def _fit_point(version: str, runs: Sequence[Run]) -> XCubeAIModel:
    fdw, fpw, scale, offset = _activation_fit(runs)
    code = _linear_fit(runs, "code_flash", ("layers", "channels"))
    ram = _linear_fit(runs, "runtime_ram", ("layers", "merges"))
    zero = {f: (0.0, 0.0) for f in FIGURES}
    return XCubeAIModel(version, fdw, fpw, scale, offset, *map(float, code), *map(float, ram),
                        errors=zero, rows=len(runs))


def fit(version: str, runs: Sequence[Run], source: str = ""
        ) -> tuple[XCubeAIModel, list[Prediction]]:
    """The model of ``version`` fitted on all ``runs``, its band the leave-one-out error range,
    and every run's published, fitted and leave-one-out prediction per figure."""
    usable = [r for r in runs if all(f in r.published for f in FIGURES)]
    if len(usable) < MIN_ROWS:
        raise XCubeAIFitError(f"{version}: {len(usable)} runs with all four figures; "
                              f"need at least {MIN_ROWS}")
    full = _fit_point(version, usable)
    predictions = []
    for k, run in enumerate(usable):
        held = _fit_point(version, [r for j, r in enumerate(usable) if j != k])
        fitted, loo = full.point(run.features), held.point(run.features)
        predictions += [Prediction(run.name, f, run.published[f], fitted[f], loo[f])
                        for f in FIGURES]
    errors = {}
    for f in FIGURES:
        errs = [p.error for p in predictions if p.figure == f]
        errors[f] = (min(min(errs), 0.0), max(max(errs), 0.0))
    model = XCubeAIModel(**{**full.__dict__, "errors": errors, "source": source})
    return model, predictions
