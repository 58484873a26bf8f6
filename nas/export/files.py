"""What an export directory holds, and the checks made before any work starts.

Light on purpose (no TensorFlow): the command line validates ``--out`` with it before the
slow imports of the conversion.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from nas.detector import EXPORT_FORMAT
from nas.errors import UsageError
from search_space.spec import ModelSpec

FILES = ("model_int8.tflite", "model.onnx", "genome.json", "model_card.md", "model_card.json",
         "model_data.h", "model_data.cc")


def check_out_dir(out_dir: Path) -> None:
    """Fail before any work if the result could not be put in place."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(f"--out '{out_dir}' already exists and is not an empty directory; "
                         "choose a new one")
    parent = out_dir.resolve().parent
    if not parent.is_dir():
        raise UsageError(f"--out '{out_dir}': parent directory '{parent}' does not exist")
    try:
        tempfile.TemporaryDirectory(dir=parent).cleanup()
    except OSError as exc:
        raise UsageError(f"--out '{out_dir}': cannot write in '{parent}' "
                         f"({exc.strerror})") from None


def genome_json(spec: ModelSpec, class_names: tuple[str, ...], outputs: tuple[str, ...]
                ) -> dict[str, Any]:
    """``genome.json``: what rebuilds the model and reads the file (``nas.detector``)."""
    return {"format": EXPORT_FORMAT, "model": spec.to_dict(), "class_names": list(class_names),
            "outputs": {name: name for name in outputs}}
