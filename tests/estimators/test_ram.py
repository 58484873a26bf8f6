from __future__ import annotations

import random
import time

import pytest

from estimators.counting import macs, macs_seed, params
from estimators.deploy import DeployedGraph, deployed
from estimators.flash import flash_breakdown
from estimators.ir import Graph, GraphBuilder
from estimators.ram import (
    TAIL_HOST64,
    TAIL_MCU32,
    align,
    arena_plan,
    greedy_offsets,
    lifetimes,
    peak_activation_bytes,
    tail_bytes,
)
from search_space.model import lower


# -- the greedy planner on hand examples ------------------------------------------------
def test_chain_reuses_memory():
    # a -> b -> c -> d, each read only by the next op: two buffers alive at a time.
    # Equal sizes go later-added first: d at 0, c over d (64), b fits under c (0),
    # a over b (64).
    offsets = greedy_offsets([64] * 4, [(0, 0), (0, 1), (1, 2), (2, 2)])
    assert offsets == [64, 0, 64, 0]
    assert max(o + 64 for o in offsets) == 128


def test_branch_cannot_reuse():
    # all three alive together: stacked largest first, 48 + 32 + 16
    assert greedy_offsets([32, 48, 16], [(0, 2)] * 3) == [48, 0, 80]


def test_small_buffer_fills_a_gap():
    # 128 (op 0 only) at 0; the 64 alive at ops 0-1 goes above it (128); the 64 alive at
    # ops 1-2 does not meet the 128 and goes at 0; the 32 at op 1 meets both 64s and
    # fits in the gap between them at 64.
    offsets = greedy_offsets([128, 64, 64, 32], [(0, 0), (1, 2), (0, 1), (1, 1)])
    assert offsets == [0, 0, 128, 64]


def test_equal_sizes_place_later_buffer_first():
    # TFLM fills its sort array back to front, so the last-added 64 is placed first (at 0)
    # and the two earlier ones, which both meet it, go above it.
    assert greedy_offsets([64, 64, 64], [(0, 0), (1, 1), (0, 1)]) == [64, 64, 0]


# -- the arena of the tiny graph -----------------------------------------------------------
def test_tiny_arena_exact(tiny_graph):
    d = deployed(tiny_graph)
    plan = arena_plan(d, offline=False)  # TFLM's default plan
    # deployed tensor: bytes (aligned to 16), [first op, last op]
    #   0 input 8x8x3 = 192 [0,0]; 1 pad 10x10x3 = 300 (304) [0,1]; 5 stem 64 [1,4]
    #   8 dw 64 [2,3]; 11 pw 128 [3,5]; 14 skip 128 [4,5]; 15 add 128 [5,6]
    #   16 mean 8 (16) [6,7]; 20 fc 2 (16) [7,7] (the flatten folds into the FC)
    assert plan.lifetimes == {0: (0, 0), 1: (0, 1), 5: (1, 4), 8: (2, 3), 11: (3, 5),
                              14: (4, 5), 15: (5, 6), 16: (6, 7), 20: (7, 7)}
    # largest first (ties: later tensor first): pad@0; input meets pad -> 304;
    # add@0; skip meets add -> 128; pw meets add and skip -> 256; dw meets only pw -> 0;
    # stem meets pad, dw, skip, pw -> 384; fc@0; mean meets add and fc -> 128
    assert plan.offsets == {1: 0, 0: 304, 15: 0, 14: 128, 11: 256, 8: 0, 5: 384, 20: 0,
                            16: 128}
    assert plan.head_bytes == 304 + 192 == 496
    assert (plan.peak_op, plan.peak_op_name) == (0, "stem.conv")  # the PAD of the stem
    # live sums per op: 192+300 = 492 at op 0 is the largest
    assert peak_activation_bytes(d) == 492
    # the offline plan reaches the floor too (aligned: 304 + 192), with the same lifetimes
    offline = arena_plan(d)
    assert offline.head_bytes == offline.floor_bytes == plan.floor_bytes == 496
    assert offline.lifetimes == plan.lifetimes and offline.tail_bytes == plan.tail_bytes


def test_tiny_tail_follows_the_constants(tiny_graph):
    d = deployed(tiny_graph)
    c = TAIL_MCU32
    ops = ["PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "CONV_2D", "ADD", "MEAN",
           "FULLY_CONNECTED"]
    # per-channel multiplier and shift arrays, int32, each on a 16-byte boundary:
    # 4, 4, 8, 8 and 2 output channels -> 16, 16, 32, 32, 16 bytes, twice
    channel_arrays = 2 * (16 + 16 + 32 + 32 + 16)
    expected = (c.fixed + 21 * c.per_tensor + 2 * c.per_io_tensor + 8 * c.per_op
                + sum(c.op_data.get(k, 0) for k in ops) + channel_arrays)
    assert tail_bytes(d) == expected
    plan = arena_plan(d)
    assert plan.tail_bytes == expected and plan.total_bytes == 496 + expected
    assert tail_bytes(d, TAIL_HOST64) > expected


def test_seed_head_is_the_stem(seed_genome):
    plan = arena_plan(deployed(lower(seed_genome, class_channels=1).graph))
    # the input 256x256x3 = 196,608 next to the stem conv's output 128x128x32 = 524,288: the
    # largest pair alive together (SAME padding: no padded copy of the input beside them)
    assert plan.head_bytes == 196_608 + 524_288
    assert plan.peak_op_name == "backbone.stem.conv"


# -- properties on random graphs ---------------------------------------------------------
def _random_graph(rng: random.Random) -> Graph:
    """A random chain with side branches (adds, concats) of conv / dw / pool units."""
    b = GraphBuilder()
    size = rng.choice([8, 12, 16, 24])
    x = b.input((1, rng.choice([1, 3, 4]), size, size))
    pool = [x]
    for _ in range(rng.randint(2, 14)):
        x = rng.choice(pool[-3:])
        h = b.shape(x)[2]
        kind = rng.choice(["conv", "dw", "add", "concat", "pool"])
        if kind == "conv":
            stride = 2 if h >= 4 and rng.random() < 0.3 else 1
            y = b.act(b.bn(b.conv(x, rng.choice([2, 4, 8, 16]), rng.choice([1, 3]), stride)))
        elif kind == "dw":
            y = b.bn(b.dwconv(x, 3, 1))
        elif kind == "pool" and h >= 2:
            y = b.maxpool(x, 2, 2)
        else:
            same = [t for t in pool if b.shape(t) == b.shape(x) and t != x]
            if not same:
                continue
            y = b.add(x, same[-1]) if kind == "add" else b.concat([x, same[-1]], axis=1)
        pool.append(y)
    outputs = [pool[-1]] if rng.random() < 0.5 or len(pool) < 3 else [pool[-1], pool[-2]]
    return b.finish(outputs)


def _no_overlap(d: DeployedGraph, offsets: dict[int, int], spans: dict[int, tuple[int, int]]
                ) -> bool:
    items = [(offsets[t], offsets[t] + align(d.nbytes(t)), *spans[t]) for t in offsets]
    for i, (a0, a1, f0, l0) in enumerate(items):
        for b0, b1, f1, l1 in items[i + 1:]:
            if f0 <= l1 and f1 <= l0 and a0 < b1 and b0 < a1:
                return False
    return True


@pytest.mark.parametrize("seed", range(40))
def test_random_graph_plan_is_valid_and_above_the_bound(seed):
    d = deployed(_random_graph(random.Random(seed)))
    plan = arena_plan(d)
    assert plan.head_bytes >= peak_activation_bytes(d)
    assert all(o % 16 == 0 for o in plan.offsets.values())
    assert _no_overlap(d, dict(plan.offsets), dict(plan.lifetimes))
    assert plan.lifetimes == lifetimes(d)


@pytest.mark.parametrize("seed", range(40))
def test_random_buffers_plan_is_valid_and_above_the_bound(seed):
    rng = random.Random(1000 + seed)
    n, steps = rng.randint(1, 30), rng.randint(1, 12)
    sizes = [16 * rng.randint(1, 20) for _ in range(n)]
    spans = []
    for _ in range(n):
        first = rng.randrange(steps)
        spans.append((first, rng.randint(first, steps - 1)))
    offsets = greedy_offsets(sizes, spans)
    head = max(o + s for o, s in zip(offsets, sizes, strict=True))
    live = [sum(s for s, (f, la) in zip(sizes, spans, strict=True) if f <= t <= la)
            for t in range(steps)]
    assert head >= max(live)
    for i in range(n):
        for j in range(i + 1, n):
            meet = spans[i][0] <= spans[j][1] and spans[j][0] <= spans[i][1]
            apart = (offsets[i] + sizes[i] <= offsets[j] or offsets[j] + sizes[j] <= offsets[i])
            assert not meet or apart


def test_pipeline_is_fast(seed_genome):
    # the search needs >= 50 genomes/s for an etn-w1.0-sized graph; a generous bound here
    # (10/s) only catches an accidental blow-up, not machine noise
    start = time.perf_counter()
    for _ in range(10):
        graph = lower(seed_genome, class_channels=1).graph
        params(graph), macs(graph), macs_seed(graph)
        d = deployed(graph)
        flash_breakdown(d), arena_plan(d)
    assert time.perf_counter() - start < 1.0
