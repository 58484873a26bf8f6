"""``surrogate``: trained AP50 predicted by gradient-boosted trees (scikit-learn) fitted on the
``fit`` split of the shipped trained set (:mod:`objectives.proxies.trained_set`).

Inputs: the genome (resolution, input channels, per-stage width, depth and kernel, how many
stages use each block type, head type, extras, anchor scale range) and the derived training-free
features of :mod:`objectives.proxies.features` (geometry against the boxes, capacity). The set
was trained on the demo data, so its geometry features are measured on the demo data's boxes;
a scored model's are measured on the data it is scored for, which is how a surrogate learnt on
one dataset carries what it learnt about geometry to another. The held-out split is never
used here. The fit is deterministic (seeded) and done once per process.
"""

from __future__ import annotations

import functools
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
              depth: int, rate: float) -> tuple[Any, tuple[str, ...]]:
    """Boosted trees on ``archs`` (their features on ``data``) -> (model, feature names)."""
    from sklearn.ensemble import GradientBoostingRegressor

    if len(archs) < MIN_FIT:
        raise ProxyError(f"the surrogate needs at least {MIN_FIT} trained architectures in "
                         f"its fit split; the set has {len(archs)} (grow it with "
                         "scripts/bench_trained_set.py)")
    rows = [feature_row(a.spec, data, images) for a in archs]
    names = tuple(rows[0])
    x = np.array([[r[n] for n in names] for r in rows])
    y = np.array([a.ap50 for a in archs])
    model = GradientBoostingRegressor(n_estimators=trees, max_depth=depth, learning_rate=rate,
                                      subsample=0.8, random_state=0)
    return model.fit(x, y), names


@functools.cache
def _shipped_model(images: int, seed: int, trees: int, depth: int, rate: float
                   ) -> tuple[Any, tuple[str, ...]]:
    return fit_model(load_trained_set("fit"), _demo_data(seed), images, trees, depth, rate)


@register_proxy
@dataclass(frozen=True)
class SurrogateProxy(AccuracyProxy):
    """Predicted trained AP50 (0-1) from boosted trees fitted on the shipped set's fit split."""

    name: ClassVar[str] = "surrogate"
    training_free: ClassVar[bool] = True
    images: int = 150
    trees: int = 300
    depth: int = 2
    rate: float = 0.05

    def components(self, spec: ModelSpec, data: ProxyData, report: Report | None = None
                   ) -> dict[str, float]:
        model, names = _shipped_model(self.images, data.seed, self.trees, self.depth,
                                      self.rate)
        row = feature_row(spec, data, self.images)
        value = float(model.predict(np.array([[row[n] for n in names]]))[0])
        return {**row, "fit_architectures": float(len(load_trained_set("fit"))), "score": value}

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        return self.components(spec, data)["score"]
