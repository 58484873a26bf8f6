"""Training checkpoints: one ``torch.save``'d dict of tensors and plain values.

The file records *what* the model is (a :class:`~search_space.spec.ModelSpec` dict and the class
names), its weights, and where training stands (epoch, batch within the epoch, optimizer step,
the epochs the schedule anneals over, the optimizer's state, the recipe, the torch RNG state,
the per-epoch history and where the data came from). Nothing in it is a pickled class, so it
loads with ``torch.load(weights_only=True)``: opening a checkpoint never runs code from it.

Keys (``format`` = ``tinynas-checkpoint/1``): ``model`` (spec dict), ``class_names``,
``state_dict``, ``epoch``, ``batch``, ``step``, ``total_epochs``, ``optimizer``, ``recipe``,
``rng``, ``history``, ``data``, ``epoch_losses``.

The spec carries its own format: a checkpoint whose spec is ``tinynas-model/1`` predates TF
SAME padding and rebuilds with the symmetric padding it was trained with
(:class:`~search_space.spec.ModelSpec` ``padding``), so its weights keep their meaning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from artefacts.atomic import atomic_write
from artefacts.tags import check_format
from search_space.baselines import BaselineError
from search_space.genome import GenomeError
from search_space.model import GraphNet
from search_space.spec import ModelSpec

CHECKPOINT_FORMAT = "tinynas-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, not ours or does not fit its model."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    spec: ModelSpec
    class_names: tuple[str, ...]
    state_dict: Mapping[str, torch.Tensor]
    epoch: int  # completed epochs
    batch: int  # batches done in the epoch under way (0 at an epoch boundary)
    step: int  # optimizer steps so far
    total_epochs: int | None  # what the learning-rate schedule anneals over
    recipe: Mapping[str, Any] = field(default_factory=dict)
    optimizer: Mapping[str, Any] | None = None
    rng: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[Mapping[str, Any], ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    # (total, box, class) losses of the steps done in the epoch under way
    epoch_losses: tuple[tuple[float, float, float], ...] = ()

    @property
    def finished(self) -> bool:
        return self.total_epochs is not None and self.epoch >= self.total_epochs

    def build_model(self) -> GraphNet:
        """The network with these weights, in eval mode."""
        net = self.spec.build()
        try:
            net.load_state_dict(dict(self.state_dict))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(f"{self.path}: the weights do not fit the model "
                                  f"{self.spec.label} ({first})") from None
        return net.eval()


def save_checkpoint(path: str | Path, *, spec: ModelSpec, class_names: Sequence[str],
                    model: torch.nn.Module, epoch: int, batch: int = 0, step: int = 0,
                    total_epochs: int | None = None, recipe: Mapping[str, Any] | None = None,
                    optimizer: torch.optim.Optimizer | None = None,
                    rng: Mapping[str, Any] | None = None,
                    history: Sequence[Mapping[str, Any]] = (),
                    data: Mapping[str, Any] | None = None,
                    epoch_losses: Sequence[Sequence[float]] = ()) -> Path:
    """Write atomically (:func:`artefacts.atomic.atomic_write`: a hidden temporary in the
    same directory, fsynced, then ``os.replace``), so a crash leaves the previous checkpoint
    intact."""
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": spec.to_dict(),
        "class_names": list(class_names),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "epoch": int(epoch),
        "batch": int(batch),
        "step": int(step),
        "total_epochs": None if total_epochs is None else int(total_epochs),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "recipe": dict(recipe or {}),
        "rng": dict(rng or {}),
        "history": [dict(h) for h in history],
        "data": dict(data or {}),
        "epoch_losses": [[float(v) for v in row] for row in epoch_losses],
    }
    atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; :class:`CheckpointError` (one line,
    naming the path) if it is missing, corrupt or not a tinynas checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean "not ours"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(f"'{path}' is not a readable checkpoint ({first})") from None
    check_format(data, CHECKPOINT_FORMAT, lambda found: CheckpointError(
        f"'{path}' is not a tinynas checkpoint (format {found!r}, expected "
        f"{CHECKPOINT_FORMAT!r})"))
    try:
        spec = ModelSpec.from_dict(data["model"])
        class_names = tuple(str(n) for n in data["class_names"])
        if len(class_names) != spec.num_classes:
            raise CheckpointError(f"{path}: {len(class_names)} class names for a "
                                  f"{spec.num_classes}-class model")
        total = data.get("total_epochs")
        return Checkpoint(
            path=path, spec=spec, class_names=class_names, state_dict=data["state_dict"],
            epoch=int(data["epoch"]), batch=int(data.get("batch", 0)),
            step=int(data.get("step", 0)), total_epochs=None if total is None else int(total),
            recipe=data.get("recipe") or {}, optimizer=data.get("optimizer"),
            rng=data.get("rng") or {}, history=tuple(data.get("history") or ()),
            data=data.get("data") or {},
            epoch_losses=tuple(tuple(float(v) for v in row)
                               for row in data.get("epoch_losses") or ()))
    except (GenomeError, BaselineError) as exc:
        raise CheckpointError(f"{path}: its model spec is invalid ({exc})") from None
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: malformed checkpoint ({exc!r})") from None
