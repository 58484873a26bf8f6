"""How much arena do our files need? TFLite Micro's default plan, our offline plan, the floor.

Two parts:

1. **Our exports** (every baseline and the sampled genomes of ``scripts/bench_estimators.py``,
   read from its ``--results`` JSON lines): per model the arena head TFLite Micro's default
   (greedy) planner gives the file without a plan, the head it allocates for the file with our
   offline plan (measured, ``print_allocations()``), and the floor (aligned bytes of the
   non-constant tensors alive at the worst operator, in the file's op order).
2. **The same networks built elsewhere**: for every MobileNet v1 classifier of
   ``estimators/data/published_device_runs.csv`` (and TFLite Micro's person-detection network),
   the tf_keras ``MobileNet(include_top=False, pooling="avg")`` + ``Dense`` of the same alpha,
   input and classes, converted by ``tf.lite.TFLiteConverter`` to full int8 (random weights,
   16 random calibration images): its default head and floor, the head our planner gives that
   file, and ST's published activation RAM (X-CUBE-AI 10.0) side by side with our file's head.
   The Keras files are built once and cached (``--cache``); each is loaded into TFLite Micro in
   a subprocess (the host interpreter aborts the process on ops it lacks). ``--legacy`` also
   exports each network as tinynas did before issue 15 (PyTorch's symmetric padding, so
   explicit PADs, and no offline plan) for the "before" column.

Goals (issue 15): our head within 5% of its file's floor on >= 90% of the models and never
above TFLite Micro's default plan of the same file; at or below the Keras file's head at
96x96x1 and >= 20% below it at 224x224x3 (MobileNet v1 0.25, the issue's network: at 0.5 and
1.0 the Keras file's default plan is already at the floor both files share). Exit code 1 when
a goal is missed.

    .venv/bin/python scripts/bench_memory.py --estimator-results runs/bench/estimators.jsonl
        [--cache DIR] [--only NETWORK ...] [--legacy] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "estimators" / "data" / "published_device_runs.csv"
ST_TOOLCHAIN = "STM32Cube.AI 10.0.0"
NEAR_FLOOR = 0.05
NEAR_FLOOR_SHARE = 0.90
BELOW_KERAS_224 = 0.20
ISSUE_ALPHA = 0.25  # the network of the issue's measurements
# TFLite Micro's person-detection example: MobileNet v1 0.25, 96x96x1, 2 classes.
EXTRA_NETWORKS = (("person-det-mbv1-0.25-96x1", 0.25, 96, 1, 2),)


def _networks() -> list[tuple[str, float, int, int, int]]:
    """(our baseline, alpha, side, channels, classes) of the published MobileNet v1 runs."""
    from search_space.baselines import baseline_for_row

    found: dict[str, tuple[str, float, int, int, int]] = {}
    with CSV.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["model"].strip() != "mobilenet_v1":
                continue
            name = baseline_for_row(row)
            if name is not None:
                found[name] = (name, float(row["alpha"]), int(row["input_h"]),
                               int(row["input_c"]), int(row["num_classes"]))
    return [*found.values(), *EXTRA_NETWORKS]


def _st_activations(alpha: float, side: int, channels: int, classes: int) -> float | None:
    with CSV.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if (row["model"].strip(), row["toolchain"]) == ("mobilenet_v1", ST_TOOLCHAIN) \
                    and row["alpha"] and abs(float(row["alpha"]) - alpha) < 1e-9 \
                    and (int(row["input_h"]), int(row["input_c"]), int(row["num_classes"])) \
                    == (side, channels, classes) and row["activation_ram_kib"]:
                return float(row["activation_ram_kib"])
    return None


def _keras_file(alpha: float, side: int, channels: int, classes: int, cache: Path) -> Path:
    path = cache / f"keras-mbv1-{alpha}-{side}x{channels}-c{classes}.tflite"
    if path.is_file():
        return path
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from artefacts.atomic import atomic_write_bytes
    from nas.export.convert import quantise

    tf.keras.utils.set_random_seed(0)
    base = keras.applications.MobileNet(input_shape=(side, side, channels), alpha=alpha,
                                        include_top=False, weights=None, pooling="avg")
    model = keras.Sequential([base, keras.layers.Dense(classes)])
    # Random RGB calibration images: the arena depends on tensor shapes, not on the ranges.
    calib = np.random.default_rng(0).integers(0, 256, (16, side, side, 3), dtype=np.uint8)
    atomic_write_bytes(path, quantise(model, calib))
    return path


def _measure_file(path: Path) -> dict[str, Any]:
    """In this process: default head, floor, our plan on the file and TFLM's head with it."""
    import numpy as np

    from estimators import tflite
    from nas.export import memory_plan, rewrite, runtimes

    data = path.read_bytes()
    model = tflite.load(data)
    buffers = memory_plan.file_buffers(model)
    found = memory_plan.embed(model)
    planned = rewrite.pack(model)
    rng = np.random.default_rng(0)
    shape = runtimes._litert(data).get_input_details()[0]["shape"][1:]
    x = rng.integers(-128, 128, size=shape).astype(np.int8)
    same = all(np.array_equal(a, b) for a, b in zip(
        runtimes.tflm_outputs(data, x), runtimes.tflm_outputs(planned, x), strict=True))
    return {"keras_head_default": runtimes.tflm_arena(data).head_bytes,
            "keras_floor": buffers.floor_bytes,
            "keras_head_our_plan": runtimes.tflm_arena(planned).head_bytes,
            "keras_plan_method": found.method, "keras_plan_outputs_identical": same,
            "keras_ops": rewrite.op_histogram(data)}


def _legacy_file(name: str, cache: Path) -> Path:
    """Our export of baseline ``name`` as it was before issue 15: PyTorch's symmetric padding
    (explicit PADs), no offline plan."""
    path = cache / f"legacy-{name}.tflite"
    if path.is_file():
        return path
    import tempfile

    from artefacts.atomic import atomic_write_bytes
    from nas.export import representative
    from nas.export.convert import convert
    from search_space.baselines import get_baseline
    from search_space.model import as_if_trained
    from search_space.spec import SYMMETRIC, ModelSpec

    spec = ModelSpec(get_baseline(name).num_classes, baseline=name, padding=SYMMETRIC)
    net = as_if_trained(spec.build()).eval()
    with tempfile.TemporaryDirectory() as work:
        converted = convert(net, representative.synthetic(net.arch.input_size, 16), Path(work),
                            offline_plan=False)
    atomic_write_bytes(path, converted.tflite)
    return path


def _measure_in_subprocess(path: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--measure-file", str(path)],
                          capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        return {"error": f"TFLite Micro failed on {path.name} (exit {done.returncode}): "
                         f"{done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ours(rows: list[dict[str, Any]]) -> dict[str, Any]:
    near = [r for r in rows if r["tflm_arena_head_bytes"] <= (1 + NEAR_FLOOR) * r["floor_bytes"]]
    above_default = [r["name"] for r in rows
                     if r["tflm_arena_head_bytes"] > r["tflm_head_default"]]
    return {
        "models": len(rows),
        "within_5pct_of_floor": len(near),
        "within_5pct_share": len(near) / len(rows) if rows else 0.0,
        "above_default": above_default,
        "at_floor": sum(r["tflm_arena_head_bytes"] == r["floor_bytes"] for r in rows),
        "below_default": sum(r["tflm_arena_head_bytes"] < r["tflm_head_default"] for r in rows),
        "not_honoured": [r["name"] for r in rows if r["tflm_arena_head_bytes"] != r["plan_head"]
                         or not r["outputs_identical"]],
    }


def _compare(ours: dict[str, dict[str, Any]], cache: Path, only: list[str] | None,
             legacy: bool) -> list[dict[str, Any]]:
    table = []
    for name, alpha, side, channels, classes in _networks():
        if only and name not in only:
            continue
        row: dict[str, Any] = {"network": name, "alpha": alpha, "input": f"{side}x{side}x"
                               f"{channels}", "classes": classes,
                               "st_activations_kib": _st_activations(alpha, side, channels,
                                                                     classes)}
        mine = ours.get(name)
        if mine is not None:
            row.update(our_head=mine["tflm_arena_head_bytes"],
                       our_head_default=mine["tflm_head_default"], our_floor=mine["floor_bytes"])
        path = _keras_file(alpha, side, channels, classes, cache)
        row.update(_measure_in_subprocess(path))
        if legacy and name in ours:
            old = _measure_in_subprocess(_legacy_file(name, cache))
            row.update(legacy_head=old.get("keras_head_default"),
                       legacy_pads=old.get("keras_ops", {}).get("PAD", 0))
        print(f"{name}: {json.dumps(row)}", file=sys.stderr, flush=True)
        table.append(row)
    return table


def _keras_goals(table: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's goals are about its network, MobileNet v1 0.25: at 0.5 and 1.0 the Keras
    file's default plan already reaches the floor both files share, and no plan of that
    operator order goes below its floor (reported, not judged)."""
    at_96x1, at_224 = [], []
    for r in table:
        if "our_head" not in r or "keras_head_default" not in r:
            continue
        gain = 1 - r["our_head"] / r["keras_head_default"]
        r["below_keras_head"] = gain
        if r["input"] == "96x96x1":
            at_96x1.append(r["our_head"] <= r["keras_head_default"])
        if r["input"] == "224x224x3" and r["alpha"] == ISSUE_ALPHA:
            at_224.append(gain >= BELOW_KERAS_224)
    return {"at_or_below_keras_96x96x1": bool(at_96x1) and all(at_96x1),
            "below_keras_by_20pct_224": bool(at_224) and all(at_224)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--estimator-results", type=Path,
                        help="bench_estimators.py --results file (our exports)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tinynas-bench-memory"),
                        help="where the Keras -> TFLiteConverter files are kept")
    parser.add_argument("--only", nargs="*", help="Keras networks to build (default: all)")
    parser.add_argument("--legacy", action="store_true",
                        help="also export each network as before issue 15 (symmetric "
                        "padding, no offline plan) and measure its head and PADs")
    parser.add_argument("--measure-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import nas.export  # noqa: F401  (quiets TensorFlow before anything imports it)

    if args.measure_file is not None:
        print(json.dumps(_measure_file(args.measure_file)))
        return 0
    if args.estimator_results is None:
        parser.error("--estimator-results is required")
    rows = [json.loads(line) for line in
            args.estimator_results.read_text(encoding="utf-8").splitlines() if line.strip()]
    args.cache.mkdir(parents=True, exist_ok=True)
    ours = _ours(rows)
    table = _compare({r["name"]: r for r in rows}, args.cache, args.only, args.legacy)
    goals = {
        "near_floor": ours["within_5pct_share"] >= NEAR_FLOOR_SHARE,
        "never_above_default": not ours["above_default"],
        "plans_honoured": not ours["not_honoured"],
        **_keras_goals(table),
    }
    result = {"ours": ours, "per_model": [
        {k: r[k] for k in ("name", "input_size", "tflm_head_default", "tflm_arena_head_bytes",
                           "floor_bytes", "plan_method")} for r in rows],
        "keras": table, "goals": goals}
    print(json.dumps(result, indent=2) if args.json else json.dumps(goals))
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
