"""``tinynas data inspect DIR``: what a dataset looks like to a detector (thin over
``objectives.data.report``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from nas.cli.command import EXIT_OK, Output, check_new_dir
from nas.errors import UsageError
from objectives.data import (
    FORMATS,
    DatasetError,
    class_list_argument,
    detect_format,
    has_split,
    list_splits,
    open_dataset,
)
from objectives.data.report import build_report, sides_per_split, summary_lines, write_histogram

DEFAULT_RESOLUTION = 256  # the seed detector's input
RESOLUTIONS = (16, 4096)


def add_inspect_parser(actions: Any) -> None:
    inspect = actions.add_parser(
        "inspect", help="layout, classes, objects per class and split, problems, object sizes",
        description="Read a dataset as training would (every problem listed, none fatal) and "
        "report its layout, images and objects per class and split, the broken entries, and "
        "object sizes at the model's input with a PNG histogram that marks the seed SSDLite's "
        "smallest priors.")
    inspect.add_argument("dir", metavar="DIR", help="dataset folder (COCO, VOC or YOLO), or a "
                         "YOLO data.yaml")
    inspect.add_argument("--split", help="only this split (default: every split found)")
    inspect.add_argument("--resolution", type=int, default=DEFAULT_RESOLUTION, metavar="R",
                         help=f"model input side in pixels (default {DEFAULT_RESOLUTION})")
    inspect.add_argument("--format", choices=FORMATS, help="dataset layout (default: detected)")
    inspect.add_argument("--classes", metavar="NAMES|FILE",
                         help="inspect only these classes (names separated by commas, or a "
                         "file)")
    inspect.add_argument("--plot", metavar="PATH", help="histogram PNG (default: "
                         "DIRNAME-sizes.png in the current directory; 'none' for no plot)")
    inspect.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                         help="machine-readable output on stdout")
    inspect.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks on errors")
    inspect.set_defaults(command_parser=inspect)


def _plot_path(args: argparse.Namespace, root: Path) -> Path | None:
    if args.plot == "none":
        return None
    path = Path(args.plot) if args.plot else Path(f"{root.resolve().name or 'dataset'}-sizes.png")
    if path.is_dir():
        raise UsageError(f"--plot '{path}' is a directory; give a .png file path")
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"--plot '{path}': '{path.parent}' is a file, not a directory; choose "
                         "a path in a directory")
    if path.suffix.lower() != ".png":
        raise UsageError(f"--plot '{path}': the histogram is a PNG; give a path ending in .png "
                         "(or 'none')")
    check_new_dir("--plot", path.parent)
    return path


def run_inspect(args: argparse.Namespace, out: Output) -> int:
    root = Path(args.dir)
    low, high = RESOLUTIONS
    if not low <= args.resolution <= high:
        raise UsageError(f"--resolution {args.resolution}: give the model's input side in "
                         f"pixels, {low}..{high}")
    subset = class_list_argument(args.classes) if args.classes else None
    plot = _plot_path(args, root)
    fmt = args.format or _format_of(root, args.split)
    splits = _splits(root, fmt, args.split)
    datasets = {s: open_dataset(root, s, format=fmt, subset=subset, on_error="skip")
                for s in splits}
    report = build_report(root, fmt, datasets, args.resolution)
    if plot is not None:
        report["plot"] = str(write_histogram(plot, report, sides_per_split(datasets)))
    out.show(report, lambda found: _print(out, found))
    return EXIT_OK


def _format_of(root: Path, split: str | None) -> str:
    """The layout, judged by ``split`` or whichever of the usual splits the folder has (a
    missing ``split`` is then named as such, not as a missing layout)."""
    for candidate in dict.fromkeys((split or "train", "train", "val", "test")):
        try:
            return detect_format(root, candidate)
        except DatasetError:
            continue
    return detect_format(root, split or "train")  # raises, naming what was looked for


def _splits(root: Path, fmt: str, split: str | None) -> list[str]:
    if split is not None:
        if not has_split(root, split, fmt):
            found = list_splits(root, fmt)
            raise DatasetError(f"{root}: no split {split!r} ({fmt}); it has "
                               f"{', '.join(found) if found else 'none'}")
        return [split]
    found = list_splits(root, fmt)
    if not found:
        raise DatasetError(f"{root}: no split found in its {fmt} layout")
    return found


def _print(out: Output, report: dict[str, Any]) -> None:
    splits = report["splits"]
    table = Table(title=f"{report['root']} ({report['format']}, {len(report['classes'])} "
                  "classes)", box=box.SIMPLE_HEAD)
    table.add_column("class")
    for name in splits:
        table.add_column(f"{name} objects / images", justify="right")
    for cls in report["classes"]:
        table.add_row(cls, *(f"{s['objects_per_class'][cls]} / {s['images_per_class'][cls]}"
                             for s in splits.values()))
    table.add_row("all", *(f"{s['objects']} / {s['images']}" for s in splits.values()),
                  end_section=True)
    table.add_row("background images", *(str(s["background_images"])
                                         for s in splits.values()))
    out.console.print(table)
    q = report["box_side_quantiles"]
    if q["fraction"] is not None:
        sizes = Table(title=f"object side sqrt(w*h) at {report['resolution']} px",
                      box=box.SIMPLE_HEAD)
        sizes.add_column("")
        for level in q["quantiles"]:
            sizes.add_column({0.0: "min", 1.0: "max"}.get(level, f"p{round(level * 100):02d}"),
                             justify="right")
        sizes.add_row("pixels", *(f"{v:.1f}" for v in q["pixels"]))
        sizes.add_row("fraction", *(f"{v:.3f}" for v in q["fraction"]))
        out.console.print(sizes)
        priors = report["seed_priors"]
        shown = ", ".join(f"{p:.0f} px" for p in priors["pixels"])
        out.console.print(f"smallest priors of {priors['baseline']}: {shown}; "
                          f"{priors['objects_under_iou_0_5']} objects are too small to reach "
                          "IoU 0.5 with any of them")
    for line in summary_lines(report):
        out.console.print(line, highlight=False)
    if "plot" in report:
        out.console.print(f"histogram: {report['plot']}")
