"""The offline memory planner: valid plans, never above TFLM's default, exact for chains."""

from __future__ import annotations

import random

import pytest

from estimators.deploy import deployed
from estimators.memplan import conflicts, floor_bytes, head_bytes, plan, tflm_greedy
from estimators.ram import align, arena_plan, lifetimes
from search_space.baselines import get_baseline
from search_space.model import lower
from search_space.sampling import random_genomes


def test_chain_reaches_the_floor_where_tflm_greedy_does_not():
    # a chain: buffer i is written by op i and read by op i + 1. The widest op holds
    # 80 + 48 = 128 bytes; TFLM's largest-first placement stacks the two 80s apart and the
    # 48 between them ends at 160.
    sizes = [48, 80, 48, 32, 80]
    spans = [(i, i + 1) for i in range(5)]
    assert head_bytes(sizes, tflm_greedy(sizes, spans)) == 160
    found = plan(sizes, spans)
    assert (found.head_bytes, found.floor_bytes, found.method) == (128, 128, "two-colour")
    assert not conflicts(sizes, spans, found.offsets)


def test_three_alive_together_are_stacked():
    found = plan([32, 48, 16], [(0, 2)] * 3)
    assert found.head_bytes == found.floor_bytes == 96
    assert not conflicts([32, 48, 16], [(0, 2)] * 3, found.offsets)


def test_floor_is_the_worst_step():
    assert floor_bytes([64, 32, 16], [(0, 1), (1, 2), (2, 2)]) == 96
    assert plan([], []).head_bytes == 0


@pytest.mark.parametrize("seed", range(60))
def test_random_buffers_never_overlap_and_never_beat_the_floor_or_lose_to_tflm(seed):
    rng = random.Random(seed)
    n, steps = rng.randint(1, 40), rng.randint(1, 15)
    sizes = [16 * rng.randint(1, 30) for _ in range(n)]
    spans = []
    for _ in range(n):
        first = rng.randrange(steps)
        spans.append((first, rng.randint(first, min(steps - 1, first + rng.randint(0, 4)))))
    found = plan(sizes, spans)
    assert not conflicts(sizes, spans, found.offsets)
    assert found.floor_bytes == floor_bytes(sizes, spans) <= found.head_bytes
    assert found.head_bytes <= head_bytes(sizes, tflm_greedy(sizes, spans))
    assert all(o >= 0 for o in found.offsets)


def test_plan_does_not_depend_on_how_tensors_are_numbered():
    # The estimator plans the deployed graph, the export the .tflite: same buffers, other ids.
    rng = random.Random(7)
    sizes = [16 * rng.randint(1, 30) for _ in range(30)]
    spans = [(f, f + rng.randint(0, 3)) for f in (rng.randrange(12) for _ in range(30))]
    perm = list(range(30))
    rng.shuffle(perm)
    a = plan(sizes, spans)
    b = plan([sizes[i] for i in perm], [spans[i] for i in perm])
    assert a.head_bytes == b.head_bytes and a.method == b.method


def _check_graph_plan(graph) -> tuple[int, int, int]:
    d = deployed(graph)
    found = arena_plan(d)
    ids = sorted(found.offsets)
    sizes = [align(d.nbytes(t)) for t in ids]
    spans = [found.lifetimes[t] for t in ids]
    assert found.lifetimes == lifetimes(d)
    assert not conflicts(sizes, spans, [found.offsets[t] for t in ids])
    assert all(found.offsets[t] % 16 == 0 for t in ids)
    greedy = arena_plan(d, offline=False).head_bytes
    assert found.floor_bytes <= found.head_bytes <= greedy
    return found.head_bytes, found.floor_bytes, greedy


def test_sampled_genomes_plans_are_valid_and_near_the_floor():
    near = 0
    genomes = random_genomes(30, seed=3)
    for genome in genomes:
        head, floor, _ = _check_graph_plan(lower(genome, 3).graph)
        near += head <= 1.05 * floor
    assert near >= 0.9 * len(genomes)


def test_mobilenet_chain_is_exact_and_beats_tflm_at_224():
    # The ST model zoo's MobileNet v1 0.25 at 224: TFLM's greedy plan is 33% above the floor
    # (its file measured 401,408 B against 301,056 B, BENCHMARKS.md); ours reaches the floor.
    head, floor, greedy = _check_graph_plan(get_baseline("mbv1-0.25-224-c5").graph)
    assert head == floor == 301_056 and greedy == 401_408
