"""``tinynas estimate --proxy [NAME] [--data DIR]``: the estimate of a model with its accuracy
proxy score (command-line glue; the scoring is :func:`nas.search.scoring.score_spec`, as in a
search's trials).

One model is both estimated and scored. With ``--proxy`` it is sized for the data's classes, as
a search sizes its trials, unless ``--num-classes N`` is given: the row's ``num_classes``,
priors, params, flash, RAM and latency are that model's, so they can differ from a plain
``estimate`` (a baseline's published class count, 20 for a genome). A training proxy trains
that model on the data, so it refuses a ``--num-classes`` other than the data's class count.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from estimators.estimate import Budgets
from estimators.targets import Target
from nas.cli.command import Output, proxy_help, resolve_proxy
from nas.cli.data_args import (
    class_subset,
    data_arguments,
    data_root,
    open_split,
    subset_arguments,
)
from nas.cli.estimate_row import model_row
from nas.cli.estimate_tflite import is_tflite_path
from nas.cli.specs import resolve_spec
from nas.errors import UsageError
from objectives.data import DetectionDataset, has_split
from objectives.data.demo import DEMO_CLASSES
from search_space.baselines import list_baselines
from search_space.model import DETECTION


def proxy_arguments(parser: argparse.ArgumentParser) -> None:
    # const "": --proxy without NAME means the default proxy, resolved when it runs.
    parser.add_argument("--proxy", nargs="?", const="", metavar="NAME", help=proxy_help(
        "also score the model with an accuracy proxy, NAME[:KEY=VALUE,...] (README, Accuracy "
        "proxies); without NAME the default (the measured best). The model is then sized for "
        "the data's classes unless --num-classes"))
    data_arguments(parser)
    subset_arguments(parser)
    parser.add_argument("--seed", type=int, default=0,
                        help="the proxy's seed (default 0; a study's --seed gives its trials' "
                        "scores)")


@dataclass(frozen=True)
class ProxyRequest:
    """What ``--proxy`` asks for, checked before any data is read."""

    name: str  # as given, or the default proxy's name
    trains: bool
    subset: tuple[str, ...] | None  # --classes


def proxy_request(args: argparse.Namespace) -> ProxyRequest | None:
    """``--proxy`` and the data flags, checked before any file is read (None without
    ``--proxy``, after refusing data flags that would then be ignored)."""
    if args.proxy is None:
        _refuse_data_flags(args)
        return None
    if is_tflite_path(args.baseline):
        raise UsageError(f"--proxy scores a model spec (a BASELINE or --genome FILE), not the "
                         f"file {args.baseline}: drop --proxy, or name the model it came from")
    name, trains = _resolve(args)
    resolve_spec(args.baseline, args.genome, args.num_classes)  # a bad model fails here
    if args.baseline is not None and args.baseline not in _detectors():
        raise UsageError(f"--proxy scores detectors; baseline {args.baseline} is a classifier "
                         f"(detectors: {', '.join(sorted(_detectors()))})")
    subset = class_subset(args)
    if trains and not args.data:  # the demo data's classes are known without drawing it
        _check_class_count(args, name, subset or DEMO_CLASSES)
    return ProxyRequest(name, trains, subset)


def _resolve(args: argparse.Namespace) -> tuple[str, bool]:
    try:
        return resolve_proxy(args.proxy or None)
    except UsageError as exc:
        if args.baseline is None and args.genome is None:
            # `estimate --target T --proxy BASELINE`: argparse gave the model to --proxy.
            raise UsageError(f"{exc}; a model named right after --proxy is read as the proxy: "
                             "name the model first (estimate BASELINE --proxy ...)") from None
        raise


def _detectors() -> set[str]:
    return {b.name for b in list_baselines(DETECTION)}


def _refuse_data_flags(args: argparse.Namespace) -> None:
    given = [flag for flag, value in (
        ("--data", args.data), ("--format", args.format), ("--classes", args.classes),
        ("--drop-empty", args.drop_empty), ("--seed", args.seed != 0),
        ("--bad-annotations", args.bad_annotations != "fail")) if value]
    if given:
        raise UsageError(f"{given[0]} goes with --proxy (the data and seed an accuracy proxy "
                         f"scores with): add --proxy [NAME] (the default proxy without NAME) "
                         f"or drop {given[0]}")


def _check_class_count(args: argparse.Namespace, proxy: str, classes: tuple[str, ...]) -> None:
    """A training proxy trains the model on the data: its class count must be the data's."""
    if args.num_classes is None or args.num_classes == len(classes):
        return
    raise UsageError(f"--num-classes {args.num_classes}: proxy {proxy} trains the model on the "
                     f"data's {len(classes)} classes ({', '.join(classes)}); drop "
                     f"--num-classes (the model is then sized for the data) or give "
                     f"{len(classes)}")


def scored_row(args: argparse.Namespace, out: Output, request: ProxyRequest, target: Target,
               budgets: Budgets) -> dict[str, Any]:
    """The estimate row of the model sized for the data, with the proxy's keys."""
    from nas.search.scoring import score_spec
    from objectives.proxies import ProxyError

    root = data_root(args, out)
    train = open_split(root, "train", args, request.subset, out, drop_empty=args.drop_empty)
    val = _val_split(args, out, root, train)
    if request.trains:
        _check_class_count(args, request.name, tuple(train.class_names))
    spec = resolve_spec(args.baseline, args.genome, args.num_classes or train.num_classes)
    with out.notes.status(f"scoring {spec.label} with proxy {request.name}"):
        try:
            scored = score_spec(spec, request.name, train, val, args.seed)
        except ProxyError as exc:
            missing = "" if val is not None else " (the data has no 'val' split)"
            raise UsageError(f"--proxy {request.name} on '{root}': {exc}{missing}") from None
    return {**model_row(spec.lower(), target, budgets), "proxy": scored.score,
            "proxy_name": scored.name, "proxy_components": scored.components,
            "proxy_seconds": scored.seconds, "proxy_data": str(root.resolve())}


def _val_split(args: argparse.Namespace, out: Output, root: Path, train: DetectionDataset
               ) -> DetectionDataset | None:
    """The val split when the data has one, with the training classes (as a search reads
    it): a training proxy measures AP50 on it."""
    if not has_split(root, "val", args.format):
        return None
    return open_split(root, "val", args, train.class_names, out, require=False, training=False)
