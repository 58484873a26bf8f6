"""Offsets for the buffers of a static memory plan (TFLite Micro's arena head).

A buffer has a size (already aligned) and a lifetime ``(first, last)`` in operator steps,
inclusive: two buffers whose lifetimes share a step must not share bytes. The head is the
largest ``offset + size``; no plan can go below the **floor**, the largest sum of the sizes alive
at one step. Finding the smallest head is NP-hard in general (dynamic storage allocation), so
:func:`plan` keeps the best of several placements and stops at the first that reaches the floor:

* ``two-colour`` (exact): when no step has more than two buffers alive (a chain, such as a
  MobileNet classifier), the buffers that overlap form a forest; two-colouring it and putting
  one colour at offset 0 and the other flush against the floor reaches the floor, since any two
  overlapping buffers fit in it side by side.
* ``breadth``: the steps with the most bytes alive first, each step's buffers largest first,
  best-fitting gap (greedy by breadth, Pisarchyk & Lee 2020).
* ``size-best``: largest first, best-fitting gap; ``lifetime``: longest-lived first, first gap;
  ``chronological``: in order of first use, first gap.
* ``tflm-greedy``: TFLite Micro's own ``GreedyMemoryPlanner`` (largest first, first gap, in the
  order the buffers are given), so the plan is never worse than the runtime's default.

Every heuristic except the last works on the buffers sorted by (first, last, size), so the plan
depends only on the buffers, not on how their tensors happen to be numbered: the estimator
(planning the deployed graph) and the export (planning the ``.tflite`` file) get the same head.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Span = tuple[int, int]


@dataclass(frozen=True)
class MemoryPlan:
    offsets: tuple[int, ...]  # one per buffer, in the order given
    head_bytes: int
    floor_bytes: int
    method: str  # which placement won


def floor_bytes(sizes: Sequence[int], spans: Sequence[Span]) -> int:
    """Largest sum of the sizes of the buffers alive at one step."""
    return max(_alive_sums(sizes, spans), default=0)


def _alive_sums(sizes: Sequence[int], spans: Sequence[Span]) -> list[int]:
    """Sum of the sizes alive at each step (pure Python: a few hundred buffers at most)."""
    if not sizes:
        return []
    delta = [0] * (max(last for _, last in spans) + 2)
    for size, (first, last) in zip(sizes, spans, strict=True):
        delta[first] += size
        delta[last + 1] -= size
    sums, running = [], 0
    for step in delta[:-1]:
        running += step
        sums.append(running)
    return sums


def head_bytes(sizes: Sequence[int], offsets: Sequence[int]) -> int:
    return max((o + s for o, s in zip(offsets, sizes, strict=True)), default=0)


def conflicts(sizes: Sequence[int], spans: Sequence[Span], offsets: Sequence[int]
              ) -> list[tuple[int, int]]:
    """Pairs of buffers alive at one step whose bytes overlap (an invalid plan if any)."""
    found = []
    for i, j in _overlapping_pairs(spans):
        if offsets[i] < offsets[j] + sizes[j] and offsets[j] < offsets[i] + sizes[i]:
            found.append((i, j))
    return found


def _overlapping_pairs(spans: Sequence[Span]) -> list[tuple[int, int]]:
    if not spans:
        return []
    first = np.array([f for f, _ in spans])
    last = np.array([la for _, la in spans])
    live = (first[:, None] <= last[None, :]) & (first[None, :] <= last[:, None])
    i, j = np.nonzero(np.triu(live, 1))
    return list(zip(i.tolist(), j.tolist(), strict=True))


def _neighbours(spans: Sequence[Span]) -> list[list[int]]:
    near: list[list[int]] = [[] for _ in spans]
    for i, j in _overlapping_pairs(spans):
        near[i].append(j)
        near[j].append(i)
    return near


def _place(order: Sequence[int], sizes: Sequence[int], near: Sequence[Sequence[int]],
           best_fit: bool) -> list[int]:
    """Put each buffer, in ``order``, into the first (or the tightest) gap left between the
    already placed buffers it overlaps in time; after all of them if none is big enough."""
    offsets = [-1] * len(sizes)
    for i in order:
        size = sizes[i]
        placed = sorted((offsets[j], offsets[j] + sizes[j]) for j in near[i] if offsets[j] >= 0)
        chosen, tightest, low = -1, None, 0
        for start, end in placed:
            gap = start - low
            if gap >= size:
                if not best_fit:
                    chosen = low
                    break
                if tightest is None or gap < tightest:
                    chosen, tightest = low, gap
            low = max(low, end)
        offsets[i] = chosen if chosen >= 0 else low
    return offsets


def tflm_greedy(sizes: Sequence[int], spans: Sequence[Span]) -> list[int]:
    """TFLite Micro's ``GreedyMemoryPlanner`` for buffers in the order they are added.

    Largest first with a stable sort; TFLM fills its sort array back to front, so among equal
    sizes the buffer added *later* goes first. Each buffer goes into the first gap, scanning the
    placed buffers alive at the same time in offset order."""
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], -i))
    offsets = [0] * len(sizes)
    placed_offsets: list[int] = []  # sorted
    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first, last), same order
    for i in order:
        size, (first, last) = sizes[i], spans[i]
        candidate = 0
        for offset, end, p_first, p_last in placed:
            if p_first > last or first > p_last:
                continue
            if offset - candidate >= size:
                break
            candidate = max(candidate, end)
        offsets[i] = candidate
        k = bisect_right(placed_offsets, candidate)
        placed_offsets.insert(k, candidate)
        placed.insert(k, (candidate, candidate + size, first, last))
    return offsets


def _two_colour(sizes: Sequence[int], near: Sequence[Sequence[int]], floor: int
                ) -> list[int] | None:
    """Offsets reaching ``floor`` when the overlap graph is a forest, else None."""
    colour = [-1] * len(sizes)
    for root in range(len(sizes)):
        if colour[root] >= 0:
            continue
        colour[root] = 0
        stack = [root]
        while stack:
            i = stack.pop()
            for j in near[i]:
                if colour[j] < 0:
                    colour[j] = 1 - colour[i]
                    stack.append(j)
                elif colour[j] == colour[i]:
                    return None  # an odd cycle: three buffers alive together
    return [0 if c == 0 else floor - s for c, s in zip(colour, sizes, strict=True)]


def _max_alive(spans: Sequence[Span]) -> int:
    return floor_bytes([1] * len(spans), spans)


def _breadth_order(sizes: Sequence[int], spans: Sequence[Span], canon: Sequence[int]
                   ) -> list[int]:
    steps = max(last for _, last in spans) + 1
    alive: list[list[int]] = [[] for _ in range(steps)]
    for i in canon:
        first, last = spans[i]
        for step in range(first, last + 1):
            alive[step].append(i)
    breadth = _alive_sums(sizes, spans)
    order: list[int] = []
    seen: set[int] = set()
    for step in sorted(range(steps), key=lambda s: -breadth[s]):
        for i in sorted(alive[step], key=lambda i: -sizes[i]):
            if i not in seen:
                seen.add(i)
                order.append(i)
    return order


Heuristic = Callable[[Sequence[int], Sequence[Span], list[int]], list[int]]
_HEURISTICS: tuple[tuple[str, Heuristic, bool], ...] = (
    ("breadth", _breadth_order, True),
    ("size-best", lambda sz, sp, c: sorted(c, key=lambda i: -sz[i]), True),
    ("lifetime", lambda sz, sp, c: sorted(c, key=lambda i: (sp[i][0] - sp[i][1], -sz[i])), False),
    ("chronological", lambda sz, sp, c: list(c), False),
)


def plan(sizes: Sequence[int], spans: Sequence[Span]) -> MemoryPlan:
    """The best plan found for buffers of (aligned) ``sizes`` alive over ``spans``."""
    sizes, spans = list(sizes), [tuple(s) for s in spans]
    if not sizes:
        return MemoryPlan((), 0, 0, "empty")
    floor = floor_bytes(sizes, spans)
    near = _neighbours(spans)
    if _max_alive(spans) <= 2:
        offsets = _two_colour(sizes, near, floor)
        if offsets is not None:
            return MemoryPlan(tuple(offsets), head_bytes(sizes, offsets), floor, "two-colour")
    canon = sorted(range(len(sizes)), key=lambda i: (spans[i][0], spans[i][1], sizes[i]))
    best: MemoryPlan | None = None
    for name, order_of, best_fit in _HEURISTICS:
        offsets = _place(order_of(sizes, spans, canon), sizes, near, best_fit)
        head = head_bytes(sizes, offsets)
        if best is None or head < best.head_bytes:
            best = MemoryPlan(tuple(offsets), head, floor, name)
        if head == floor:
            return best
    offsets = tflm_greedy(sizes, spans)
    head = head_bytes(sizes, offsets)
    if best is None or head < best.head_bytes:
        best = MemoryPlan(tuple(offsets), head, floor, "tflm-greedy")
    return best
