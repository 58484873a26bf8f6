"""Kendall's tau-b: how well a proxy orders architectures the way their trained AP50 does."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of two equally long sequences, in [-1, 1]; NaN when either is constant.

    tau-b = (concordant - discordant) / sqrt((pairs - ties in x) * (pairs - ties in y)), so
    ties (two architectures with the same parameter count, say) count for neither side. The
    values are compared through their dense ranks, so infinite scores (a proxy's "no
    separation at all") order like any other value.
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"kendall_tau needs two 1-D sequences of equal length, got shapes "
                         f"{a.shape} and {b.shape}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("kendall_tau: NaN values cannot be ranked")
    ra, rb = (np.unique(v, return_inverse=True)[1].astype(np.int64) for v in (a, b))
    upper = np.triu_indices(len(a), k=1)
    sa = np.sign(ra[:, None] - ra[None, :])[upper]
    sb = np.sign(rb[:, None] - rb[None, :])[upper]
    denominator = math.sqrt(float(np.count_nonzero(sa)) * float(np.count_nonzero(sb)))
    return float((sa * sb).sum() / denominator) if denominator else math.nan
