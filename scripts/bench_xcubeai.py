"""How right is the X-CUBE-AI / STEdgeAI memory model? ST's published runs, leave-one-out.

For every STM32H747 row of ``estimators/data/published_device_runs.csv`` with memory figures
(ST model zoo, STM32Cube.AI 10.0.0 and STEdgeAI Core 3.0.0), the network is rebuilt as its
baseline (``search_space.baselines.baseline_for_row``), deployed, and the model of that tool
version predicts its activations, weights, code flash and runtime RAM: fitted on all rows and
leave-one-out (refitted without the row). ``--write`` saves the coefficients and bands to
``estimators/data/xcubeai_memory.json`` (what ``tinynas`` ships). Each rebuilt network gets
the zoo file's uint8 input and its conversion layer (``with_uint8_input``), as ST measured
it. The rebuilt ST SSD detectors
(``ssd-mbv1-0.25-*``) are predicted too, for comparison with ST's object-detection tables.

Goal (issue 16): leave-one-out within 5% on activations and weights on every row.
Exit code 1 when it is missed.

    .venv/bin/python scripts/bench_xcubeai.py [--write] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

GOAL = 0.05
KIB = 1024
_COLUMNS = {"activation_ram": "activation_ram_kib", "weights_flash": "weights_flash_kib",
            "code_flash": "code_flash_kib", "runtime_ram": "runtime_ram_kib"}
DETECTORS = ("ssd-mbv1-0.25-192", "ssd-mbv1-0.25-224", "ssd-mbv1-0.25-256")


def _runs(version: str) -> list[Any]:
    from estimators.deploy import deployed
    from estimators.xcubeai import DATA_PATH, Features
    from estimators.xcubeai_fit import Run, with_uint8_input
    from search_space.baselines import baseline_for_row, get_baseline

    path = DATA_PATH.parent / "published_device_runs.csv"
    runs, cache = [], {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["toolchain"] != version or not row["activation_ram_kib"]:
                continue
            name = baseline_for_row(row)
            if name is None:
                continue
            if name not in cache:
                # ST measured its zoo file: uint8 in, so a conversion layer in front.
                graph = with_uint8_input(deployed(get_baseline(name).graph))
                cache[name] = Features.of(graph)
            published = {f: float(row[c]) * KIB for f, c in _COLUMNS.items() if row[c]}
            runs.append(Run(name, cache[name], published))
    return runs


def _detectors(models: dict[str, Any]) -> list[dict[str, Any]]:
    from estimators.deploy import deployed
    from estimators.xcubeai import xcubeai_memory
    from estimators.xcubeai_fit import with_uint8_input
    from search_space.baselines import get_baseline

    rows = []
    for name in DETECTORS:
        # ST's detector files take a uint8 image too.
        graph = with_uint8_input(deployed(get_baseline(name).graph))
        for version, model in models.items():
            mem = xcubeai_memory(graph, model=model)
            rows.append({"name": name, "version": version, **mem.to_dict()})
    return rows


def main(argv: list[str] | None = None) -> int:
    from artefacts.atomic import atomic_write_json
    from estimators.xcubeai import DATA_PATH, FIGURES, SCHEMA, VERSIONS
    from estimators.xcubeai_fit import fit

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="save the fitted coefficients")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    models, report, ok = {}, [], True
    for version in VERSIONS:
        source = (f"published_device_runs.csv, {version} rows (STM32H747I-DISCO), "
                  "scripts/bench_xcubeai.py")
        model, predictions = fit(version, _runs(version), source=source)
        models[version] = model
        summary = {}
        for f in FIGURES:
            errs = [p.error for p in predictions if p.figure == f]
            summary[f] = {"max_abs": max(map(abs, errs)), "mean_abs": sum(map(abs, errs))
                          / len(errs), "range": model.errors[f]}
            if f in ("activation_ram", "weights_flash") and summary[f]["max_abs"] > GOAL:
                ok = False
        report.append({"version": version, "model": model.to_dict(), "summary": summary,
                       "rows": [p.__dict__ | {"error": p.error} for p in predictions]})
    detectors = _detectors(models)
    if args.write:
        atomic_write_json(DATA_PATH, {"schema": SCHEMA,
                                      "models": [m.to_dict() for m in models.values()]})
    if args.json:
        print(json.dumps({"versions": report, "detectors": detectors}, indent=2))
    else:
        _print(report, detectors)
    print(f"goal (activations and weights within {GOAL:.0%} leave-one-out on every row): "
          f"{'met' if ok else 'MISSED'}", file=sys.stderr)
    return 0 if ok else 1


def _print(report: list[dict[str, Any]], detectors: list[dict[str, Any]]) -> None:
    for part in report:
        print(f"\n## {part['version']}\n")
        print("| network | figure | published KiB | fitted KiB | leave-one-out KiB | error |")
        print("|---|---|---|---|---|---|")
        for p in part["rows"]:
            print(f"| {p['name']} | {p['figure']} | {p['published'] / KIB:.2f} | "
                  f"{p['fitted'] / KIB:.2f} | {p['leave_one_out'] / KIB:.2f} | "
                  f"{p['error']:+.1%} |")
        print("\n| figure | max abs error | mean abs error | band (error range) |")
        print("|---|---|---|---|")
        for f, s in part["summary"].items():
            lo, hi = s["range"]
            print(f"| {f} | {s['max_abs']:.1%} | {s['mean_abs']:.1%} | {lo:+.1%} .. {hi:+.1%} |")
        m = part["model"]
        print(f"\ncoefficients: overlap depthwise {m['overlap_depthwise']}, pointwise "
              f"{m['overlap_pointwise']}, activations = {m['activation_scale']:.4f} x peak "
              f"{m['activation_offset']:+.0f} B; code = {m['code_base']:.0f} + "
              f"{m['code_per_layer']:.1f}/layer + {m['code_per_channel']:.2f}/channel B; "
              f"runtime RAM = {m['runtime_ram_base']:.0f} + {m['runtime_ram_per_layer']:.1f}"
              f"/layer + {m['runtime_ram_per_merge']:.0f}/merge B")
    print("\n## ST SSD MobileNet v1 0.25 (rebuilt), predicted\n")
    print("| network | version | activations KiB (band) | weights KiB | code KiB "
          "| runtime RAM KiB |")
    print("|---|---|---|---|---|---|")
    for d in detectors:
        low, high = d["activation_ram_bytes_low"], d["activation_ram_bytes_high"]
        print(f"| {d['name']} | {d['version']} | {d['activation_ram_bytes'] / KIB:.2f} "
              f"({low / KIB:.1f}-{high / KIB:.1f})"
              f" | {d['weights_flash_bytes'] / KIB:.2f} | {d['code_flash_bytes'] / KIB:.2f} | "
              f"{d['runtime_ram_bytes'] / KIB:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
