from __future__ import annotations

import json

import pytest

from search_space.baselines import BaselineError, seed_genome
from search_space.genome import GenomeError
from search_space.spec import ModelSpec


def test_genome_spec_round_trips_through_json():
    spec = ModelSpec(3, genome=seed_genome(0.5), name="mine")
    again = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert again.lower().graph == spec.lower().graph
    assert again.label == "mine"


def test_baseline_spec_rebuilds_with_its_class_count():
    spec = ModelSpec.from_dict(ModelSpec(2, baseline="ssd-mbv1-0.25-192").to_dict())
    arch = spec.lower()
    assert arch.name == "ssd-mbv1-0.25-192" and arch.num_classes == 2


@pytest.mark.parametrize("data, match", [
    ({"format": "other"}, "not a tinynas model spec"),
    ([], "not a tinynas model spec"),
    ({"format": "tinynas-model/1", "num_classes": 2}, "exactly one"),
    ({"format": "tinynas-model/1", "num_classes": 0, "baseline": "etn-w0.35-ssdlite"},
     "num_classes=0"),
    ({"format": "tinynas-model/1", "baseline": "etn-w0.35-ssdlite"}, "malformed"),
])
def test_bad_specs_are_refused(data, match):
    with pytest.raises(GenomeError, match=match):
        ModelSpec.from_dict(data)


def test_unknown_baseline_in_a_spec_is_refused():
    with pytest.raises(BaselineError, match="unknown baseline"):
        ModelSpec.from_dict({"format": "tinynas-model/1", "num_classes": 1, "baseline": "nope"})


def test_new_specs_pad_same_and_format_1_specs_rebuild_symmetric():
    """Models of spec format 1 were trained with PyTorch's symmetric padding: they rebuild
    that way (same parameters, so their weights load), new ones are TF SAME."""
    spec = ModelSpec(2, baseline="person-det-mbv1-0.25-96x1")
    data = spec.to_dict()
    assert (data["format"], data["padding"]) == ("tinynas-model/2", "same")
    legacy = ModelSpec.from_dict({**data, "format": "tinynas-model/1"})
    assert legacy.padding == "symmetric"
    new_graph, old_graph = spec.lower().graph, legacy.lower().graph
    assert [t.shape for t in new_graph.tensors] == [t.shape for t in old_graph.tensors]
    strided = [op for op in old_graph.ops if op.kind == "conv" and op.stride == 2]
    assert strided and all(not op.same and op.padding == 1 for op in strided)
    assert all(op.same for op in new_graph.ops if op.kind == "conv")
    assert legacy.build().state_dict().keys() == spec.build().state_dict().keys()
    with pytest.raises(GenomeError, match="padding='valid'"):
        ModelSpec(2, baseline="person-det-mbv1-0.25-96x1", padding="valid")
