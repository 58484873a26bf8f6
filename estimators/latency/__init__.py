"""Latency prediction for any lowered network on any target (see ``predictor`` for the model).

``predict_latency(deployed_graph, target)`` is what the estimators, the CLI and the search
call: it picks the target's runtime, its user profile if one is named (``stm32h7@lab``),
and returns a :class:`Latency` with its band. Fitting lives in ``estimators.latency.fit``.
"""

from __future__ import annotations

from dataclasses import replace

from estimators.deploy import DeployedGraph
from estimators.latency import environment
from estimators.latency.features import Kernel, feature_vector, graph_features, kernels
from estimators.latency.kinds import kind_matrix
from estimators.latency.predictor import (
    HostModel,
    Latency,
    LatencyModel,
    LatencyModelError,
    shipped_board_models,
    shipped_host_models,
)
from estimators.latency.profiles import load_profile
from estimators.targets import Target

__all__ = ["OTHER_MACHINE_FACTOR", "HostModel", "Kernel", "Latency", "LatencyModel",
           "LatencyModelError", "environment_check", "feature_vector", "kernels", "models_for",
           "predict_latency"]

# A host model on a machine it was not measured on: the band is widened by this factor each
# way. Two other machines measured: a 2-core Intel Xeon (issue 20) ran TFLM 1.84-2.13x faster
# than the AMD EPYC the shipped models describe, and a 2-core AMD EPYC reporting 2596 MHz
# (BENCHMARKS.md) ran LiteRT 2.33-2.75x and TFLM 1.35-1.53x faster. 3 covers both with a
# little room; the note says the band is indicative until `tinynas calibrate --measure host`.
OTHER_MACHINE_FACTOR = 3.0


def models_for(target: Target) -> tuple[HostModel, LatencyModel]:
    """The host model and board model that predict for ``target`` and its runtime."""
    runtime = target.runtime.name
    if target.profile:
        profile = load_profile(target.name, target.profile)
        model = profile.models.get(runtime)
        if model is None:
            raise LatencyModelError(
                f"latency profile {target.name}@{target.profile} has no calibration for "
                f"runtime {runtime!r}; it has: {', '.join(sorted(profile.models)) or 'none'}")
        host = profile.hosts.get(model.basis) or shipped_host_models()[model.basis]
        return host, model
    model = shipped_board_models().get((target.name, runtime))
    if model is None:
        raise LatencyModelError(f"no latency model for target {target.name!r} with runtime "
                                f"{runtime!r}")
    return shipped_host_models()[model.basis], model


def predict_latency(network: DeployedGraph | list[Kernel], target: Target) -> Latency:
    """Predicted milliseconds on ``target`` (its runtime and clock) with the band."""
    x = (graph_features(network) if isinstance(network, DeployedGraph)
         else feature_vector(list(network)))
    host, model = models_for(target)
    kinds = kind_matrix(network) if model.kind_weights is not None else None
    latency = model.predict(host, x, target.clock_mhz, kinds)
    if not is_host(target):
        return latency
    found = environment.check(host.environment, model.runtime)
    if found.match:
        return replace(latency, environment=found.to_dict())
    return replace(latency, low_ms=latency.low_ms / OTHER_MACHINE_FACTOR,
                   high_ms=latency.high_ms * OTHER_MACHINE_FACTOR,
                   environment=found.to_dict(), environment_match=False)


def environment_check(target: Target) -> environment.Check | None:
    """For a host target, its model's machine against this one; None for a board."""
    if not is_host(target):
        return None
    host, model = models_for(target)
    return environment.check(host.environment, model.runtime)


def is_host(target: Target) -> bool:
    """A host target predicts this computer, not a board: its model is one machine's."""
    return target.name.startswith("host-")
