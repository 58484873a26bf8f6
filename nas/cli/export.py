"""``tinynas export``: one model to a verified int8 .tflite with its card and C array."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from nas.cli.command import (
    EXIT_DOES_NOT_FIT,
    EXIT_OK,
    Command,
    Output,
    check_new_dir,
    model_arguments,
    resolve_target,
    study_model,
    target_arguments,
)
from nas.cli.formatting import size
from nas.cli.specs import resolve_spec
from nas.errors import UsageError
from nas.export.files import check_out_dir
from search_space.model import as_if_trained
from search_space.spec import ModelSpec

if TYPE_CHECKING:
    from nas.search.trials import TrialModel

# Export ran but the result is unusable (conversion or int8 parity failed): nothing written.
EXIT_EXPORT_FAILED = 3
DEFAULT_TARGET = "stm32h7"
STEPS = 5


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    model_arguments(parser)
    parser.add_argument("--checkpoint", help="trained weights (`tinynas train`; --study/--trial "
                        "use the trial's own once trained); without one, random weights with "
                        "trained-like BatchNorm statistics (sizes and latency are meaningful, "
                        "outputs are not)")
    parser.add_argument("--num-classes", type=int,
                        help="foreground classes when there is no checkpoint (default: the "
                             "baseline's, 20 for a genome)")


def _spec_and_weights(args: argparse.Namespace, trial: TrialModel | None,
                      checkpoint: str | None) -> tuple[ModelSpec, Any, tuple[str, ...], str]:
    """(spec, net, class names, where the weights come from)."""
    named = args.baseline is not None or args.genome is not None or trial is not None
    if checkpoint is None:
        spec = _named_spec(args, trial, args.num_classes)
        names = tuple(f"class_{i + 1}" for i in range(spec.num_classes))
        net = as_if_trained(spec.build()).eval()
        return spec, net, names, ("untrained: random weights, BatchNorm statistics drawn like "
                                  "a trained network's (sizes and latency are meaningful, "
                                  "outputs are not)")
    from objectives.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    if named:
        wanted = _named_spec(args, trial, ckpt.spec.num_classes)
        # A checkpoint of spec format 1 pads symmetrically: compare architectures, not padding.
        wanted = dataclasses.replace(wanted, padding=ckpt.spec.padding)
        if wanted.lower().graph != ckpt.spec.lower().graph:
            raise UsageError(f"--checkpoint '{checkpoint}' holds {ckpt.spec.label}, not "
                             f"{wanted.label}; drop the model name or pick its checkpoint")
    if args.num_classes is not None and args.num_classes != ckpt.spec.num_classes:
        raise UsageError(f"--num-classes {args.num_classes}: the checkpoint has "
                         f"{ckpt.spec.num_classes} classes")
    return (ckpt.spec, ckpt.build_model(), tuple(ckpt.class_names),
            f"checkpoint {checkpoint} (epoch {ckpt.epoch})")


def _named_spec(args: argparse.Namespace, trial: TrialModel | None,
                num_classes: int | None) -> ModelSpec:
    if trial is None:
        return resolve_spec(args.baseline, args.genome, num_classes)
    if num_classes is not None and num_classes < 1:
        raise UsageError(f"--num-classes {num_classes}: must be a positive integer")
    return dataclasses.replace(trial.spec, num_classes=num_classes or trial.spec.num_classes)


def _checkpoint(args: argparse.Namespace, trial: TrialModel | None) -> str | None:
    """--checkpoint, else the trained checkpoint of --study/--trial (when it has one)."""
    if args.checkpoint is not None:
        return args.checkpoint
    return None if trial is None or trial.checkpoint is None else str(trial.checkpoint)


def _training_images(checkpoint: str | None, out: Output
                     ) -> tuple[Path | None, tuple[Path, ...]]:
    """Without --calib, a checkpoint's own training data calibrates the quantisation: the
    activation ranges of the images it will see (synthetic scenes can be far off: a trained
    detector's scores lost all parity with them in our tests). The training split is read as
    training read it (format, class subset, --drop-empty); (folder, its images)."""
    if checkpoint is None:
        return None, ()
    from objectives.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    root = ckpt.data.get("root")
    if root and Path(root).exists():  # a folder, or a YOLO data.yaml
        out.note(f"calibrating on the checkpoint's training data {root} (--calib to change)")
        folder = Path(root) if Path(root).is_dir() else Path(root).parent
        return folder, training_split_images(ckpt)
    out.note("the checkpoint's training data is gone: calibrating on synthetic scenes; give "
             "--calib DIR with images like the deployment's for a faithful int8 file")
    return None, ()


def training_split_images(ckpt: Any) -> tuple[Path, ...]:
    """The images of a checkpoint's training split with its classes, or () when the split
    no longer opens (then the whole folder calibrates)."""
    from objectives.data import DatasetError, open_dataset

    data = ckpt.data
    try:
        dataset = open_dataset(data["root"], data.get("train_split", "train"),
                               format=data.get("format"), subset=ckpt.class_names,
                               require_subset=False, on_error="skip",
                               drop_empty=bool(data.get("drop_empty", False)))
    except DatasetError:
        return ()
    return tuple(r.image for r in dataset.records)


def _study_target(args: argparse.Namespace, trial: TrialModel | None) -> str | None:
    """A search trial is judged on its study's board, runtime, clock and budgets, unless the
    command line says otherwise; anything else on the default board. Returns the note that
    says so; the command prints it only once the rest of the input is known to be good (a
    note before an error line would be noise)."""
    config = trial.config if trial is not None else None
    if not config:
        args.target = args.target or DEFAULT_TARGET
        return None
    if args.target is None:
        args.target = config["target"]
        args.runtime = args.runtime or config["runtime"]
        args.clock = args.clock if args.clock is not None else config["clock_mhz"]
    for key in ("flash", "ram"):
        if getattr(args, key) is None:
            setattr(args, key, str(config[f"{key}_budget"]))
    return (f"{trial.label}: judged on {args.target} with flash {args.flash} B, RAM "
            f"{args.ram} B (the study's; --target/--flash/--ram to change)")


class _Progress:
    """Step lines with elapsed time on the terminal's stderr. The console writes to a copy of
    fd 2 so that the toolchain's C++ logs (redirected away during conversion) do not take
    it along."""

    def __init__(self, enabled: bool) -> None:
        self.console = Console(file=os.fdopen(os.dup(2), "w"), stderr=True) if enabled else None
        self.start = time.perf_counter()
        self.done = 0

    def __call__(self, text: str) -> None:
        self.done += 1
        if self.console is not None:
            elapsed = time.perf_counter() - self.start
            self.console.print(f"[dim]{elapsed:6.1f}s[/] [{self.done}/{STEPS}] {text}",
                               highlight=False)


class ExportCommand(Command):
    name = "export"
    help = "export one model to a verified full-int8 .tflite, model card and C array"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _model_arguments(parser)
        parser.add_argument("--out", required=True, help="output directory (must not exist "
                            "or be empty; written atomically)")
        parser.add_argument("--calib", help="folder of images to calibrate the int8 "
                            "quantisation (default: synthetic scenes)")
        parser.add_argument("--no-offline-plan", dest="offline_plan", action="store_false",
                            help="leave the arena plan out of the file: TFLite Micro then plans "
                            "the arena itself (its greedy planner; the RAM estimate follows)")
        target_arguments(parser, required=False)
        # None, not the board: a --study trial defaults to its study's board (_study_target).
        parser.set_defaults(target=None)

    def run(self, args: argparse.Namespace, out: Output) -> int:
        trial = study_model(args, need_checkpoint=False, need_fit=True)
        judged = _study_target(args, trial)
        target, budgets = resolve_target(args, out)
        out_dir = Path(args.out)
        check_new_dir("--out", out_dir)
        check_out_dir(out_dir)
        calib = Path(args.calib) if args.calib else None
        if calib is not None and not calib.is_dir():
            raise UsageError(f"--calib '{calib}' is not a directory of images")
        checkpoint = _checkpoint(args, trial)
        spec, net, names, weights = _spec_and_weights(args, trial, checkpoint)
        if judged:
            out.note(judged)
        files: tuple[Path, ...] = ()
        if calib is None:
            calib, files = _training_images(checkpoint, out)
        from nas.export import pipeline  # TensorFlow: only once the input is known to be good

        request = pipeline.ExportRequest(spec, target, budgets, net, names, weights, calib,
                                         calib_files=files, offline_plan=args.offline_plan)
        try:
            result = pipeline.run(request, out_dir, _Progress(sys.stderr.isatty() or
                                                              not out.as_json))
        except pipeline.EXPORT_FAILURES as exc:
            sys.stderr.write(f"tinynas export: failed: {exc}\n")
            if args.debug:
                raise
            return EXIT_EXPORT_FAILED
        out.show(result, summary_table)
        return EXIT_OK if result["fits"] else EXIT_DOES_NOT_FIT


def _kib(n: int | None) -> str:
    return size(n, missing="n/a")


def summary_table(r: dict[str, Any]) -> Table:
    table = Table(title=f"{r['name']} -> {r['out_dir']} ({r['target']}, {r['runtime']})")
    for col in ("", "measured", "estimated", "error"):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row(".tflite", _kib(r["tflite_bytes"]), _kib(r["tflite_bytes_estimated"]),
                  f"{r['tflite_bytes_rel_error']:+.2%}")
    table.add_row("TFLM arena (host)", _kib(r["tflm_arena_bytes"]),
                  _kib(r["arena_bytes_estimated"]), f"{r['arena_bytes_rel_error']:+.2%}")
    planned = r.get("arena_head_planned_bytes")
    table.add_row("arena head: default plan / ours / floor",
                  f"{_kib(r.get('tflm_arena_head_default_bytes'))} / "
                  f"{_kib(planned) if planned is not None else 'no plan'} / "
                  f"{_kib(r.get('arena_head_floor_bytes'))}", "", "")
    table.add_row("total flash / budget", _kib(r["flash_bytes_total"]), _kib(r["flash_budget"]),
                  "")
    table.add_row("total RAM / budget", _kib(r["ram_bytes_total"]), _kib(r["ram_budget"]), "")
    table.add_row("LiteRT / TFLM host ms", f"{r['litert_ms']:.2f} / {r['tflm_ms']:.1f}", "", "")
    boxes = r["parity_cosine_boxes"]
    table.add_row("parity cosine boxes / scores",
                  f"{'n/a' if boxes is None else f'{boxes:.4f}'} / "
                  f"{r['parity_cosine_scores']:.4f}", "", "")
    table.add_row("fits", "yes" if r["fits"] else "NO: " + "; ".join(r["violations"]), "", "")
    return table
