"""artefacts.tags: one check of the format tag, the caller's error naming what was found."""

from __future__ import annotations

import pytest

from artefacts.tags import check_format


def _refuse(found: object) -> Exception:
    return LookupError(f"found {found!r}")


def test_a_tagged_dict_is_returned_as_is():
    data = {"format": "tinynas-x/2", "a": 1}
    assert check_format(data, "tinynas-x/2", _refuse) is data
    assert check_format(data, ("tinynas-x/2", "tinynas-x/1"), _refuse) is data


@pytest.mark.parametrize(("data", "found"), [
    ({"format": "tinynas-x/1"}, "'tinynas-x/1'"),  # another version
    ({"a": 1}, "None"),  # no tag at all
    ([1, 2], "'list'"),  # not a dict: its type is named
    ("text", "'str'"),
])
def test_anything_else_raises_the_callers_error_with_what_was_found(data, found):
    with pytest.raises(LookupError, match=f"^found {found}$"):
        check_format(data, ("tinynas-x/2",), _refuse)
