"""The search space as a frozen, serialisable record: which values each Optuna parameter may take.

A genome is a function of its Optuna parameters alone (:mod:`search_space.sampling`); a
:class:`SearchSpace` only says which values the sampler may propose. A narrowed space therefore
never changes what a set of parameters means: ``sample_genome(FixedTrial(trial.params))``
rebuilds the same genome under any space holding those values, :data:`FULL_SPACE` included.

``FULL_SPACE`` is every choice tinynas knows. A search fits a narrower one to its budget
(``nas.search.space_fit``) and records it in the study, with what the narrowing excluded
(:class:`SpaceFit`), so a resumed run, a second worker and ``tinynas show`` use the same space.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from artefacts.tags import check_format
from search_space.genome import (
    BLOCK_TYPES,
    HEAD_TYPES,
    KERNELS,
    NUM_STAGES,
    RESOLUTION_RANGE,
    RESOLUTION_STEP,
)

SPACE_FORMAT = "tinynas-space/1"
WIDTH_STEP = 0.05
ANCHOR_SMIN = (0.05, 0.30, 0.01)
ANCHOR_SMAX = (0.60, 0.95, 0.05)
TAP_CHOICES = (("none", "end"), ("none", "end", "prev"), ("none", "end", "prev"))
MAX_EXTRAS = 4


class SpaceError(ValueError):
    """A space record that cannot be read back; the message names the field."""


@dataclass(frozen=True)
class SpaceFit:
    """How a space was fitted to a budget, and what that excluded (all from ``samples``
    estimator-only draws). A pure function of the fit's inputs (no timing), so two commands
    that fit the same budget at once record equal spaces."""

    fitted_for: str                    # e.g. "esp32 (tflm-esp-nn), flash 1.00 MiB, RAM 128.0 KiB"
    samples: int
    full_feasible_share: float         # of genomes drawn from FULL_SPACE
    fitted_feasible_share: float       # of genomes drawn from the fitted space
    feasible_kept_share: float         # of the feasible FULL_SPACE draws, inside the fitted space
    full_max_feasible_macs: int        # the largest feasible FULL_SPACE draw
    fitted_max_feasible_macs: int      # ... of those inside the fitted space
    excluded: tuple[str, ...] = ()     # one line per narrowing, with its sampled fit rate

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["excluded"] = list(self.excluded)
        return data


@dataclass(frozen=True)
class Peel:
    """One narrowing: ``space`` is the old space without ``value`` of the parameters
    ``names`` (several for the per-layer ``extra{j}_ch`` and ``map{k}_ratios``)."""

    what: str
    space: SearchSpace
    names: tuple[str, ...]
    value: Any

    def drops(self, params: dict[str, Any]) -> bool:
        """True when ``params`` use the dropped value (so lie outside the narrower space)."""
        return any(n in params and _member(params[n], (self.value,)) for n in self.names)


@dataclass(frozen=True)
class SearchSpace:
    """Ranges (lo, hi) on a fixed grid for the ordered parameters, choice sets for the rest.

    Parameter names: ``resolution`` (step :data:`RESOLUTION_STEP`), ``input_channels``,
    ``s{i}_width`` (step :data:`WIDTH_STEP`), ``s{i}_depth``, ``s{i}_block``, ``s{i}_kernel``,
    ``s{i}_tap`` (i = 1..3), ``n_extras`` (0..``max_extras``), ``extra{j}_ch``
    (``extra_channels``), ``head``, ``anchor_smin``, ``anchor_smax``, ``map{k}_ratios``.
    """

    resolution: tuple[int, int] = RESOLUTION_RANGE
    input_channels: tuple[int, ...] = (3, 1)
    widths: tuple[tuple[float, float], ...] = ((0.1, 1.5),) * NUM_STAGES
    depths: tuple[tuple[int, int], ...] = ((1, 4), (1, 5), (1, 4), (1, 4))
    blocks: tuple[tuple[str, ...], ...] = (BLOCK_TYPES,) * NUM_STAGES
    kernels: tuple[tuple[int, ...], ...] = (KERNELS,) * NUM_STAGES
    taps: tuple[tuple[str, ...], ...] = TAP_CHOICES
    max_extras: int = MAX_EXTRAS
    extra_channels: tuple[int, ...] = (16, 32, 64, 128, 192, 256)
    heads: tuple[str, ...] = HEAD_TYPES
    map_ratios: tuple[str, ...] = ("", "2", "2,3")
    fit: SpaceFit | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("input_channels", "extra_channels", "heads", "map_ratios"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("resolution",):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("widths", "depths", "blocks", "kernels", "taps"):
            object.__setattr__(self, name, tuple(tuple(v) for v in getattr(self, name)))

    # -- membership --------------------------------------------------------------------------
    def values(self, name: str) -> tuple[Any, ...]:
        """Every value parameter ``name`` may take in this space (anchor scales: their grid)."""
        if name == "resolution":
            lo, hi = self.resolution
            return tuple(range(lo, hi + 1, RESOLUTION_STEP))
        if name == "input_channels":
            return self.input_channels
        if name == "n_extras":
            return tuple(range(self.max_extras + 1))
        if name == "head":
            return self.heads
        if name.startswith("extra") and name.endswith("_ch"):
            return self.extra_channels
        if name.startswith("map") and name.endswith("_ratios"):
            return self.map_ratios
        if name in ("anchor_smin", "anchor_smax"):
            return _grid(*(ANCHOR_SMIN if name == "anchor_smin" else ANCHOR_SMAX))
        stage, key = int(name[1]) - 1, name.split("_", 1)[1]
        if key == "width":
            return _grid(*self.widths[stage], WIDTH_STEP)
        if key == "depth":
            lo, hi = self.depths[stage]
            return tuple(range(lo, hi + 1))
        return {"block": self.blocks, "kernel": self.kernels, "tap": self.taps}[key][stage]

    def contains(self, params: dict[str, Any]) -> bool:
        """True when every parameter of ``params`` is one this space may propose."""
        return all(_member(value, self.values(name)) for name, value in params.items())

    # -- narrowing ---------------------------------------------------------------------------
    def peels(self) -> Iterator[Peel]:
        """Every one-step narrowing. Ordered parameters lose their largest value (the costly
        end), choice sets any one choice (keeping one)."""
        lo, hi = self.resolution
        if hi > lo:
            yield Peel(f"resolution {hi}", replace(self, resolution=(lo, hi - RESOLUTION_STEP)),
                       ("resolution",), hi)
        for i in range(NUM_STAGES):
            lo_w, hi_w = self.widths[i]
            if hi_w > lo_w:
                yield Peel(f"s{i + 1}_width {hi_w:g}",
                           self._at("widths", i, (lo_w, round(hi_w - WIDTH_STEP, 4))),
                           (f"s{i + 1}_width",), hi_w)
            lo_d, hi_d = self.depths[i]
            if hi_d > lo_d:
                yield Peel(f"s{i + 1}_depth {hi_d}", self._at("depths", i, (lo_d, hi_d - 1)),
                           (f"s{i + 1}_depth",), hi_d)
            yield from self._drop_each("blocks", i, f"s{i + 1}_block")
            yield from self._drop_each("kernels", i, f"s{i + 1}_kernel")
        for i in range(len(self.taps)):
            yield from self._drop_each("taps", i, f"s{i + 1}_tap")
        if self.max_extras > 0:
            yield Peel(f"n_extras {self.max_extras}",
                       replace(self, max_extras=self.max_extras - 1), ("n_extras",),
                       self.max_extras)
        sets = (("input_channels", "input_channels", ("input_channels",)),
                ("extra_ch", "extra_channels", tuple(f"extra{j}_ch" for j in range(MAX_EXTRAS))),
                ("head", "heads", ("head",)),
                ("map_ratios", "map_ratios",
                 tuple(f"map{k}_ratios" for k in range(NUM_STAGES + MAX_EXTRAS))))
        for label, key, names in sets:
            choices = getattr(self, key)
            for value in choices if len(choices) > 1 else ():
                yield Peel(f"{label} {_show(value)}",
                           replace(self, **{key: tuple(c for c in choices if c != value)}),
                           names, value)

    def _at(self, key: str, index: int, value: Any) -> SearchSpace:
        items = list(getattr(self, key))
        items[index] = value
        return replace(self, **{key: tuple(items)})

    def _drop_each(self, key: str, index: int, name: str) -> Iterator[Peel]:
        choices = getattr(self, key)[index]
        for value in choices if len(choices) > 1 else ():
            yield Peel(f"{name} {_show(value)}",
                       self._at(key, index, tuple(c for c in choices if c != value)),
                       (name,), value)

    # -- drawing -----------------------------------------------------------------------------
    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """Uniform values for every parameter a genome of this space can ask for (the sampler
        reads only those it needs); fast, for estimator-only sampling."""
        names = ["resolution", "input_channels", "n_extras", "head", "anchor_smin",
                 "anchor_smax"]
        names += [f"s{i}_{k}" for i in range(1, NUM_STAGES + 1)
                  for k in ("width", "depth", "block", "kernel")]
        names += [f"s{i}_tap" for i in range(1, NUM_STAGES)]
        names += [f"extra{j}_ch" for j in range(self.max_extras)]
        names += [f"map{k}_ratios" for k in range(NUM_STAGES + self.max_extras)]
        return {name: _pick(rng, self.values(name)) for name in names}

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {"format": SPACE_FORMAT, **_plain(asdict(self))}
        data["fit"] = self.fit.to_dict() if self.fit is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        check_format(data, SPACE_FORMAT, lambda found: SpaceError(
            f"search space format {found!r} is not {SPACE_FORMAT!r}"))
        values = {k: v for k, v in data.items() if k not in ("format", "fit")}
        try:
            fit = data.get("fit")
            return cls(**values, fit=SpaceFit(**{**fit, "excluded": tuple(fit["excluded"])})
                       if fit else None)
        except TypeError as exc:
            raise SpaceError(f"malformed search space record: {exc}") from None

    def describe(self) -> list[tuple[str, str]]:
        """(parameter, values) rows for a table."""
        rows = [("resolution", f"{self.resolution[0]}..{self.resolution[1]} step "
                 f"{RESOLUTION_STEP}"),
                ("input_channels", ", ".join(map(str, self.input_channels)))]
        for i in range(NUM_STAGES):
            (wl, wh), (dl, dh) = self.widths[i], self.depths[i]
            rows.append((f"stage {i + 1}", f"width {wl:g}..{wh:g}, depth {dl}..{dh}, "
                         f"{'/'.join(self.blocks[i])}, k {'/'.join(map(str, self.kernels[i]))}"
                         + (f", tap {'/'.join(self.taps[i])}" if i < len(self.taps) else "")))
        rows += [("extras", f"0..{self.max_extras} of "
                  f"{'/'.join(map(str, self.extra_channels))} ch"),
                 ("head", "/".join(self.heads)),
                 ("map ratios", "/".join(repr(r) for r in self.map_ratios))]
        return rows


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"{value:g}" if isinstance(
        value, float) else str(value)


def _grid(lo: float, hi: float, step: float) -> tuple[float, ...]:
    count = round((hi - lo) / step)
    return tuple(round(lo + k * step, 4) for k in range(count + 1))


def _member(value: Any, allowed: tuple[Any, ...]) -> bool:
    if isinstance(value, float):
        return any(isinstance(a, int | float) and abs(a - value) < 1e-6 for a in allowed)
    return value in allowed


def _pick(rng: np.random.Generator, values: tuple[Any, ...]) -> Any:
    value = values[int(rng.integers(len(values)))]
    return value.item() if isinstance(value, np.generic) else value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


FULL_SPACE = SearchSpace()
