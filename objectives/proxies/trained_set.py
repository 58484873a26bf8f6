"""The shipped set of trained architectures: the ground truth accuracy rankings are measured
and fitted on.

Each record is one genome drawn from a budget-fitted search space, trained from scratch with the
default recipe on the demo data (``scripts/bench_trained_set.py``), with its val AP50 and mAP,
per-epoch training loss, time, recipe and date. ``split`` is ``fit`` (what a surrogate may learn
from) or ``heldout`` (drawn with a seed no fit sees; only for measuring a ranking). The file
grows across benchmark runs; its format string changes when a record's meaning does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from artefacts.tags import check_format
from search_space.genome import Genome
from search_space.spec import ModelSpec

TRAINED_SET_FORMAT = "tinynas-trained-set/1"
TRAINED_SET_FILE = "trained_set.json"
SPLITS = ("fit", "heldout")


@dataclass(frozen=True)
class TrainedArch:
    """One trained architecture of the set (``record`` keeps every stored field)."""

    id: str
    split: str
    target: str
    genome: Genome
    num_classes: int
    ap50: float
    map: float
    latency_ms: float
    record: dict[str, Any]

    @property
    def spec(self) -> ModelSpec:
        """The network that was trained: the record's own spec (the first six records were
        trained before SAME padding, with symmetric padding); a record without one was trained
        as the genome builds today."""
        if "spec" in self.record:
            return ModelSpec.from_dict(self.record["spec"])
        return ModelSpec(self.num_classes, genome=self.genome, name=self.id)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TrainedArch:
        return cls(record["id"], record["split"], record["target"],
                   Genome.from_dict(record["genome"]), int(record["num_classes"]),
                   float(record["ap50"]), float(record["map"]),
                   float(record["predicted"]["latency_ms"]), record)


def empty_set() -> dict[str, Any]:
    return {"format": TRAINED_SET_FORMAT, "architectures": []}


def read_set_file(path: Path) -> dict[str, Any]:
    """The raw set stored at ``path`` (an empty set if there is no file yet)."""
    if not path.is_file():
        return empty_set()
    data = json.loads(path.read_text(encoding="utf-8"))
    return check_format(data, TRAINED_SET_FORMAT, lambda found: ValueError(
        f"{path}: format {found!r} is not {TRAINED_SET_FORMAT!r}"))


def shipped_path() -> Path:
    return Path(str(resources.files("objectives.proxies") / "data" / TRAINED_SET_FILE))


@cache
def load_trained_set(split: str | None = None, path: Path | None = None
                     ) -> tuple[TrainedArch, ...]:
    """The architectures of the shipped set (or of the set file ``path``), in the order they
    were trained; ``split`` selects one."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {split!r}: valid splits are {', '.join(SPLITS)}")
    records = read_set_file(path or shipped_path())["architectures"]
    return tuple(TrainedArch.from_record(r) for r in records
                 if split is None or r["split"] == split)
