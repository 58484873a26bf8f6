"""``tinynas data demo|inspect``, ``tinynas train`` and ``tinynas evaluate``: thin over
``objectives``.

Long work draws a progress bar on stderr; results go to stdout (a table, or JSON with
``--json``). Without ``--data`` the built-in demo dataset is used (drawn once into the cache).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich import box
from rich.table import Table

from nas.command import (
    EXIT_OK,
    Command,
    Output,
    check_new_dir,
    model_arguments,
    study_arguments,
    study_model,
)
from nas.models import UsageError, load_genome, resolve_spec
from objectives.augment import AUGMENT_PRESETS
from objectives.data import (
    FORMATS,
    ON_ERROR,
    BrokenEntryError,
    DetectionDataset,
    class_list_argument,
    has_split,
    subset_summary,
)
from objectives.data import open_dataset as _open_dataset
from objectives.data.demo import DEMO_CLASSES, DEMO_SIZES, DemoConfig, demo_dataset, write_demo
from objectives.train import (
    CHECKPOINT_NAME,
    OPTIMIZERS,
    Recipe,
    TrainError,
    check_run_dir,
    resume_recipe,
    train,
)
from objectives.train_progress import RichProgress
from search_space.genome import GenomeError, genome_at_resolution
from search_space.spec import SAME, ModelSpec

if TYPE_CHECKING:
    from nas.search.trials import TrialModel

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms])", re.IGNORECASE)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """``90s``, ``10m``, ``1.5h``, ``1h30m`` -> seconds. A bare number is refused: minutes and
    seconds are both plausible, and guessing wrong ruins a run."""
    compact = text.strip().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(f"{n}{u}" for n, u in parts).lower() != compact.lower():
        raise UsageError(f"--time-budget {text!r}: give a duration with units, e.g. 90s, 10m, "
                         "1.5h or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"--time-budget {text!r}: must be longer than zero")
    return seconds


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR",
                        help="dataset directory (COCO, VOC or YOLO layout; default: the "
                        "built-in demo data)")
    parser.add_argument("--format", choices=FORMATS, help="dataset layout (default: detected)")
    parser.add_argument("--bad-annotations", choices=ON_ERROR, default="fail",
                        help="broken entries: fail at the first (default) or skip each with a "
                        "warning")


def _subset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", metavar="NAMES|FILE",
                        help="class subset: names separated by commas (person,car) or a file "
                        "with one name per line; kept in that order, other classes' objects "
                        "are left out")
    parser.add_argument("--drop-empty", action="store_true",
                        help="leave out training images without objects (of the kept "
                        "classes); by default they stay as background")


def _open(root: Path, split: str, args: argparse.Namespace, subset: Any, out: Output, *,
          require: bool = True, drop_empty: bool = False, training: bool = True
          ) -> DetectionDataset:
    """One split, with the class subset (``require``: every name must be a class of the
    data) and the broken-entry policy; what was skipped or left out is noted once
    (``training``: data --drop-empty applies to)."""
    try:
        dataset = _open_dataset(root, split, format=args.format, subset=subset,
                                require_subset=require, on_error=args.bad_annotations,
                                drop_empty=drop_empty)
    except BrokenEntryError as exc:
        raise BrokenEntryError(f"{exc}; --bad-annotations skip skips such entries with a "
                               "warning") from None
    for line in dataset.warnings():
        out.note(line)
    summary = subset_summary(dataset, can_drop=training)
    if summary:
        out.note(summary)
    return dataset


def _class_subset(args: argparse.Namespace) -> tuple[str, ...] | None:
    return class_list_argument(args.classes) if getattr(args, "classes", None) else None


def _data_root(args: argparse.Namespace, out: Output, saved: str | None = None) -> Path:
    if args.data:
        return Path(args.data)
    if saved:
        return Path(saved)
    path = demo_dataset()
    out.note(f"no --data: using the built-in demo dataset ({path})")
    return path


class DataCommand(Command):
    name = "data"
    help = ("datasets: write the built-in demo dataset (data demo --out DIR), or report what "
            "a dataset holds (data inspect DIR)")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                        parser_class=type(parser))
        demo = actions.add_parser("demo", help="write the demo dataset (COCO layout)",
                                  description="Draw the demo dataset from a seed and write it "
                                  "in COCO layout: train.json, train/, val.json, val/.")
        demo.add_argument("--out", required=True, metavar="DIR",
                          help="new or empty directory to write into")
        demo.add_argument("--size", choices=tuple(DEMO_SIZES), default="default",
                          help="small (tests: 48 + 16 images at 160 px) or default "
                          "(1500 + 300 at 256 px)")
        demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        demo.add_argument("--num-train", type=int, help="override the train image count")
        demo.add_argument("--num-val", type=int, help="override the val image count")
        # The common flags again, so they may follow the action too (`data demo --json`).
        demo.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                          help="machine-readable output on stdout")
        demo.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help="show tracebacks on errors")
        demo.set_defaults(command_parser=demo)  # unknown options are checked against demo's
        from nas.data_inspect import add_inspect_parser

        add_inspect_parser(actions)

    def run(self, args: argparse.Namespace, out: Output) -> int:
        if args.action == "inspect":
            from nas.data_inspect import run_inspect

            return run_inspect(args, out)
        out_dir = Path(args.out)
        check_new_dir("--out", out_dir)
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise UsageError(f"--out '{out_dir}' already exists and is not an empty "
                             "directory; choose a new one")
        for flag, count in (("--num-train", args.num_train), ("--num-val", args.num_val)):
            if count is not None and count < 1:
                raise UsageError(f"{flag} {count}: must be at least 1 image")
        base = DEMO_SIZES[args.size]
        config = DemoConfig(**{**base.__dict__, "seed": args.seed,
                               "num_train": args.num_train or base.num_train,
                               "num_val": args.num_val or base.num_val})
        started = time.monotonic()
        with out.notes.status(f"drawing {config.num_train + config.num_val} demo images"):
            path = write_demo(out_dir, config)
        row = {"out_dir": str(path), "format": "coco", "num_train": config.num_train,
               "num_val": config.num_val, "image_size": config.image_size, "seed": config.seed,
               "classes": list(DEMO_CLASSES),
               "seconds": round(time.monotonic() - started, 2)}
        if out.as_json:
            out.emit(row)
        else:
            out.console.print(f"wrote {row['num_train']} train + {row['num_val']} val images "
                              f"({row['image_size']} px, seed {row['seed']}) to {path} in "
                              f"{row['seconds']:.1f}s")
        return EXIT_OK


class TrainCommand(Command):
    name = "train"
    help = "train a detector (SSD) on a dataset, checkpointing every epoch"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        model_arguments(parser, "a detector baseline name")
        parser.add_argument("--resolution", type=int,
                            help="input side for a --genome model (multiple of 32, 96..320)")
        _data_arguments(parser)
        _subset_arguments(parser)
        parser.add_argument("--train-split", default="train", help="default: train")
        parser.add_argument("--val-split", default="val",
                            help="evaluated at the end if present (default: val; 'none' skips)")
        d = Recipe()
        parser.add_argument("--epochs", type=int,
                            help=f"epochs (default {d.epochs}, or as many as fit when only "
                            "--time-budget is given)")
        parser.add_argument("--time-budget", metavar="T",
                            help="stop after this much training, e.g. 10m, 90s, 1h30m")
        parser.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
        parser.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {d.optimizer}")
        parser.add_argument("--lr", type=float, help=f"peak learning rate (default {d.lr:g})")
        parser.add_argument("--weight-decay", type=float, help=f"default {d.weight_decay:g}")
        parser.add_argument("--augment", choices=tuple(AUGMENT_PRESETS),
                            help="flip (default), none, or ssd (photometric, zoom-out, crop, "
                            "flip: for long schedules)")
        parser.add_argument("--seed", type=int, help=f"default {d.seed}")
        parser.add_argument("--workers", type=int,
                            help=f"data-loading processes (default {d.workers})")
        parser.add_argument("--threads", type=int,
                            help=f"torch compute threads (default {d.threads}: cores - 1)")
        parser.add_argument("--out", required=True, metavar="DIR",
                            help="run directory: last.pt (checkpoint) and summary.json")
        parser.add_argument("--resume", action="store_true",
                            help="continue the run in --out from its last checkpoint")

    def run(self, args: argparse.Namespace, out: Output) -> int:
        from objectives.checkpoint import load_checkpoint

        trial = study_model(args, need_checkpoint=False)
        budget = parse_duration(args.time_budget) if args.time_budget else None
        out_dir = Path(args.out)
        ckpt = None
        if args.resume:
            if not (out_dir / CHECKPOINT_NAME).is_file():
                raise TrainError(f"--resume: no checkpoint '{out_dir / CHECKPOINT_NAME}'")
            ckpt = load_checkpoint(out_dir / CHECKPOINT_NAME)
        elif args.baseline is None and args.genome is None and trial is None:
            raise UsageError("name exactly one model: a BASELINE name, --genome FILE.json or "
                             "--study S --trial N (or --resume a run)")
        if args.baseline is not None or args.genome is not None:
            resolve_spec(args.baseline, args.genome)  # a bad name fails before data is read
        _check_resolution(args, trial, resumed=ckpt is not None)
        _check_out(out_dir, args.resume)

        overrides = {k: v for k, v in {
            "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer,
            "lr": args.lr, "weight_decay": args.weight_decay, "seed": args.seed,
            "augment": AUGMENT_PRESETS[args.augment] if args.augment else None}.items()
            if v is not None}
        runtime = {"time_budget_s": budget, "workers": args.workers, "threads": args.threads}
        if ckpt is not None:
            recipe = dataclasses.replace(resume_recipe(ckpt, **runtime), **overrides)
        else:
            if budget is not None and args.epochs is None:
                overrides["epochs"] = None
            recipe = Recipe(**overrides, **{k: v for k, v in runtime.items() if v is not None})

        saved = dict(ckpt.data) if ckpt is not None else {}
        if trial is not None and ckpt is None and trial.data_root:
            saved["root"] = trial.data_root  # the data the search scored the trial on
        # The classes before the data: a bad --classes must not follow the demo-data note.
        subset, require, drop_empty = _train_classes(args, ckpt, trial)
        root = _data_root(args, out, saved.get("root"))
        train_split = saved.get("train_split", args.train_split) if not args.data \
            else args.train_split
        val_split = saved.get("val_split", args.val_split) if not args.data else args.val_split
        train_set = _open(root, train_split, args, subset, out, require=require,
                          drop_empty=drop_empty)
        val_set = None
        if val_split and val_split != "none" and has_split(root, val_split, args.format):
            # Every val image is kept: background images are where false positives show.
            val_set = _open(root, val_split, args, train_set.class_names, out, require=False,
                            training=False)
        elif val_split and val_split != "none":
            out.note(f"no split {val_split!r} in {root}: no evaluation at the end")

        spec = self._spec(args, ckpt, train_set, trial)
        data_info = {"root": str(root.resolve()), "format": args.format,
                     "train_split": train_split, "val_split": val_split or "none",
                     "drop_empty": drop_empty}
        with RichProgress(out.notes) as progress:
            result = train(spec, train_set, out_dir, recipe, val_set=val_set,
                           resume=args.resume, progress=progress, data_info=data_info)
        row = {"model": spec.label, **result.to_dict()}
        if out.as_json:
            out.emit(row)
        else:
            out.console.print(_train_table(row))
        return EXIT_OK

    @staticmethod
    def _spec(args: argparse.Namespace, ckpt: Any, train_set: DetectionDataset,
              trial: TrialModel | None) -> ModelSpec:
        named = args.baseline is not None or args.genome is not None or trial is not None
        if ckpt is not None and not named:
            if args.resolution is not None:
                raise UsageError("--resolution cannot change on --resume")
            return ckpt.spec
        if trial is not None:
            # The trial's architecture with the data's class count, as for a --genome model.
            # A new training: today's padding, whatever the trial's spec format was.
            spec = dataclasses.replace(trial.spec, num_classes=train_set.num_classes,
                                       padding=SAME)
        else:
            spec = resolve_spec(args.baseline, args.genome, train_set.num_classes)
        if args.resolution is not None:
            if spec.genome is None:
                raise UsageError(f"--resolution {args.resolution}: applies to --genome models; "
                                 f"baseline {spec.baseline} has a fixed input size")
            spec = ModelSpec(spec.num_classes,
                             genome=genome_at_resolution(spec.genome, args.resolution),
                             name=spec.name)
        return spec


def _train_classes(args: argparse.Namespace, ckpt: Any, trial: TrialModel | None
                   ) -> tuple[tuple[str, ...] | None, bool, bool]:
    """(class subset, whether each name must be in the data, --drop-empty) for training.

    A resumed run keeps its checkpoint's classes and --drop-empty; a study's trial its
    study's classes (the ones it was scored on), unless --classes says otherwise."""
    if ckpt is not None:
        drop_empty = bool(ckpt.data.get("drop_empty", False))
        if args.classes or (args.drop_empty and not drop_empty):
            flag = "--classes" if args.classes else "--drop-empty"
            raise UsageError(f"{flag} cannot change on --resume: the run trains on classes "
                             f"{', '.join(ckpt.class_names)}"
                             f"{' without empty images' if drop_empty else ''}")
        return tuple(ckpt.class_names), False, drop_empty
    subset = _class_subset(args)
    config = trial.config if trial is not None else None
    if subset is None and config and not args.data:
        return (tuple(config["class_names"]), False,
                args.drop_empty or bool(config.get("drop_empty", False)))
    return subset, True, args.drop_empty


def _check_resolution(args: argparse.Namespace, trial: TrialModel | None,
                      resumed: bool) -> None:
    """--resolution before the data is read: it needs a genome, and a valid size for it."""
    if args.resolution is None:
        return
    named = args.baseline is not None or args.genome is not None or trial is not None
    if resumed and not named:
        raise UsageError("--resolution cannot change on --resume")
    genome = load_genome(args.genome) if args.genome else (
        trial.spec.genome if trial is not None else None)
    if genome is None:
        model = args.baseline or (trial.spec.label if trial is not None else "the model")
        raise UsageError(f"--resolution {args.resolution}: applies to --genome models; "
                         f"baseline {model} has a fixed input size")
    try:
        genome_at_resolution(genome, args.resolution)
    except GenomeError as exc:
        raise UsageError(f"--resolution {args.resolution}: {exc}") from None


def _check_out(out_dir: Path, resume: bool) -> None:
    """--out before the data is read: a directory that can be created, empty unless resumed
    (training checks again when it starts)."""
    check_new_dir("--out", out_dir)
    if not resume:
        check_run_dir(out_dir, resume)


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
        _data_arguments(parser)
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
        root = _data_root(args, out, saved_root)
        # The model's classes, in its id order; the data's other classes are left out.
        dataset = _open(root, args.split, args, class_names, out, require=False,
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
        if out.as_json:
            out.emit(row)
        else:
            out.console.print(_eval_table(row))
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
    only = _class_subset(args)
    if only is None:
        return None
    if class_names is None:
        raise UsageError(f"--classes: {label} does not record its class names")
    missing = [n for n in only if n not in class_names]
    if missing:
        raise UsageError(f"--classes: {', '.join(map(repr, missing))} is not a class of "
                         f"{label}; its classes are {', '.join(map(repr, class_names))}")
    return only


def _ap(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _eval_table(row: dict[str, Any]) -> Table:
    table = Table(title=f"{row['model']} on {row['data']} ({row['split']}, {row['num_images']} "
                  f"images at {row['input_size']} px)", box=box.SIMPLE_HEAD,
                  caption="COCO AP (pycocotools), in %; '-' = class absent from the split")
    table.add_column("metric")
    table.add_column("AP", justify="right")
    for key, label in (("map", "mAP@[.5:.95]"), ("ap50", "AP50"), ("ap75", "AP75")):
        table.add_row(label, _ap(row[key]))
    for name, value in row["per_class_ap50"].items():
        table.add_row(f"AP50 {name}", _ap(value))
    return table


def _train_table(row: dict[str, Any]) -> Table:
    table = Table(title=f"trained {row['model']}", show_header=False, box=box.SIMPLE_HEAD)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("epochs", f"{row['epochs']} of {row['total_epochs']} ({row['stopped_by']})")
    table.add_row("training time", f"{row['wall_s']:.0f} s at {row['images_per_s']:.1f} img/s")
    if row["final_loss"] is not None:
        table.add_row("final loss", f"{row['final_loss']:.3f}")
    if "map" in row:
        table.add_row("val mAP / AP50", f"{_ap(row['map'])} / {_ap(row['ap50'])}")
    table.add_row("checkpoint", row["checkpoint"])
    return table
