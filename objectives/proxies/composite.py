"""``composite``: the detection geometry that ``prior-iou`` sees, times the capacity it does not.

Geometry (how learnable the data's boxes are for this head) is the mean of three shares in
[0, 1]: boxes some prior matches at IoU >= 0.5 (the others are forced onto a poor prior), the
same among small boxes (where resolution and the finest map decide), and the mean best IoU.
The receptive-field cover (how much of each box its map's units see) multiplies it.

Capacity (how much network computes each map) is the mean of backbone MACs, backbone params
and head channels per map, each on a log scale between a floor and a ceiling (0 at the floor,
1 at the ceiling and above). The score is ``geometry x rf_cover x (1 - w + w x capacity)``:
with ``w`` = 0 it is pure geometry, so two backbones under the same head are told apart only
by ``w``. The free weights are ``w`` and the scale ends (``composite:capacity_weight=0.3``);
their defaults are round figures bracketing the budget-fitted spaces' draws (the trained-set
plan of 2026-12-02: 1.7-23 M MACs, 47-586 k params in all), not fitted to trained AP50.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from objectives.proxies.base import AccuracyProxy, ProxyData, Report, register_proxy
from objectives.proxies.features import features, geometry_share
from search_space.spec import ModelSpec


def log_scale(value: float, floor: float, ceiling: float) -> float:
    """0 at ``floor`` (and below), 1 at ``ceiling`` (and above), linear in log between."""
    if value <= floor:
        return 0.0
    return min(1.0, math.log(value / floor) / math.log(ceiling / floor))


@register_proxy
@dataclass(frozen=True)
class CompositeProxy(AccuracyProxy):
    """Geometry x receptive-field cover x (1 - w + w x capacity); see the module doc."""

    name: ClassVar[str] = "composite"
    training_free: ClassVar[bool] = True
    images: int = 150
    capacity_weight: float = 0.5
    macs_floor: float = 5e5
    macs_ceiling: float = 5e7
    params_floor: float = 2e4
    params_ceiling: float = 1e6
    channels_floor: float = 16.0
    channels_ceiling: float = 256.0

    def components(self, spec: ModelSpec, data: ProxyData, report: Report | None = None
                   ) -> dict[str, float]:
        """Every number the score is made of, and the score (key ``score``)."""
        f = features(spec, data, self.images)
        geometry = geometry_share(f)
        capacity = (log_scale(math.exp(f["log_backbone_macs"]), self.macs_floor,
                              self.macs_ceiling)
                    + log_scale(math.exp(f["log_backbone_params"]), self.params_floor,
                                self.params_ceiling)
                    + log_scale(math.exp(f["log_head_channels"]), self.channels_floor,
                                self.channels_ceiling)) / 3
        w = self.capacity_weight
        score = geometry * f["rf_cover"] * (1 - w + w * capacity)
        return {"coverage": f["coverage"], "small_recall": f["small_recall"],
                "mean_iou": f["mean_iou"], "rf_cover": f["rf_cover"], "geometry": geometry,
                "backbone_macs": round(math.exp(f["log_backbone_macs"])),
                "backbone_params": round(math.exp(f["log_backbone_params"])),
                "head_channels": math.exp(f["log_head_channels"]), "capacity": capacity,
                "score": score}

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        return self.components(spec, data)["score"]
