"""The row of one model's estimate (architecture facts + the estimate): what ``estimate``
prints and ``baselines`` lists for each baseline."""

from __future__ import annotations

from typing import Any

from estimators.estimate import Budgets, estimate
from estimators.targets import Target
from search_space.model import Architecture


def model_row(arch: Architecture, target: Target, budgets: Budgets) -> dict[str, Any]:
    est = estimate(arch.graph, target, budgets, backbone_scope=arch.backbone_scope)
    return {
        "name": arch.name,
        "task": arch.task,
        "input_size": arch.input_size,
        "input_shape": list(arch.input_shape[1:]),
        "num_classes": arch.num_classes,
        "num_priors": arch.num_priors,
        **est.to_dict(),
    }
