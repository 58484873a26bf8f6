""":class:`ModelSpec`: everything needed to rebuild one network, and nothing else.

Checkpoints and exports record a spec (a baseline name or a genome, plus the class count) rather
than a pickled module, so a file written today rebuilds the same graph tomorrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from artefacts.tags import check_format
from search_space.baselines import BaselineError, get_baseline
from search_space.genome import Genome, GenomeError
from search_space.model import Architecture, GraphNet, lower, with_symmetric_padding

SPEC_FORMAT = "tinynas-model/2"
# Format 1 predates SAME padding: its models were built, trained and exported with PyTorch's
# symmetric padding, and rebuild that way.
LEGACY_SPEC_FORMAT = "tinynas-model/1"
SAME = "same"
SYMMETRIC = "symmetric"
PADDINGS = (SAME, SYMMETRIC)


@dataclass(frozen=True)
class ModelSpec:
    """Exactly one of ``baseline`` (a registered name) or ``genome``; ``num_classes`` counts
    foreground classes; ``name`` labels a genome model (a baseline is named by itself).
    ``padding`` is how the convolutions pad: ``same`` (TF SAME, every model built today) or
    ``symmetric`` (PyTorch's, models of spec format 1, so their weights keep their meaning)."""

    num_classes: int
    baseline: str | None = None
    genome: Genome | None = None
    name: str = "genome"
    padding: str = SAME

    def __post_init__(self) -> None:
        if (self.baseline is None) == (self.genome is None):
            raise GenomeError("a model spec names exactly one of a baseline or a genome")
        if self.num_classes < 1:
            raise GenomeError(f"num_classes={self.num_classes}: a detector needs at least "
                              "1 class")
        if self.padding not in PADDINGS:
            raise GenomeError(f"padding={self.padding!r}; valid: {', '.join(PADDINGS)}")

    @property
    def label(self) -> str:
        return self.baseline or self.name

    def lower(self) -> Architecture:
        if self.baseline is not None:
            arch = get_baseline(self.baseline, self.num_classes)
        else:
            arch = lower(self.genome, self.num_classes, name=self.name)  # type: ignore[arg-type]
        return with_symmetric_padding(arch) if self.padding == SYMMETRIC else arch

    def build(self) -> GraphNet:
        return GraphNet(self.lower())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": SPEC_FORMAT, "num_classes": self.num_classes,
                                "padding": self.padding}
        if self.baseline is not None:
            data["baseline"] = self.baseline
        else:
            data["name"] = self.name
            data["genome"] = self.genome.to_dict()  # type: ignore[union-attr]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        check_format(data, (SPEC_FORMAT, LEGACY_SPEC_FORMAT), lambda found: GenomeError(
            f"not a tinynas model spec (format {found!r}, expected {SPEC_FORMAT!r} or "
            f"{LEGACY_SPEC_FORMAT!r})"))
        legacy = data["format"] == LEGACY_SPEC_FORMAT
        try:
            genome = Genome.from_dict(data["genome"]) if "genome" in data else None
            spec = cls(int(data["num_classes"]), data.get("baseline"), genome,
                       data.get("name", "genome"),
                       SYMMETRIC if legacy else data.get("padding", SAME))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, GenomeError | BaselineError):
                raise
            raise GenomeError(f"malformed model spec: {exc!r}") from None
        spec.lower()  # an unknown baseline or an invalid class count fails here, not later
        return spec
