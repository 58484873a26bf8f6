"""Size references: what every accuracy proxy has to beat. A bigger network (more parameters,
or more multiply-accumulates, which also grow with the input size) is often a better one."""

from __future__ import annotations

import math
from typing import ClassVar

from estimators.counting import macs, params
from objectives.proxies.base import AccuracyProxy, ProxyData, Report, register_proxy
from search_space.spec import ModelSpec


@register_proxy
class ParamsProxy(AccuracyProxy):
    name: ClassVar[str] = "params"
    training_free: ClassVar[bool] = True

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        return math.log(params(spec.lower().graph))


@register_proxy
class MacsProxy(AccuracyProxy):
    name: ClassVar[str] = "macs"
    training_free: ClassVar[bool] = True

    def score(self, spec: ModelSpec, data: ProxyData, report: Report | None = None) -> float:
        return math.log(macs(spec.lower().graph))
