"""``layouts``: the writers of datasets in each tool's own layout (``layouts.py``, also
imported by ``tests/nas/cli/test_data.py``)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import layouts as _layouts


@pytest.fixture(scope="session")
def layouts() -> ModuleType:
    return _layouts
