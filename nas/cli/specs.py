"""Resolving the model the user names on the command line (a baseline or a genome file)
into a :class:`ModelSpec` or a lowered architecture."""

from __future__ import annotations

from pathlib import Path

from nas.errors import UsageError
from search_space.baselines import get_baseline
from search_space.genome import Genome, GenomeError
from search_space.model import Architecture
from search_space.spec import ModelSpec

# Pascal VOC, the seed's dataset: the class count a genome is estimated with unless told.
DEFAULT_NUM_CLASSES = 20


def load_genome(path: str | Path) -> Genome:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"genome file '{path}' not found") from None
    except OSError as exc:
        raise UsageError(f"cannot read genome file '{path}': {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"genome file '{path}' is not UTF-8 text; a genome file is JSON "
                         "(e.g. the 'genome' of `tinynas show --trial N --json`)") from None
    try:
        return Genome.from_json(text)
    except GenomeError as exc:
        raise UsageError(f"{path}: {exc}") from None


def resolve_spec(baseline: str | None, genome_path: str | None,
                 num_classes: int | None = None) -> ModelSpec:
    """A baseline by name or a genome file (exactly one of the two) as a :class:`ModelSpec`.
    ``num_classes`` defaults to the baseline's own count, or 20 for a genome."""
    if (baseline is None) == (genome_path is None):
        raise UsageError("name exactly one model: a BASELINE name or --genome FILE.json")
    if num_classes is not None and num_classes < 1:
        raise UsageError(f"--num-classes {num_classes}: must be a positive integer")
    if genome_path is not None:
        genome = load_genome(genome_path)
        return ModelSpec(num_classes or DEFAULT_NUM_CLASSES, genome=genome,
                         name=Path(genome_path).stem)
    arch = get_baseline(baseline, num_classes)  # type: ignore[arg-type]
    return ModelSpec(arch.num_classes, baseline=baseline)


def resolve_model(baseline: str | None, genome_path: str | None,
                  num_classes: int | None = None) -> Architecture:
    """:func:`resolve_spec`, lowered."""
    return resolve_spec(baseline, genome_path, num_classes).lower()
