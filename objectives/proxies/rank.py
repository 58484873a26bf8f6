"""Kendall's tau-b: how well a proxy orders architectures the way their trained AP50 does."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import kendalltau


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of two equally long sequences, in [-1, 1]; NaN when either is constant
    (or shorter than two).

    tau-b = (concordant - discordant) / sqrt((pairs - ties in x) * (pairs - ties in y)), so
    ties (two architectures with the same parameter count, say) count for neither side. The
    values are compared through their dense ranks, so infinite scores (a proxy's "no
    separation at all") order like any other value. NaN cannot be ranked: ValueError.
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"kendall_tau needs two 1-D sequences of equal length, got shapes "
                         f"{a.shape} and {b.shape}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("kendall_tau: NaN values cannot be ranked")
    if len(a) < 2:
        return math.nan  # no pair to compare (scipy says so with a warning)
    # scipy would take the floats as they are; integer ranks keep +-inf out of its
    # arithmetic and leave the order (the only thing tau reads) as it is.
    ra, rb = (np.unique(v, return_inverse=True)[1].reshape(-1) for v in (a, b))
    return float(kendalltau(ra, rb, variant="b").statistic)
