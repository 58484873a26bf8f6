"""Scoring one model spec with an accuracy proxy: one call of ``components()``, checked.

A search's trials and ``tinynas estimate --proxy`` both score through here, so a model scored
from the command line with a study's proxy, data and seed gets the score its trial got, and
both record the same parts (``proxy_components``). The one exception: a surrogate trial of a
continued study that had trained results refitted on them (``user_results`` > 0 among its
parts); ``estimate`` has no study and scores with the shipped fit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from objectives.data import DetectionDataset
from objectives.proxies import AccuracyProxy, ProxyData, Report, get_proxy
from search_space.spec import ModelSpec

SCORE = "score"  # the key of the score among the components (the AccuracyProxy contract)


@dataclass(frozen=True)
class ProxyScore:
    """A spec's proxy score, the parts it is made of (score included) and the seconds taken."""

    name: str
    score: float
    components: dict[str, Any]
    seconds: float


def checked_components(proxy: AccuracyProxy, spec: ModelSpec, data: ProxyData,
                       report: Report | None = None) -> dict[str, Any]:
    """``proxy.components(spec, data, report)``, called once (a training proxy trains once),
    as plain JSON numbers: a non-finite part becomes None. The score must be finite: a
    diverged proxy (NaN, inf) raises ValueError, because Optuna refuses NaN and -inf already
    means "rejected by the budget"."""
    parts = proxy.components(spec, data, report)
    if SCORE not in parts:
        raise ValueError(f"proxy {proxy.name} gave components without {SCORE!r}")
    value = float(parts[SCORE])
    if not math.isfinite(value):
        raise ValueError(f"proxy {proxy.name} returned {value}")
    return {**{str(k): _plain(v) for k, v in parts.items()}, SCORE: value}


def _plain(value: Any) -> int | float | None:
    """A component as storage and JSON take it: numpy numbers become Python ones."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    if isinstance(value, Integral):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


def score_spec(spec: ModelSpec, proxy_name: str, train: DetectionDataset,
               val: DetectionDataset | None = None, seed: int = 0) -> ProxyScore:
    """``spec`` scored by the proxy ``proxy_name`` (``NAME[:KEY=VALUE,...]``) on ``train``
    (and ``val``, which a training proxy evaluates on), as a search trial with that seed
    would score it. Raises ProxyError for an unknown proxy or data it cannot score."""
    proxy = get_proxy(proxy_name)
    started = time.monotonic()
    parts = checked_components(proxy, spec, ProxyData(train, val, seed))
    return ProxyScore(proxy_name, parts[SCORE], parts, round(time.monotonic() - started, 3))
