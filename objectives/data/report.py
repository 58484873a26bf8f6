"""What a dataset looks like to a detector (``tinynas data inspect``).

Per split: images, objects, background images and objects per class; broken entries found
(the dataset is read with ``on_error="skip"``, so every problem is listed rather than the
first raised); and the object sizes that decide input resolution and priors. An object's side
is ``sqrt(w * h)`` of its box, the convention SSD's prior scales use (a prior of scale ``s`` and
any aspect ratio has ``sqrt(w * h) = s``), as a fraction of the image side and in pixels at the
model's square input (the resize does not keep the aspect ratio, so a normalised box becomes
``w * R`` by ``h * R`` pixels).

The reference lines are the seed SSDLite's smallest priors (those of its finest feature map),
read from the seed baseline's own priors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from objectives.data.dataset import DetectionDataset

SEED_BASELINE = "etn-w0.35-ssdlite"
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
# Concentric squares of sides a < b overlap with IoU (a / b)^2: an object under 1/sqrt(2) of
# the smallest prior's side reaches IoU 0.5 with no prior, and is matched only by the
# best-prior rule.
UNDER_PRIOR = 1 / np.sqrt(2)
_LABEL = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1}


@dataclass(frozen=True)
class SeedPriors:
    baseline: str
    sides: tuple[float, ...]  # distinct sqrt(w * h) of the finest map's priors, fractions


def seed_priors() -> SeedPriors:
    """The seed detector's smallest prior sizes, from its priors (not restated here)."""
    from search_space.baselines import get_baseline

    arch = get_baseline(SEED_BASELINE)
    finest = arch.map_sizes[0] ** 2 * arch.anchors[0].boxes_per_cell
    wh = arch.priors()[:finest, 2:]
    sides: list[float] = []
    for side in sorted(float(np.sqrt(w * h)) for w, h in wh):
        if not sides or side > sides[-1] * (1 + 1e-4):  # a ratio's sqrt(w*h) is s to rounding
            sides.append(side)
    return SeedPriors(SEED_BASELINE, tuple(round(s, 6) for s in sides))


def box_sides(dataset: DetectionDataset) -> np.ndarray:
    """sqrt(w * h) of every object, as a fraction of the image side."""
    parts = [np.sqrt((r.boxes[:, 2] - r.boxes[:, 0]) * (r.boxes[:, 3] - r.boxes[:, 1]))
             for r in dataset.records if len(r.boxes)]
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)


def split_row(dataset: DetectionDataset) -> dict[str, Any]:
    objects: Counter[int] = Counter()
    images: Counter[int] = Counter()
    for record in dataset.records:
        objects.update(record.labels.tolist())
        images.update(set(record.labels.tolist()))
    names = dataset.class_names
    return {"source": dataset.source, "images": len(dataset), "objects": dataset.num_objects,
            "background_images": sum(1 for r in dataset.records if not len(r.labels)),
            "crowd_regions": sum(len(r.crowd_labels) for r in dataset.records),
            "objects_per_class": {n: objects[i] for i, n in enumerate(names)},
            "images_per_class": {n: images[i] for i, n in enumerate(names)},
            "left_out_objects": dict(dataset.dropped_objects),
            "left_out_images": dataset.dropped_images}


def _quantiles(values: np.ndarray) -> list[float] | None:
    if not len(values):
        return None
    return [round(float(v), 6) for v in np.quantile(values, QUANTILES)]


def build_report(root: Path, format: str, datasets: dict[str, DetectionDataset],
                 resolution: int) -> dict[str, Any]:
    """The ``data inspect`` answer for the opened splits (JSON-ready)."""
    first = next(iter(datasets.values()))
    classes = list(first.class_names)
    splits = {name: split_row(ds) for name, ds in datasets.items()}
    per_class = {n: sum(s["objects_per_class"].get(n, 0) for s in splits.values())
                 for n in classes}
    sides = np.concatenate([box_sides(ds) for ds in datasets.values()])
    priors = seed_priors()
    smallest = min(priors.sides)
    fraction = _quantiles(sides)
    problems = [{"split": name, "kind": p.kind, "file": p.file, "entry": p.entry,
                 "detail": p.detail} for name, ds in datasets.items() for p in ds.problems]
    return {
        "root": str(root), "format": format, "resolution": resolution, "classes": classes,
        "splits": splits, "objects_per_class": per_class,
        "box_side_quantiles": {
            "quantiles": list(QUANTILES), "fraction": fraction,
            "pixels": None if fraction is None else [round(v * resolution, 2)
                                                     for v in fraction]},
        "seed_priors": {"baseline": priors.baseline, "fraction": list(priors.sides),
                        "pixels": [round(s * resolution, 2) for s in priors.sides],
                        "objects_under_iou_0_5": int(np.sum(sides < smallest * UNDER_PRIOR))},
        "problems": problems,
    }


def write_histogram(path: Path, report: dict[str, Any],
                    sides_by_split: dict[str, np.ndarray]) -> Path:
    """Histogram of object sides in pixels at the report's resolution (log scale), one step
    line per split, with the seed's smallest priors marked. Written atomically."""
    from matplotlib.figure import Figure  # no pyplot: Agg, no display

    from artefacts.atomic import atomic_write

    resolution = report["resolution"]
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    bins = np.geomspace(1.0, resolution, 41)
    for name, sides in sides_by_split.items():
        if len(sides):
            px = np.clip(sides * resolution, bins[0], bins[-1])
            ax.hist(px, bins=bins, histtype="step", linewidth=1.6,
                    label=f"{name} ({len(sides)} objects)")
    for side, px in zip(report["seed_priors"]["fraction"], report["seed_priors"]["pixels"],
                        strict=True):
        ax.axvline(px, color="tab:red", linestyle="--", linewidth=1)
        ax.annotate(f"prior {px:.0f} px ({side:.3f})", (px, 1), xycoords=("data", "axes fraction"),
                    rotation=90, va="top", ha="right", fontsize=8, color="tab:red", bbox=_LABEL)
    limit = min(report["seed_priors"]["pixels"]) * UNDER_PRIOR
    ax.axvline(limit, color="tab:red", linestyle=":", linewidth=1)
    ax.annotate(f"IoU 0.5 with no prior below {limit:.0f} px", (limit, 1),
                xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right",
                fontsize=8, color="tab:red", bbox=_LABEL)
    ax.set_xscale("log")
    ax.set_xlim(bins[0], bins[-1])
    ax.set_xlabel(f"object side sqrt(w*h), pixels at {resolution}x{resolution} input")
    ax.set_ylabel("objects")
    top = ax.secondary_xaxis("top", functions=(lambda x: x / resolution,
                                               lambda f: f * resolution))
    top.set_xlabel("fraction of the image side")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{report['root']} ({report['format']}): object sizes; dashed: smallest "
                 f"priors of {report['seed_priors']['baseline']}", fontsize=9)
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))


def sides_per_split(datasets: dict[str, DetectionDataset]) -> dict[str, np.ndarray]:
    return {name: box_sides(ds) for name, ds in datasets.items()}


def summary_lines(report: dict[str, Any], limit: int = 5) -> list[str]:
    """Problems as a few lines: counts by kind, then the first examples."""
    problems: Sequence[dict[str, Any]] = report["problems"]
    if not problems:
        return ["no problems found"]
    counts = Counter(p["kind"] for p in problems)
    lines = [f"{len(problems)} problems: " + ", ".join(f"{n} {k}" for k, n in
                                                       counts.most_common())]
    for p in problems[:limit]:
        where = f"{p['file']}: {p['entry']}" if p["entry"] else p["file"]
        lines.append(f"  [{p['split']}] {where}: {p['detail']} ({p['kind']})")
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more (--json lists them all)")
    return lines
