"""``layouts``: the writers of datasets in each tool's own layout (``layouts.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

LAYOUTS = Path(__file__).with_name("layouts.py")


def load_layouts() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tinynas_test_layouts", LAYOUTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def layouts() -> ModuleType:
    return load_layouts()
