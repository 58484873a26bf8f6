"""Accuracy proxies: cheap stand-ins for "train fully, then measure val AP50" in a search.

``get_proxy(name).score(spec, ProxyData(train, val, seed), report)`` -> float, higher is
better. Registered: ``naswot`` and ``zen`` (training-free, on real images at the model's input
size), ``prior-iou`` (how well the priors cover the training boxes), ``short-train`` (K steps
of the default recipe, then val AP50; reports intermediate values for pruning), ``composite``
(geometry x capacity, training-free), ``loss-area`` (the first epochs of the real training,
scored by the training-loss area of the last; successive halving), ``surrogate``
(boosted trees fitted on the shipped trained set), and the size references ``params`` and
``macs``. ``DEFAULT_PROXY`` was chosen by ``scripts/bench_proxies.py`` (Kendall tau against
fully trained AP50).
"""

from __future__ import annotations

from objectives.proxies import (  # noqa: F401 - they register
    anchors,
    composite,
    free,
    loss_area,
    reference,
    short_train,
    surrogate,
)
from objectives.proxies.base import (
    DEFAULT_PROXY,
    HALVING_FIRST_RUNG,
    AccuracyProxy,
    ProxyData,
    ProxyError,
    ProxyOutOfTime,
    ProxyPruned,
    Report,
    get_proxy,
    list_proxies,
    register_proxy,
)
from objectives.proxies.rank import kendall_tau

__all__ = ["DEFAULT_PROXY", "HALVING_FIRST_RUNG", "AccuracyProxy", "ProxyData", "ProxyError",
           "ProxyOutOfTime", "ProxyPruned", "Report", "get_proxy", "kendall_tau", "list_proxies",
           "register_proxy"]
