"""Fit the latency coefficients shipped in ``estimators/data`` from measured runs.

Host: ``latency_host_runs.csv`` (``scripts/measure_latency.py``) -> one :class:`HostModel`
per runtime, fitted on the ``fit`` rows only (the ``holdout`` rows are for
``scripts/bench_latency.py``) -> ``latency_host.json``.

Boards: ``published_device_runs.csv`` (real int8 models on real boards, each rebuilt as one
of our baselines) -> one :class:`LatencyModel` per (target, runtime) -> ``latency_boards.json``:

* stm32h7 / xcubeai: one weight on the whole host TFLM cost and a fixed cost (``ONE_WEIGHT``:
  the classifiers cannot tell a separate weight for non-conv ops), fitted on the ST model
  zoo runs made with ST's current releases (``nas.calibrate.published.CURRENT_ST``;
  STM32H747 at 400 MHz), band from leave-one-out.
  Older releases and MLPerf Tiny's STM32H7A3 runs are left out (``bench_latency.py`` shows
  how far they fall from the model).
* stm32h7 / tflm-cmsis-nn and tflm-ref: no runs published; X-CUBE-AI times the ratio of the
  same network on both runtimes in TinyEngine's table (STM32H743), the band widened by the
  ratio's range implied by that table's cycles-per-MAC ranges.
* esp32s3 / tflm-esp-nn: kernel-aware (``estimators.latency.kinds``): one weight per kernel
  kind on the host TFLM cost of that kind, fitted jointly on esp-nn's kernel table
  (``esp_nn_kernels.csv``, optimised column; its PSRAM rows with a fitted factor) and the
  published whole-model run (``fit.fit_kinds``); band from leave-one-out (see there).
* esp32 / tflm-esp-nn: kernel-aware the same way on the table's ANSI C column: esp-nn gives
  the ESP32 (no vector unit) C code, which that column times on the S3 (``KERNEL_AWARE``).
* esp32s3 / tflm-ref, esp32 / tflm-ref: one published run each (person detection): one scale
  factor on the host TFLM prediction; its band is what one-run scale fits do on the STM32H7
  rows. (esp-nn's ANSI C column is not TFLM's reference kernels: the person-detection run is
  173x its host TFLM time with reference kernels, the table's ANSI C kernels 7-66x theirs.)

    .venv/bin/python scripts/fit_latency.py [--runs estimators/data/latency_host_runs.csv]
        [--write] [--json]

Without ``--write`` it prints what it would ship.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "estimators" / "data"

# TinyEngine README, STM32H743 at 480 MHz, mcunet-in3: TFLM 7821 ms, CMSIS-NN 770 ms,
# X-CUBE-AI 414 ms; cycles/MAC ranges over its models: TFLM 44-48, CMSIS-NN 3.8-4.8,
# X-CUBE-AI 7.3 2.0-2.6 (targets.md).
XCUBE_CPM, CMSIS_CPM, REF_CPM = (2.0, 2.6), (3.8, 4.8), (44.0, 48.0)
H7_DERIVED = {
    "tflm-cmsis-nn": (770 / 414, (CMSIS_CPM[0] / XCUBE_CPM[1], CMSIS_CPM[1] / XCUBE_CPM[0])),
    "tflm-ref": (7821 / 414, (REF_CPM[0] / XCUBE_CPM[1], REF_CPM[1] / XCUBE_CPM[0])),
}
H7_METHOD = ("X-CUBE-AI prediction x {ratio:.2f}, the same network (mcunet-in3) on both "
             "runtimes in TinyEngine's STM32H743 table; band widened by the ratio range "
             "{lo:.2f}-{hi:.2f} implied by the table's cycles/MAC ranges. No board run of ours")


def fit_hosts(runs: list[Any]) -> dict[str, Any]:
    from estimators.latency.fit import fit_host
    from nas.calibrate.measure import FIT, feature_matrix

    fit = [r for r in runs if r.split == FIT]
    x = feature_matrix(fit)
    env = runs[0].environment()
    return {rt: fit_host(rt, x, np.array([getattr(r, f"{rt}_ms") for r in fit]), env)
            for rt in ("litert", "tflm")}


def fit_boards(host: Any) -> list[Any]:
    from estimators.latency.fit import (
        ONE_WEIGHT,
        fit_board,
        fit_scale,
        scaled,
        single_run_error_range,
    )
    from nas.calibrate.published import (
        CURRENT_ST,
        REFERENCE_CLOCK,
        board_runs,
        fitted_h7_runs,
    )

    rows = board_runs()
    h7 = fitted_h7_runs(rows)
    x7, y7 = np.array([r.features() for r in h7]), np.array([r.ms for r in h7])
    xcube = fit_board("stm32h7", "xcubeai", host, x7, y7, 400, (
        f"fitted on the {len(h7)} ST model zoo runs with the current releases "
        f"({', '.join(CURRENT_ST)}) on an STM32H747 at 400 MHz: one weight on the host TFLM "
        "cost and a fixed cost; band = leave-one-out error range. Older releases "
        "(STM32Cube.AI 7.3) and MLPerf Tiny's STM32H7A3 runs are not fitted (BENCHMARKS.md "
        "shows how far they fall from it)"), ties=ONE_WEIGHT)
    models = [xcube]
    for runtime, (ratio, (lo, hi)) in H7_DERIVED.items():
        models.append(scaled(xcube, ratio, (lo, hi),
                             H7_METHOD.format(ratio=ratio, lo=lo, hi=hi), runtime))
    one_run = single_run_error_range(host, x7, y7)
    for r in rows:
        if r.target == "stm32h7":
            continue
        if (r.target, r.runtime) in KERNEL_AWARE:
            models.append(kernel_aware_board(host, rows, one_run, (r.target, r.runtime)))
            continue
        method = (f"one published run ({r.source}: {r.baseline}, {r.ms:g} ms): one scale on "
                  "the host TFLM prediction; band = the range of one-run scale fits on the "
                  "STM32H7 runs. Thin data: check on your board (tinynas calibrate)")
        models.append(fit_scale(r.target, r.runtime, host, r.features()[None],
                                np.array([r.ms]), REFERENCE_CLOCK[r.target], one_run, method))
    return models


# Kernel-aware boards and the column of esp-nn's ESP32-S3 kernel table each is fitted on: the
# S3 runs esp-nn's vector code ("optimized"); the ESP32 has no vector unit and esp-nn gives it
# C code (esp_nn_generic_opt.h: conv and depthwise in C with 4-way unrolled inner loops,
# everything else the ANSI C functions), so it is fitted on the table's ANSI C column, timed on
# the S3's LX7, assuming the ESP32's LX6 runs that C code in about as many cycles.
KERNEL_AWARE = {("esp32s3", "tflm-esp-nn"): True, ("esp32", "tflm-esp-nn"): False}
ESP_METHOD = (
    "kernel-aware: one weight per kernel kind on the host TFLM cost of its kernels, fitted "
    "jointly (scipy least squares on log error, a 20x prior around one shared weight) on the "
    "{kernels} kernels of esp-nn's ESP32-S3 table ({column}) and {runs} published whole-model "
    "run(s) ({names}); the table's PSRAM ('External') rows carry a fitted factor x{psram:.2f}."
    "{assumption} Band: leave-one-out of the whole-model runs, their shift when any kernel row "
    "is left out, the host model's range and the one-run scale range on the STM32H7 runs; "
    "the share in a kind with no kernel row ({unseen}) carries the leave-one-out range of its "
    "group's kernel rows. Thin data: check on your board (tinynas calibrate)")
ESP32_ASSUMPTION = (
    " The ESP32 runs esp-nn's C code (no vector unit), which the table's ANSI C column times "
    "on the S3: assumed to take about as many cycles on the ESP32's LX6 as on the S3's LX7.")


def kernel_aware_board(host: Any, runs: list[Any], one_run: tuple[float, float],
                       key: tuple[str, str]) -> Any:
    """An ESP board (``key``: target, runtime) from esp-nn's kernel table and its whole-model
    runs; ``KERNEL_AWARE`` says which column of the table."""
    from estimators.latency.fit import fit_kinds
    from estimators.latency.predictor import LatencyModel
    from nas.calibrate.published import REFERENCE_CLOCK, kernel_timings

    optimized = KERNEL_AWARE[key]
    kernels = [k for k in kernel_timings() if k.chip == "ESP32-S3"]
    whole = [r for r in runs if (r.target, r.runtime) == key]
    rows = [k.kind_row(optimized) for k in kernels] + [r.kind_row() for r in whole]
    found = fit_kinds(host, rows, one_run)
    method = ESP_METHOD.format(
        kernels=len(kernels), column="optimised" if optimized else "ANSI C", runs=len(whole),
        names=", ".join(r.baseline for r in whole), psram=found.psram,
        assumption="" if optimized else ESP32_ASSUMPTION,
        unseen=", ".join(found.kind_ranges) or "none")
    return LatencyModel(
        target=key[0], runtime=key[1], basis=host.runtime,
        weights=dict.fromkeys(("conv", "depthwise", "other"), 0.0), fixed_ms=0.0,
        clock_mhz=REFERENCE_CLOCK[key[0]], error_range=found.band, rows=len(rows),
        thin=True, method=method, accuracy=kind_accuracy(rows, found),
        kind_weights=found.weights, kind_ranges=found.kind_ranges)


def kind_accuracy(rows: list[Any], found: Any) -> dict[str, Any]:
    """What ``fit_kinds`` measured, for the JSON: errors in the fit and left out, per row and
    summed up, the group ranges and how often the band held a row left out."""
    from estimators.latency.fit import ErrorSummary

    is_whole = np.array([r.whole for r in rows])
    return {
        "fit_kernels": ErrorSummary.of(found.fitted[~is_whole]).to_dict(),
        "fit_runs": ErrorSummary.of(found.fitted[is_whole]).to_dict(),
        "loo_kernels": ErrorSummary.of(found.loo[~is_whole]).to_dict(),
        "loo_runs": ErrorSummary.of(found.loo[is_whole]).to_dict(),
        "psram_factor": found.psram,
        "group_ranges": {g: list(r) for g, r in found.group_ranges.items()},
        "band_holds": int(found.inside.sum()), "band_holds_strict": int(found.inside_strict.sum()),
        "per_row": [{"row": r.name, "measured_ms": r.ms, "whole": r.whole,
                     "external": r.external, "fit_error": float(f), "loo_error": float(o),
                     "inside_band": bool(i), "inside_strict_band": bool(t)}
                    for r, f, o, i, t in zip(rows, found.fitted, found.loo, found.inside,
                                             found.inside_strict, strict=True)]}


def host_identities(hosts: dict[str, Any]) -> list[Any]:
    from estimators.latency.fit import host_identity

    return [host_identity(h, "the host model fitted on this package's measured runs "
                             "(estimators/data/latency_host_runs.csv); band = its leave-one-out "
                             "error range") for h in hosts.values()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=DATA / "latency_host_runs.csv")
    parser.add_argument("--write", action="store_true", help="write the JSON files")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from artefacts.atomic import atomic_write_json
    from estimators.latency.predictor import BOARDS_FILE, BOARDS_SCHEMA, HOST_FILE, HOST_SCHEMA
    from nas.calibrate.measure import read_runs

    hosts = fit_hosts(read_runs(args.runs))
    boards = fit_boards(hosts["tflm"]) + host_identities(hosts)
    stamp = {"fitted": datetime.date.today().isoformat(), "runs": args.runs.name}
    host_doc = {"schema": HOST_SCHEMA, **stamp,
                "runtimes": {rt: h.to_dict() for rt, h in hosts.items()}}
    board_doc = {"schema": BOARDS_SCHEMA, **stamp, "models": [m.to_dict() for m in boards]}
    if args.write:
        atomic_write_json(DATA / HOST_FILE, host_doc, indent=1)
        atomic_write_json(DATA / BOARDS_FILE, board_doc, indent=1)
    if args.json:
        print(json.dumps({"host": host_doc, "boards": board_doc}, indent=1))
    for m in boards:
        weights = m.kind_weights or m.weights
        print(f"{m.target:12s} {m.runtime:14s} rows {m.rows:3d} band "
              f"{m.error_range[0]:+.1%}..{m.error_range[1]:+.1%} "
              f"weights {', '.join(f'{k} {v:.4g}' for k, v in weights.items())} "
              f"fixed {m.fixed_ms:.3g} ms{_unfitted(m)}", file=sys.stderr)
    return 0


def _unfitted(model: Any) -> str:
    ranges = model.kind_ranges or {}
    return "".join(f"; {k} (no kernel row) {lo:+.1%}..{hi:+.1%}"
                   for k, (lo, hi) in ranges.items())


if __name__ == "__main__":
    sys.exit(main())
