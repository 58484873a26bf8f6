"""``tinynas data demo|inspect``: write the built-in demo dataset, or report what a dataset
holds (``inspect``: :mod:`nas.cli.data_inspect`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from nas.cli.command import EXIT_OK, Command, Output, check_new_dir
from nas.errors import UsageError
from objectives.data.demo import DEMO_CLASSES, DEMO_SIZES, DemoConfig, write_demo


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
        from nas.cli.data_inspect import add_inspect_parser

        add_inspect_parser(actions)

    def run(self, args: argparse.Namespace, out: Output) -> int:
        if args.action == "inspect":
            from nas.cli.data_inspect import run_inspect

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
        out.show(row, _demo_text)
        return EXIT_OK


def _demo_text(row: dict[str, Any]) -> str:
    return (f"wrote {row['num_train']} train + {row['num_val']} val images "
            f"({row['image_size']} px, seed {row['seed']}) to {row['out_dir']} in "
            f"{row['seconds']:.1f}s")
