"""Kernel kinds: a network's host cost split the way an optimised board library splits it.

ESP-NN (and any vendor library) speeds kernels up very unevenly: its own table gives 1.1
cycles per MAC for a 64->64 1x1 convolution, 2.7 for a 16->16 one, 5.8 for a 3->64 3x3 stem.
A board model that gives each kind of kernel its own weight on the host TFLM cost of those
kernels (:class:`estimators.latency.predictor.LatencyModel` with ``kind_weights``) follows the
kernel mix; one factor on the whole host cost does not.

The kinds (:data:`KINDS`), from the deployed op, its kernel size and input channels:

* ``pointwise.narrow`` / ``pointwise.wide``: 1x1 convolutions with fewer than / at least
  :data:`WIDE_INPUT` input channels (a vector library's inner loop runs over input
  channels, so few of them leave its lanes idle);
* ``conv.stem`` / ``conv.dense``: spatial convolutions with at most :data:`STEM_INPUT` input
  channels (an RGB or grey stem, padded to the vector width) / more;
* ``depthwise.3x3`` / ``depthwise.large``: 3x3 (or smaller) / 5x5 and larger windows, one
  output channel per input channel; ``depthwise.mult``: a channel multiplier above 1 (more
  output than input channels), which esp-nn runs on separate code paths (its S3 kernels
  ``..._mult4`` / ``..._mult8``, the generic C code's multiplier loop): the table's 5x5 row has
  a multiplier of 8 and says nothing about the multiplier-1 5x5 kernels a search builds;
* ``add``, ``maxpool``, ``avgpool`` (with MEAN), ``fc``, ``activation`` (a standalone
  RELU / RELU6), and ``other``: data movement (pad, concat, reshape, ...) and the runtime's
  fixed cost per inference.
"""

from __future__ import annotations

import numpy as np

from estimators.deploy import (
    ADD,
    AVERAGE_POOL_2D,
    CONV_2D,
    DEPTHWISE_CONV_2D,
    FULLY_CONNECTED,
    MAX_POOL_2D,
    MEAN,
    RELU,
    RELU6,
    DeployedGraph,
)
from estimators.latency.features import (
    CONV,
    DEPTHWISE,
    FEATURES,
    INDEX,
    OTHER,
    Kernel,
    activation_inputs,
    kernel_terms,
    terms,
)

KINDS: tuple[str, ...] = (
    "pointwise.narrow", "pointwise.wide", "conv.stem", "conv.dense", "depthwise.3x3",
    "depthwise.large", "depthwise.mult", "add", "maxpool", "avgpool", "fc", "activation",
    "other",
)
KIND_INDEX = {name: i for i, name in enumerate(KINDS)}
# The host feature group (``features.GROUPS``) each kind's kernels are priced in. A kind with no
# kernel row of its own falls back on the shared weight; how far that can miss is measured on
# the kernel rows of the same group left out (``fit.fit_kinds``): a dense spatial convolution
# is judged by the other convolutions, data movement by add, pooling and activations.
KIND_GROUP: dict[str, str] = {
    "pointwise.narrow": CONV, "pointwise.wide": CONV, "conv.stem": CONV, "conv.dense": CONV,
    "fc": CONV, "depthwise.3x3": DEPTHWISE, "depthwise.large": DEPTHWISE,
    "depthwise.mult": DEPTHWISE, "add": OTHER,
    "maxpool": OTHER, "avgpool": OTHER, "activation": OTHER, "other": OTHER,
}
WIDE_INPUT = 32
STEM_INPUT = 4
_POOLS = {MAX_POOL_2D: "maxpool", AVERAGE_POOL_2D: "avgpool", MEAN: "avgpool"}


def kind_of(op: str, kernel: int, in_channels: int, out_channels: int | None = None) -> str:
    """The kind of one kernel; ``out_channels`` (default: as many as in) tells a depthwise
    convolution with a channel multiplier."""
    if op == CONV_2D:
        if kernel == 1:
            return "pointwise.narrow" if in_channels < WIDE_INPUT else "pointwise.wide"
        return "conv.stem" if in_channels <= STEM_INPUT else "conv.dense"
    if op == DEPTHWISE_CONV_2D:
        if out_channels is not None and out_channels > in_channels:
            return "depthwise.mult"
        return "depthwise.3x3" if kernel <= 3 else "depthwise.large"
    if op == ADD:
        return "add"
    if op in _POOLS:
        return _POOLS[op]
    if op == FULLY_CONNECTED:
        return "fc"
    if op in (RELU, RELU6):
        return "activation"
    return "other"


def kinds_in(matrix: np.ndarray) -> set[str]:
    """The kinds a kind matrix has kernels of (any feature non-zero)."""
    return {KINDS[i] for i in np.flatnonzero(np.abs(matrix).sum(axis=1) > 0)}


def _matrix(found: list[tuple[str, dict[str, float]]], invoke: bool) -> np.ndarray:
    m = np.zeros((len(KINDS), len(FEATURES)))
    for kind, values in found:
        row = m[KIND_INDEX[kind]]
        for name, value in values.items():
            if name in INDEX:
                row[INDEX[name]] += value
    if invoke:
        m[KIND_INDEX["other"], INDEX["invoke"]] = 1.0
    return m


def kind_matrix(network: DeployedGraph | list[Kernel], invoke: bool = True) -> np.ndarray:
    """(kinds x features): each kind's kernels' features summed; the ``invoke`` feature goes
    to ``other`` (``invoke=False`` for one kernel timed on its own, as in a kernel table).
    Its column sums are the network's feature vector."""
    if isinstance(network, DeployedGraph):
        shape = [t.shape for t in network.tensors]
        found = [(kind_of(op.kind, op.kernel, shape[first][-1], shape[op.output][-1]),
                  terms(op.kind, op.kernel, op.macs, count, shape[first], shape[op.output]))
                 for op, first, count in activation_inputs(network)]
    else:
        found = [(kind_of(k.kind, k.kernel, k.in_shape[-1], k.out_shape[-1]), kernel_terms(k))
                 for k in network]
    return _matrix(found, invoke)


def prices(coefficients: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """(kinds x features) host costs per feature unit, per kind. The host model's own
    coefficients, except that pooling is priced like data movement (per element touched)
    where the host fit left it at zero: no fitted genome pools enough to price it, and a
    board library's pooling is not free."""
    c = np.asarray(coefficients, dtype=float)
    p = np.tile(c, (len(KINDS), 1))
    if c[INDEX["pool.elems"]] <= 0:
        for kind in ("maxpool", "avgpool"):
            p[KIND_INDEX[kind], INDEX["pool.elems"]] = c[INDEX["move.elems"]]
    return p


def kind_costs(coefficients: tuple[float, ...] | np.ndarray, matrix: np.ndarray
               ) -> np.ndarray:
    """Host milliseconds per kind of a network whose :func:`kind_matrix` is ``matrix``
    (or of several: a stack of matrices gives one row of kind costs each)."""
    return (np.asarray(matrix) * prices(coefficients)).sum(axis=-1)
