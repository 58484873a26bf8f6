"""nas.export.files: the export layout, genome.json written and checked by one module."""

from __future__ import annotations

import pytest

from nas.export.files import EXPORT_FORMAT, LAYOUT, check_genome, genome_json


def test_every_file_has_its_own_name():
    assert len(set(LAYOUT.files)) == len(LAYOUT.files) == 7
    assert LAYOUT.files[0] == LAYOUT.model == "model_int8.tflite"


def test_what_genome_json_writes_passes_its_check(tiny_spec):
    data = genome_json(tiny_spec, ("person", "car"), ("boxes", "logits"))
    assert data["format"] == EXPORT_FORMAT
    assert check_genome(data) is data


@pytest.mark.parametrize(("data", "message"), [
    ({"format": "tinynas-export/0"}, "format 'tinynas-export/0', expected 'tinynas-export/1'"),
    ("text", "format 'str', expected 'tinynas-export/1'"),
    ({"format": EXPORT_FORMAT, "model": {}}, "missing class_names, outputs"),
])
def test_anything_else_is_refused_saying_what_is_wrong(data, message):
    with pytest.raises(ValueError) as info:
        check_genome(data)
    assert str(info.value) == message
