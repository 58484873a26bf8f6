"""``surrogate``: trained AP50 predicted by gradient-boosted trees (scikit-learn) fitted on the
``fit`` split of the shipped trained set (:mod:`objectives.proxies.trained_set`).

Inputs: the genome (resolution, input channels, per-stage width, depth and kernel, how many
stages use each block type, head type, extras, anchor scale range) and the derived training-free
features of :mod:`objectives.proxies.features` (geometry against the boxes, capacity). The set
was trained on the demo data, so its geometry features are measured on the demo data's boxes;
a scored model's are measured on the data it is scored for, which is how a surrogate learnt on
one dataset carries what it learnt about geometry to another. The held-out split is never
used here. The fit is deterministic (seeded) and done once per process.

Refit on the user's results: a search that has trained some of its genomes (``--train-top``;
they reach the proxy as ``ProxyData.trained`` when the search continues) refits the trees on
the shipped rows plus its own, the user's AP50 first moved onto the shipped scale
(:func:`on_shipped_scale`) and weighted so that the user's rows count as much as the shipped
set. Their geometry features are measured on the user's data.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from objectives.proxies.base import AccuracyProxy, ProxyData, ProxyError, Report, register_proxy
from objectives.proxies.features import features
from objectives.proxies.trained_set import TrainedArch, load_trained_set
from search_space.genome import BLOCK_TYPES, Genome
from search_space.spec import ModelSpec

MIN_FIT = 6  # fewer trained architectures than this cannot rank anything
# The search's own trained genomes refit the model from this many: one or two results carry no
# order to learn beyond what the shipped fit already predicts for them.
MIN_USER = 3


def genome_features(genome: Genome) -> dict[str, float]:
    row: dict[str, float] = {"input_channels": float(genome.input_channels),
                             "ssdlite": float(genome.head.kind == "ssdlite"),
                             "extras": float(len(genome.head.extras)),
                             "anchor_smin": genome.head.anchors[0].min_scale,
                             "anchor_smax": genome.head.anchors[-1].max_scale}
    for i, stage in enumerate(genome.stages, start=1):
        row[f"s{i}_width"] = stage.width
        row[f"s{i}_depth"] = float(stage.depth)
        row[f"s{i}_kernel"] = float(stage.kernel)
    for block in BLOCK_TYPES:
        row[f"blocks_{block}"] = float(sum(s.block == block for s in genome.stages))
    return row


def feature_row(spec: ModelSpec, data: ProxyData, images: int) -> dict[str, float]:
    if spec.genome is None:
        raise ProxyError(f"the surrogate scores genomes, not the baseline {spec.label}")
    return {**genome_features(spec.genome), **features(spec, data, images)}


@functools.cache
def _demo_data(seed: int) -> ProxyData:
    from objectives.data import open_dataset
    from objectives.data.demo import demo_dataset

    return ProxyData(open_dataset(demo_dataset("default"), "train"), seed=seed)


def fit_model(archs: Sequence[TrainedArch], data: ProxyData, images: int, trees: int,
              depth: int, rate: float, user: ProxyData | None = None
              ) -> tuple[Any, tuple[str, ...], int]:
    """Boosted trees on ``archs`` (their features on ``data``), refitted with ``user.trained``
    (features on the user's data) when there are at least ``MIN_USER`` genomes among them
    -> (model, feature names, user results used)."""
    from sklearn.ensemble import GradientBoostingRegressor

    if len(archs) < MIN_FIT:
        raise ProxyError(f"the surrogate needs at least {MIN_FIT} trained architectures in "
                         f"its fit split; the set has {len(archs)} (grow it with "
                         "scripts/bench_trained_set.py)")
    rows = [feature_row(a.spec, data, images) for a in archs]
    names = tuple(rows[0])
    x = np.array([[r[n] for n in names] for r in rows])
    y = np.array([a.ap50 for a in archs])

    def model() -> Any:
        return GradientBoostingRegressor(n_estimators=trees, max_depth=depth,
                                         learning_rate=rate, subsample=0.8, random_state=0)

    shipped = model().fit(x, y)
    mine = [(s, ap) for s, ap in (user.trained if user else ()) if s.genome is not None]
    if len(mine) < MIN_USER:
        return shipped, names, 0
    ux = np.array([[r[n] for n in names]
                   for r in (feature_row(s, user, images) for s, _ in mine)])  # type: ignore[arg-type]
    uy = on_shipped_scale(np.array([ap for _, ap in mine]), shipped.predict(ux))
    # The user's few results weigh as much, in all, as the whole shipped set.
    weights = np.concatenate([np.ones(len(y)), np.full(len(uy), len(y) / len(uy))])
    refit = model().fit(np.vstack([x, ux]), np.concatenate([y, uy]), sample_weight=weights)
    return refit, names, len(mine)


def on_shipped_scale(ap50: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The user's AP50 moved onto the shipped set's scale: another dataset and recipe change
    how high AP50 goes, not which architecture is better, so the user's values are matched in
    mean and spread to the shipped model's own predictions for the same genomes (order kept)."""
    spread = ap50.std()
    if spread == 0:
        return np.full_like(ap50, predicted.mean())
    return predicted.mean() + (ap50 - ap50.mean()) * (predicted.std() / spread)


# One fit per (settings, user's data and results) and process: a search scores many genomes.
# A continued search refits as its results grow; only the latest few fits are worth keeping.
_FITS: dict[tuple[Any, ...], tuple[Any, tuple[str, ...], int]] = {}
_MAX_FITS = 4


def _fitted(settings: tuple[int, int, int, float], seed: int, user: ProxyData | None
            ) -> tuple[Any, tuple[str, ...], int]:
    results = () if user is None else tuple(
        (json.dumps(s.to_dict(), sort_keys=True), ap) for s, ap in user.trained)
    key = (settings, seed, None if user is None else user.train.source, results)
    if key not in _FITS:
        if len(_FITS) >= _MAX_FITS:
            del _FITS[next(iter(_FITS))]  # the oldest: dicts keep insertion order
        images, trees, depth, rate = settings
        _FITS[key] = fit_model(load_trained_set("fit"), _demo_data(seed), images, trees,
                               depth, rate, user)
    return _FITS[key]


@register_proxy
@dataclass(frozen=True)
class SurrogateProxy(AccuracyProxy):
    """Predicted trained AP50 (0-1) from boosted trees fitted on the shipped set's fit split,
    refitted with the search's own trained results once it has ``MIN_USER`` of them."""

    name: ClassVar[str] = "surrogate"
    training_free: ClassVar[bool] = True
    images: int = 150
    trees: int = 300
    depth: int = 2
    rate: float = 0.05

    def ready(self) -> None:
        have = len(load_trained_set("fit"))
        if have < MIN_FIT:
            raise ProxyError(f"the surrogate needs at least {MIN_FIT} trained architectures "
                             f"in its fit split; the shipped set has {have}")

    def components(self, spec: ModelSpec, data: ProxyData, report: Report | None = None
                   ) -> dict[str, float]:
        # Cached per (settings, data): the user's results are part of the data's identity.
        user = data if len(data.trained) >= MIN_USER else None
        model, names, used = _fitted((self.images, self.trees, self.depth, self.rate),
                                     data.seed, user)
        row = feature_row(spec, data, self.images)
        value = float(model.predict(np.array([[row[n] for n in names]]))[0])
        return {**row, "fit_architectures": float(len(load_trained_set("fit"))),
                "user_results": float(used), "score": value}

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        return self.components(spec, data)["score"]
