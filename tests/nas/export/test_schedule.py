from __future__ import annotations

import random

import pytest

from estimators import tflite
from estimators.deploy import deployed
from nas.export import schedule
from nas.export.files import LAYOUT


@pytest.mark.slow
def test_any_operator_order_is_matched_back_to_the_deployed_graph(tiny_int8_export, tiny_spec):
    # The tiny SSDLite head has box and class depthwise convs that read the same 2x2 map with
    # the same shape: only backtracking tells them apart by their consumers.
    out, _ = tiny_int8_export
    model = tflite.load((out / LAYOUT.model).read_bytes())
    graph = deployed(tiny_spec.lower().graph)
    sg = model.subgraphs[0]
    assert schedule.match(model, graph) == list(range(len(graph.ops)))  # already ours
    shuffled = list(range(len(sg.operators)))
    random.Random(0).shuffle(shuffled)
    sg.operators = [sg.operators[i] for i in shuffled]
    assert schedule.reorder(model, graph)
    kinds = [tflite.op_kind(model, op) for op in sg.operators]
    assert kinds == [op.kind for op in graph.ops]
    assert schedule.match(model, graph) == list(range(len(graph.ops)))


@pytest.mark.slow
def test_a_graph_that_is_not_the_files_is_refused(tiny_int8_export, tiny_spec):
    import dataclasses

    out, _ = tiny_int8_export
    model = tflite.load((out / LAYOUT.model).read_bytes())
    graph = deployed(tiny_spec.lower().graph)
    with pytest.raises(schedule.ScheduleError, match="operators"):
        schedule.match(model, dataclasses.replace(graph, ops=graph.ops[:-1]))
    other = deployed(dataclasses.replace(tiny_spec, num_classes=5).lower().graph)
    with pytest.raises(schedule.ScheduleError, match="no operator of the file implements"):
        schedule.match(model, other)
