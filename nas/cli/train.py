"""``tinynas train``: train a detector (SSD) on a dataset, checkpointing every epoch (thin
over ``objectives.train``).

Training draws a progress bar on stderr; the result goes to stdout (a table, or JSON with
``--json``). Without ``--data`` the built-in demo dataset is used (drawn once into the cache).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

from nas.cli.command import (
    EXIT_OK,
    Command,
    Output,
    check_new_dir,
    model_arguments,
    parse_duration,
    study_model,
)
from nas.cli.data_args import (
    class_subset,
    data_arguments,
    data_root,
    open_split,
    subset_arguments,
)
from nas.cli.formatting import ap
from nas.cli.specs import load_genome, resolve_spec
from nas.errors import UsageError
from objectives.augment import AUGMENT_PRESETS
from objectives.data import DetectionDataset, has_split
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


class TrainCommand(Command):
    name = "train"
    help = "train a detector (SSD) on a dataset, checkpointing every epoch"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        model_arguments(parser, "a detector baseline name")
        parser.add_argument("--resolution", type=int,
                            help="input side for a --genome model (multiple of 32, 96..320)")
        data_arguments(parser)
        subset_arguments(parser)
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
        root = data_root(args, out, saved.get("root"))
        train_split = saved.get("train_split", args.train_split) if not args.data \
            else args.train_split
        val_split = saved.get("val_split", args.val_split) if not args.data else args.val_split
        train_set = open_split(root, train_split, args, subset, out, require=require,
                          drop_empty=drop_empty)
        val_set = None
        if val_split and val_split != "none" and has_split(root, val_split, args.format):
            # Every val image is kept: background images are where false positives show.
            val_set = open_split(root, val_split, args, train_set.class_names, out, require=False,
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
        out.show(row, _train_table)
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
    subset = class_subset(args)
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


def _train_table(row: dict[str, Any]) -> Table:
    table = Table(title=f"trained {row['model']}", show_header=False, box=box.SIMPLE_HEAD)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("epochs", f"{row['epochs']} of {row['total_epochs']} ({row['stopped_by']})")
    table.add_row("training time", f"{row['wall_s']:.0f} s at {row['images_per_s']:.1f} img/s")
    if row["final_loss"] is not None:
        table.add_row("final loss", f"{row['final_loss']:.3f}")
    if "map" in row:
        table.add_row("val mAP / AP50", f"{ap(row['map'])} / {ap(row['ap50'])}")
    table.add_row("checkpoint", row["checkpoint"])
    return table

