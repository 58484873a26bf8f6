"""``tinynas evaluate``: COCO mAP / AP50 of a checkpoint or an int8 .tflite on a dataset
(thin over ``objectives.evaluate``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich import box
from rich.table import Table

from nas.cli.command import EXIT_OK, Command, Output, study_arguments, study_model
from nas.cli.data_args import class_subset, data_arguments, data_root, open_split
from nas.cli.formatting import ap
from nas.errors import UsageError
from objectives.train_progress import RichProgress

T = TypeVar("T")


T = TypeVar("T")


def _same_threads_as_training(fn: Callable[[], T]) -> T:
    """Run with training's torch thread count: float sums differ with the thread count, and
    near-tied scores then reorder, so a checkpoint would not score what training reported."""
    import torch

    from objectives.train import default_threads

    before = torch.get_num_threads()
    torch.set_num_threads(default_threads())
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


class EvaluateCommand(Command):
    name = "evaluate"
    help = "COCO mAP / AP50 of a checkpoint (or an int8 .tflite) on a dataset"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", metavar="CKPT|MODEL.tflite", nargs="?",
                            help="a training checkpoint (last.pt) or an exported .tflite")
        parser.add_argument("--trial", type=int, metavar="N",
                            help="instead of a file: trial N of --study, trained (its "
                            "checkpoint)")
        study_arguments(parser, default_study=None)
        data_arguments(parser)
        parser.add_argument("--classes", metavar="NAMES|FILE",
                            help="score only these of the model's classes (names separated by "
                            "commas, or a file); default: all of them")
        parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
        parser.add_argument("--batch-size", type=int, default=16)

    def run(self, args: argparse.Namespace, out: Output) -> int:
        from objectives.checkpoint import load_checkpoint
        from objectives.evaluate import TorchPredictor, evaluate

        path, saved_root = self._model_path(args)
        if args.batch_size < 1:
            raise UsageError(f"--batch-size {args.batch_size}: must be at least 1")
        if path.suffix == ".tflite":
            predictor, class_names, label = self._tflite(path)
        else:
            ckpt = load_checkpoint(path)
            predictor = TorchPredictor(ckpt.build_model())
            class_names, label = ckpt.class_names, ckpt.spec.label
        only = _scored_classes(args, class_names, label)
        root = data_root(args, out, saved_root)
        # The model's classes, in its id order; the data's other classes are left out.
        dataset = open_split(root, args.split, args, class_names, out, require=False,
                        training=False)
        with RichProgress(out.notes) as progress:
            progress.start("evaluate", len(dataset))
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                progress.update(done)

            result = _same_threads_as_training(
                lambda: evaluate(predictor, dataset, args.batch_size, on_batch=step,
                                 classes=only))
        row = {"model": label, "data": str(root), "split": args.split,
               "input_size": predictor.input_size, **result.to_dict()}
        out.show(row, _eval_table)
        return EXIT_OK

    @staticmethod
    def _model_path(args: argparse.Namespace) -> tuple[Path, str | None]:
        """(the file to evaluate, the data it was trained on when known)."""
        trial = study_model(args, need_checkpoint=True)
        if trial is None:
            if args.model is None:
                raise UsageError("name the model: a checkpoint (last.pt), an exported "
                                 ".tflite, or --study S --trial N")
            return Path(args.model), None
        if args.model is not None:
            raise UsageError(f"name one model: {args.model} or --study/--trial, not both")
        return trial.checkpoint, trial.data_root  # type: ignore[return-value]

    @staticmethod
    def _tflite(path: Path) -> tuple[Any, Any, str]:
        try:
            from nas.detector import DetectorError, load_detector  # the int8 runner
        except ImportError:
            raise UsageError(f"{path}: int8 evaluation needs the export module") from None
        try:
            detector = load_detector(path)
        except DetectorError as exc:
            # The detector names the file at fault (often genome.json beside the model):
            # say which model was asked for too.
            raise UsageError(f"{path}: cannot evaluate it: {exc}") from None
        return detector, getattr(detector, "class_names", None), path.name


def _scored_classes(args: argparse.Namespace, class_names: Any, label: str
                    ) -> tuple[str, ...] | None:
    """evaluate --classes: a subset of the model's classes to score (checked before data)."""
    only = class_subset(args)
    if only is None:
        return None
    if class_names is None:
        raise UsageError(f"--classes: {label} does not record its class names")
    missing = [n for n in only if n not in class_names]
    if missing:
        raise UsageError(f"--classes: {', '.join(map(repr, missing))} is not a class of "
                         f"{label}; its classes are {', '.join(map(repr, class_names))}")
    return only



def _eval_table(row: dict[str, Any]) -> Table:
    table = Table(title=f"{row['model']} on {row['data']} ({row['split']}, {row['num_images']} "
                  f"images at {row['input_size']} px)", box=box.SIMPLE_HEAD,
                  caption="COCO AP (pycocotools), in %; '-' = class absent from the split")
    table.add_column("metric")
    table.add_column("AP", justify="right")
    for key, label in (("map", "mAP@[.5:.95]"), ("ap50", "AP50"), ("ap75", "AP75")):
        table.add_row(label, ap(row[key]))
    for name, value in row["per_class_ap50"].items():
        table.add_row(f"AP50 {name}", ap(value))
    return table

