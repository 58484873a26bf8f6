"""What an export directory holds (:data:`LAYOUT`), the check of its ``genome.json`` and the
checks made before any work starts.

Every module that writes or reads an export names its files through :data:`LAYOUT` (the
pipeline writes them, ``nas.detector`` and ``tinynas evaluate`` read the model and its
``genome.json``, the search's finalisation and latency calibration find the model in an export
directory), so a file is renamed in one place.

Light on purpose (no TensorFlow): the command line validates ``--out`` with it before the
slow imports of the conversion.
"""

from __future__ import annotations

import tempfile
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from artefacts.tags import check_format
from nas.errors import UsageError
from search_space.spec import ModelSpec


@dataclass(frozen=True)
class ExportLayout:
    """The files of an export directory, by role."""

    model: str = "model_int8.tflite"  # the full-int8 model, what firmware and LiteRT run
    onnx: str = "model.onnx"
    genome: str = "genome.json"  # rebuilds the model and names the outputs (genome_json)
    card_markdown: str = "model_card.md"
    card_json: str = "model_card.json"
    c_header: str = "model_data.h"  # the model as a C array, for firmware
    c_source: str = "model_data.cc"

    @property
    def files(self) -> tuple[str, ...]:
        """Every file, in the order the fields list them."""
        return astuple(self)


LAYOUT = ExportLayout()
# ``genome.json``'s format tag: bumped when its keys change meaning.
EXPORT_FORMAT = "tinynas-export/1"
GENOME_KEYS = ("model", "class_names", "outputs")  # what genome_json writes beside the tag


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


def check_genome(data: object) -> dict[str, Any]:
    """``data`` if it is an export's ``genome.json`` (its format tag and keys); otherwise a
    ValueError saying what is wrong, for the caller to prefix with the file's path."""
    found = check_format(data, EXPORT_FORMAT, lambda tag: ValueError(
        f"format {tag!r}, expected {EXPORT_FORMAT!r}"))
    missing = [k for k in GENOME_KEYS if k not in found]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    return found
