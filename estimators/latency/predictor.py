"""Predicting latency from kernel features: host runtimes, then boards.

Two layers, both plain coefficients read from JSON files shipped in ``estimators/data``:

* :class:`HostModel`, one per host runtime (``litert``: LiteRT, 1 thread, XNNPACK;
  ``tflm``: TFLite Micro reference kernels), fitted on real runs of real int8 exports on the
  machine named in its ``environment`` (``scripts/fit_latency.py``). Its prediction is a sum
  over the model's kernels, split by feature group (conv / depthwise / other).
* :class:`LatencyModel`, one per (target, runtime): board milliseconds at the model's
  reference clock as a weighted sum of one host runtime's group costs plus a fixed cost,
  fitted on published board runs (or derived from published ratios where there are none:
  ``method`` says how). A prediction at another clock scales by reference / clock, which
  assumes compute-bound kernels (flash wait states make a higher clock gain a little less).

Every prediction carries a band: the range of relative errors the model showed on runs it was
not fitted on (leave-one-out on boards, held-out genomes on the host), turned around into the
range the true time lies in: if prediction = truth x (1 + e) with e in [e_min, e_max], truth
is in [prediction / (1 + e_max), prediction / (1 + e_min)].
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from estimators.latency.features import FEATURES, GROUPS
from estimators.latency.kinds import KINDS, kind_costs

DATA = Path(__file__).resolve().parent.parent / "data"
HOST_FILE = "latency_host.json"
BOARDS_FILE = "latency_boards.json"
HOST_SCHEMA = "tinynas-latency-host/1"
BOARDS_SCHEMA = "tinynas-latency-boards/1"
GROUP_NAMES = ("conv", "depthwise", "other")


class LatencyModelError(ValueError):
    """A coefficient file or profile that cannot be used; one line naming what is wrong."""


@dataclass(frozen=True)
class HostModel:
    """Host milliseconds = features @ coefficients (one coefficient per feature, >= 0)."""

    runtime: str
    coefficients: tuple[float, ...]
    error_range: tuple[float, float]
    accuracy: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.coefficients) != len(FEATURES):
            raise LatencyModelError(f"host model {self.runtime!r} has {len(self.coefficients)} "
                                    f"coefficients; the features need {len(FEATURES)}")

    def predict(self, x: np.ndarray) -> float:
        return float(x @ np.asarray(self.coefficients))

    def groups(self, x: np.ndarray) -> dict[str, float]:
        """The prediction split into conv / depthwise / other milliseconds."""
        terms = x * np.asarray(self.coefficients)
        sums = dict.fromkeys(GROUP_NAMES, 0.0)
        for name, value in zip(FEATURES, terms, strict=True):
            sums[GROUPS[name]] += float(value)
        return sums

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime,
                "coefficients": dict(zip(FEATURES, self.coefficients, strict=True)),
                "error_range": list(self.error_range), "accuracy": self.accuracy,
                "environment": self.environment}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostModel:
        coefficients = data["coefficients"]
        missing = [f for f in FEATURES if f not in coefficients]
        if missing:
            raise LatencyModelError(f"host model {data.get('runtime')!r} lacks coefficients "
                                    f"for {', '.join(missing)}")
        return cls(runtime=data["runtime"],
                   coefficients=tuple(float(coefficients[f]) for f in FEATURES),
                   error_range=_error_range(data["error_range"]),
                   accuracy=data.get("accuracy", {}), environment=data.get("environment", {}))


@dataclass(frozen=True)
class Latency:
    """A prediction: ``ms`` with the band [``low_ms``, ``high_ms``] the truth should lie in."""

    ms: float
    low_ms: float
    high_ms: float
    target: str
    runtime: str
    clock_mhz: int
    rows: int
    thin: bool
    method: str
    # Host targets only: the machine the costs were measured on, this one, what differs
    # (``environment.Check.to_dict``); None on a board, whose clock is all that varies.
    environment: dict[str, Any] | None = None
    environment_match: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"latency_ms": self.ms, "latency_ms_low": self.low_ms,
                "latency_ms_high": self.high_ms, "latency_clock_mhz": self.clock_mhz,
                "latency_calibration_rows": self.rows, "latency_thin_data": self.thin,
                "latency_environment": self.environment,
                "latency_environment_match": self.environment_match}


@dataclass(frozen=True)
class LatencyModel:
    """Milliseconds on one (target, runtime) at ``clock_mhz`` from a host model's groups.

    ``rows`` counts the board runs it was fitted on (0: derived, see ``method``); ``thin``
    marks a model whose error range rests on too few runs to be more than indicative.
    """

    target: str
    runtime: str
    basis: str  # the host runtime whose group costs it reads: "litert" or "tflm"
    weights: dict[str, float]
    fixed_ms: float
    clock_mhz: int
    error_range: tuple[float, float]
    rows: int
    thin: bool
    method: str
    accuracy: dict[str, Any] = field(default_factory=dict)
    # A host model is the machine it was measured on: another "clock" means another machine.
    clock_scaling: bool = True
    # A kernel-aware board (``estimators.latency.kinds``): one weight per kernel kind on the
    # host cost of that kind's kernels, used instead of ``weights``. None: group weights.
    kind_weights: dict[str, float] | None = None
    # Kernel-aware only: the error range of each kind that had no kernel row in the fit (its
    # weight is the shared one), for its share of a prediction; every other kind's share
    # carries ``error_range``. None: ``error_range`` for the whole prediction.
    kind_ranges: dict[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        if set(self.weights) != set(GROUP_NAMES):
            raise LatencyModelError(f"latency model {self.target}/{self.runtime}: weights "
                                    f"must name {', '.join(GROUP_NAMES)}")
        if self.clock_mhz <= 0 or any(w < 0 for w in self.weights.values()):
            raise LatencyModelError(f"latency model {self.target}/{self.runtime}: clock and "
                                    "weights must be positive")

    def reference_ms(self, groups: dict[str, float]) -> float:
        return self.fixed_ms + sum(self.weights[g] * groups[g] for g in GROUP_NAMES)

    def kind_parts(self, host: HostModel, kinds: np.ndarray) -> np.ndarray:
        """Reference-clock ms per kind (``KINDS`` order) of a network whose
        ``kinds.kind_matrix`` is ``kinds``, without the fixed cost."""
        weights = self.kind_weights or {}
        return kind_costs(host.coefficients, kinds) * np.array([weights.get(k, 0.0)
                                                                for k in KINDS])

    def kinds_ms(self, host: HostModel, kinds: np.ndarray) -> float:
        """Reference-clock ms of a network whose ``kinds.kind_matrix`` is ``kinds``."""
        return self.fixed_ms + float(self.kind_parts(host, kinds).sum())

    def kind_band(self, parts: np.ndarray, scale: float = 1.0) -> tuple[float, float]:
        """The band of a kernel-aware prediction whose per-kind ms are ``parts`` (plus the
        fixed cost), all times ``scale``: each kind's share carries its own range."""
        ranges = self.kind_ranges or {}
        pieces = [(self.fixed_ms * scale, self.error_range)]
        pieces += [(ms * scale, ranges.get(k, self.error_range))
                   for k, ms in zip(KINDS, parts, strict=True) if ms > 0]
        return mixed_band(pieces)

    def predict(self, host: HostModel, x: np.ndarray, clock_mhz: int | None = None,
                kinds: np.ndarray | None = None) -> Latency:
        """``x``: the network's features; ``kinds``: its kind matrix, which a kernel-aware
        model needs (``estimators.latency.kinds.kind_matrix``)."""
        clock = (clock_mhz or self.clock_mhz) if self.clock_scaling else self.clock_mhz
        if self.kind_weights is not None:
            if kinds is None:
                raise LatencyModelError(f"latency model {self.target}/{self.runtime} is "
                                        "kernel-aware: give the network's kind matrix")
            parts = self.kind_parts(host, kinds)
            ms = (self.fixed_ms + float(parts.sum())) * self.clock_mhz / clock
            low, high = self.kind_band(parts, self.clock_mhz / clock)
        else:
            ms = self.reference_ms(host.groups(x)) * self.clock_mhz / clock
            low, high = band(ms, self.error_range)
        return Latency(ms=ms, low_ms=low, high_ms=high, target=self.target,
                       runtime=self.runtime, clock_mhz=clock, rows=self.rows, thin=self.thin,
                       method=self.method)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "runtime": self.runtime, "basis": self.basis,
                "weights": dict(self.weights), "fixed_ms": self.fixed_ms,
                "clock_mhz": self.clock_mhz, "error_range": list(self.error_range),
                "rows": self.rows, "thin": self.thin, "method": self.method,
                "accuracy": self.accuracy, "clock_scaling": self.clock_scaling,
                "kind_weights": self.kind_weights,
                "kind_ranges": None if self.kind_ranges is None else
                {k: list(r) for k, r in self.kind_ranges.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyModel:
        try:
            return cls(target=data["target"], runtime=data["runtime"], basis=data["basis"],
                       weights={g: float(data["weights"][g]) for g in GROUP_NAMES},
                       fixed_ms=float(data["fixed_ms"]), clock_mhz=int(data["clock_mhz"]),
                       error_range=_error_range(data["error_range"]), rows=int(data["rows"]),
                       thin=bool(data["thin"]), method=str(data["method"]),
                       accuracy=data.get("accuracy", {}),
                       clock_scaling=bool(data.get("clock_scaling", True)),
                       kind_weights=_kind_weights(data.get("kind_weights")),
                       kind_ranges=_kind_ranges(data.get("kind_ranges")))
        except (KeyError, TypeError, ValueError) as exc:
            raise LatencyModelError(f"latency model record is incomplete or malformed: "
                                    f"{exc}") from None


def _kind_weights(values: Any) -> dict[str, float] | None:
    if values is None:
        return None
    unknown = sorted(set(values) - set(KINDS))
    if unknown or any(float(v) < 0 for v in values.values()):
        raise ValueError(f"kind weights must be >= 0 and name kernel kinds ({', '.join(KINDS)})"
                         f"; found {', '.join(unknown) or 'a negative weight'}")
    return {k: float(v) for k, v in values.items()}


def _kind_ranges(values: Any) -> dict[str, tuple[float, float]] | None:
    if values is None:
        return None
    unknown = sorted(set(values) - set(KINDS))
    if unknown:
        raise ValueError(f"kind ranges must name kernel kinds; found {', '.join(unknown)}")
    return {k: _error_range(v) for k, v in values.items()}


def band(ms: float, error_range: tuple[float, float]) -> tuple[float, float]:
    """The interval the truth lies in when prediction = truth x (1 + e), e in error_range."""
    e_min, e_max = error_range
    return ms / (1.0 + e_max), ms / (1.0 + e_min)


def mixed_band(pieces: list[tuple[float, tuple[float, float]]]) -> tuple[float, float]:
    """The interval the true total lies in when each piece (ms, error range) of a prediction
    is off by anything in its own range: the sum of the pieces' bands. No cancellation between
    pieces is assumed, since a few kernel rows cannot say how kinds' errors go together."""
    found = [band(ms, r) for ms, r in pieces]
    return sum(lo for lo, _ in found), sum(hi for _, hi in found)


def _error_range(values: Any) -> tuple[float, float]:
    low, high = (float(v) for v in values)
    if not -1.0 < low <= high:
        raise LatencyModelError(f"error range {values!r}: need -1 < low <= high")
    return low, high


def _read(path: Path, schema: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LatencyModelError(f"cannot read latency coefficients {path}: {exc}") from None
    if data.get("schema") != schema:
        raise LatencyModelError(f"{path}: schema {data.get('schema')!r}, expected {schema!r}")
    return data


@functools.cache
def shipped_host_models() -> dict[str, HostModel]:
    data = _read(DATA / HOST_FILE, HOST_SCHEMA)
    return {name: HostModel.from_dict(m) for name, m in data["runtimes"].items()}


@functools.cache
def shipped_board_models() -> dict[tuple[str, str], LatencyModel]:
    data = _read(DATA / BOARDS_FILE, BOARDS_SCHEMA)
    models = (LatencyModel.from_dict(m) for m in data["models"])
    return {(m.target, m.runtime): m for m in models}
