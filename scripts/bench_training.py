"""Train three baselines on the demo data with the default recipe; AP50, mAP, time, images/s.

The models: the seed ``etn-w0.35-ssdlite`` at 128 (its genome at a smaller input, see
``search_space.genome.genome_at_resolution``) and at 256, and ST's ``ssd-mbv1-0.25-192``, all
for the demo's 3 classes. Each is trained with ``objectives.train.Recipe()`` (nothing
overridden) and evaluated on the demo's val split at the end.

    .venv/bin/python scripts/bench_training.py [--out DIR] [--json]
    .venv/bin/python scripts/bench_training.py --quick   # a smoke run: small data, 1 epoch
    .venv/bin/python scripts/bench_training.py --int8    # also export each model to int8 and
                                                         # evaluate the .tflite (AP50 int8)

``--quick`` checks that everything runs (small demo set, one epoch, batch 8); its AP says
nothing. The ``chance`` row is a detector that guesses: 100 boxes per image with uniform
centres, sides drawn like the demo's objects (5-45% of the image, log-uniform), random
classes and scores, scored by the same evaluator.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from nas.export.files import LAYOUT
from objectives.data import open_dataset
from objectives.data.demo import demo_dataset
from objectives.evaluate import evaluate
from objectives.train import Recipe, train
from objectives.train_progress import NoProgress, RichProgress
from search_space.baselines import seed_genome
from search_space.detection import Detections
from search_space.genome import genome_at_resolution
from search_space.spec import ModelSpec

NUM_CLASSES = 3


def models() -> dict[str, ModelSpec]:
    return {
        "etn-w0.35-ssdlite@128": ModelSpec(
            NUM_CLASSES, genome=genome_at_resolution(seed_genome(0.35), 128),
            name="etn-w0.35-ssdlite@128"),
        "etn-w0.35-ssdlite": ModelSpec(NUM_CLASSES, baseline="etn-w0.35-ssdlite"),
        "ssd-mbv1-0.25-192": ModelSpec(NUM_CLASSES, baseline="ssd-mbv1-0.25-192"),
    }


class ChancePredictor:
    """Random guesses shaped like the demo's objects: the AP a model must clearly beat."""

    def __init__(self, input_size: int, num_classes: int, seed: int = 0) -> None:
        self.input_size, self.num_classes = input_size, num_classes
        self.rng = np.random.default_rng(seed)

    def detect(self, images: np.ndarray) -> list[Detections]:
        out = []
        for _ in images:
            n = 100
            side = np.exp(self.rng.uniform(np.log(0.05), np.log(0.45), (n, 2)))
            centre = self.rng.uniform(0, 1, (n, 2))
            boxes = np.clip(np.concatenate([centre - side / 2, centre + side / 2], 1), 0, 1)
            scores = np.sort(self.rng.uniform(0, 1, n))[::-1]
            out.append(Detections(boxes.astype(np.float32), scores.astype(np.float32),
                                  self.rng.integers(0, self.num_classes, n)))
        return out


def chance(data: Path) -> dict[str, Any]:
    val_set = open_dataset(data, "val")
    result = evaluate(ChancePredictor(128, val_set.num_classes), val_set)
    return {"model": "chance (random boxes)", "input_size": 128, "priors": 0, "params": 0,
            "epochs": 0, "train_images": 0, "val_images": result.num_images, "wall_s": 0.0,
            "total_s": 0.0, "images_per_s": 0.0, "final_loss": None, "ap50": result.ap50,
            "map": result.map, "ap75": result.ap75, "per_class_ap50": result.per_class_ap50,
            "ap50_int8": None}


def int8_ap50(checkpoint: Path, data: Path, out: Path) -> float | None:
    """Export the checkpoint with ``tinynas export`` and evaluate the int8 file with
    ``tinynas evaluate``: the command lines, so that this measures what a user gets. None when
    the export's parity check refuses the file (exit code 3): a result, not a crash."""
    cli = [sys.executable, "-m", "nas.cli"]
    export = out / "int8"
    # A generous budget: fitting a board is not the question here (exit 1 still writes).
    done = subprocess.run([*cli, "export", "--checkpoint", str(checkpoint), "--out",
                           str(export), "--flash", "64MiB", "--ram", "64MiB", "--json"],
                          capture_output=True, text=True, check=False)
    if done.returncode == 3:
        return None
    if done.returncode not in (0, 1):
        raise RuntimeError(f"export failed: {done.stderr.strip()[-500:]}")
    done = subprocess.run([*cli, "evaluate", str(export / LAYOUT.model), "--data",
                           str(data), "--json"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"int8 evaluation failed: {done.stderr.strip()[-500:]}")
    return float(json.loads(done.stdout)["ap50"])


def run(name: str, spec: ModelSpec, data: Path, out: Path, recipe: Recipe, quiet: bool,
        int8: bool = False) -> dict[str, Any]:
    train_set, val_set = open_dataset(data, "train"), open_dataset(data, "val")
    progress = NoProgress() if quiet else RichProgress(Console(stderr=True))
    started = time.monotonic()
    # The data's root in the checkpoint, as `tinynas train` writes it: the export calibrates
    # its int8 ranges on these training images, as it would for a user's run.
    data_info = {"root": str(data.resolve()), "format": None, "train_split": "train",
                 "val_split": "val"}
    result = train(spec, train_set, out / name, recipe, val_set=val_set, progress=progress,
                   data_info=data_info)
    evaluation = result.evaluation
    assert evaluation is not None
    net = spec.build()
    return {
        "model": name, "input_size": net.arch.input_size, "priors": net.arch.num_priors,
        "params": sum(p.numel() for p in net.parameters()), "epochs": result.epochs,
        "train_images": len(train_set), "val_images": evaluation.num_images,
        "wall_s": round(result.wall_s, 1), "total_s": round(time.monotonic() - started, 1),
        "images_per_s": round(result.images_per_s, 1), "final_loss": result.final_loss,
        "ap50": evaluation.ap50, "map": evaluation.map, "ap75": evaluation.ap75,
        "per_class_ap50": evaluation.per_class_ap50,
        "ap50_int8": int8_ap50(result.checkpoint, data, out / name) if int8 else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: small demo set, 1 epoch, batch 8")
    parser.add_argument("--data", type=Path, help="dataset (default: the demo set)")
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--models", nargs="+", choices=tuple(models()),
                        help="a subset of the models")
    parser.add_argument("--int8", action="store_true",
                        help="export each trained model to int8 and evaluate the .tflite")
    parser.add_argument("--json", action="store_true", help="rows as JSON on stdout")
    args = parser.parse_args()

    recipe = Recipe()
    data = args.data
    if args.quick:
        recipe = dataclasses.replace(recipe, epochs=1, batch_size=8)
        data = data or demo_dataset("small")
    data = data or demo_dataset("default")
    chosen = {k: v for k, v in models().items() if not args.models or k in args.models}
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        out = args.out or Path(tmp)
        rows = [run(name, spec, data, out, recipe, quiet=args.json, int8=args.int8)
                for name, spec in chosen.items()]
    rows.append(chance(data))
    context = {"date": time.strftime("%Y-%m-%d"), "python": platform.python_version(),
               "torch": torch.__version__, "threads": recipe.threads,
               "workers": recipe.workers, "data": str(data), "recipe": recipe.to_dict()}
    if args.json:
        sys.stdout.write(json.dumps({"context": context, "rows": rows}, indent=2) + "\n")
        return 0
    table = Table(title=f"Training on {data} ({context['date']}, torch {context['torch']}, "
                  f"{recipe.threads} thread(s), {recipe.workers} worker(s))")
    for col in ("model", "input", "params", "epochs", "train s", "img/s", "final loss",
                "AP50", "mAP", "AP50 int8", "AP50 per class"):
        table.add_column(col, justify="left" if col in ("model", "AP50 per class") else "right")
    for r in rows:
        per_class = " ".join(f"{k} {100 * v:.1f}" for k, v in r["per_class_ap50"].items()
                             if v is not None)
        loss = "-" if r["final_loss"] is None else f"{r['final_loss']:.3f}"
        table.add_row(r["model"], str(r["input_size"]), f"{r['params']:,}", str(r["epochs"]),
                      f"{r['wall_s']:.0f}", f"{r['images_per_s']:.1f}", loss,
                      f"{100 * r['ap50']:.1f}",
                      f"{100 * r['map']:.1f}",
                      "-" if r["ap50_int8"] is None else f"{100 * r['ap50_int8']:.1f}", per_class)
    # Piped or redirected output has no width: do not squeeze the table into 80 columns.
    Console(width=None if sys.stdout.isatty() else 180).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
