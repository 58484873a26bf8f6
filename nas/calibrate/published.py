"""Published board runs (``estimators/data/published_device_runs.csv``) as calibration rows.

Each row is a real int8 model timed on a real board; we rebuild it as one of our baselines
(``search_space.baselines.baseline_for_row``) so its kernels are known, and express its time
at the target's reference clock (the clock our target record uses), assuming compute-bound
kernels: ms x clock / reference.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from estimators.deploy import deployed
from estimators.latency.features import Kernel, graph_features
from estimators.latency.fit import KindRow
from estimators.latency.kinds import kind_matrix
from search_space.baselines import baseline_for_row, get_baseline

DATA = Path(__file__).resolve().parents[2] / "estimators" / "data"
CSV_PATH = DATA / "published_device_runs.csv"
# esp-nn's kernel table (README "Kernelwise performance for s8 versions", ESP32-S3 at 240 MHz,
# cycles counted with the CPU's cycle counter), with each row's shapes read from esp-nn's
# tests: ``shape_from`` says where, and what could not be checked.
KERNELS_PATH = DATA / "esp_nn_kernels.csv"
# Kernels of the table no tinynas graph contains: kept in the copy, not fitted.
UNUSED_KERNELS = ("MUL",)
REFERENCE_CLOCK = {"stm32h7": 400, "esp32": 240, "esp32s3": 240}
# ST's current releases: the rows the stm32h7 default runtime is fitted on. The same network
# took up to 2x longer with STM32Cube.AI 7.3 (MLPerf Tiny v1.0 vs v1.2 on the same board).
CURRENT_ST = ("STM32Cube.AI 10.0.0", "STEdgeAI Core 3.0.0")


@dataclass(frozen=True)
class BoardRun:
    target: str
    runtime: str
    baseline: str
    ms: float  # at REFERENCE_CLOCK[target]
    source: str
    toolchain: str

    def features(self) -> np.ndarray:
        return graph_features(deployed(get_baseline(self.baseline).graph))

    def kinds(self) -> np.ndarray:
        return kind_matrix(deployed(get_baseline(self.baseline).graph))

    def kind_row(self) -> KindRow:
        return KindRow(f"{self.baseline} ({self.toolchain})", self.kinds(), self.ms, whole=True)


def board_runs(path: Path = CSV_PATH) -> list[BoardRun]:
    """Every published run on one of our targets whose network we can rebuild."""
    runs = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            target, runtime = classify(row["board"], row["toolchain"])
            name = baseline_for_row(row)
            if target is None or name is None:
                continue
            ms = float(row["latency_ms"]) * float(row["clock_mhz"]) / REFERENCE_CLOCK[target]
            runs.append(BoardRun(target, runtime, name, ms, row["source"], row["toolchain"]))
    return runs


def fitted_h7_runs(runs: list[BoardRun] | None = None) -> list[BoardRun]:
    """The STM32H7 runs (of ``runs``, default all) the X-CUBE-AI model is fitted on: those
    made with ST's current releases."""
    return [r for r in (board_runs() if runs is None else runs)
            if r.target == "stm32h7" and r.toolchain in CURRENT_ST]


def classify(board: str, toolchain: str) -> tuple[str | None, str]:
    """(target, runtime) of a published run; (None, "") for a board we do not model."""
    if "STM32H7" in board or "H7A3" in board:
        return "stm32h7", "xcubeai"
    runtime = "tflm-esp-nn" if "ESP-NN" in toolchain else "tflm-ref"
    if "ESP32-S3" in board:
        return "esp32s3", runtime
    if board.strip() == "ESP32":
        return "esp32", runtime
    return None, ""


@dataclass(frozen=True)
class KernelTiming:
    """One row of the kernel table: a single kernel timed on the chip, both builds."""

    chip: str
    function: str
    kernel: Kernel
    ansi_c_ms: float
    optimized_ms: float
    external: bool  # its data lived in PSRAM ("External")
    data_info: str

    def kind_row(self, optimized: bool = True) -> KindRow:
        ms = self.optimized_ms if optimized else self.ansi_c_ms
        return KindRow(f"{self.function} [{self.data_info}]",
                       kind_matrix([self.kernel], invoke=False), ms, external=self.external)


def kernel_timings(path: Path = KERNELS_PATH) -> list[KernelTiming]:
    """The kernel table's rows that a tinynas graph can contain, ticks turned into ms."""
    found = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["op"] in UNUSED_KERNELS:
                continue
            n = {k: int(row[k]) for k in ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c",
                                          "kernel", "stride", "inputs", "macs")}
            kernel = Kernel(row["op"], (1, n["in_h"], n["in_w"], n["in_c"]),
                            (1, n["out_h"], n["out_w"], n["out_c"]), n["kernel"], n["stride"],
                            n["macs"], n["inputs"])
            per_ms = float(row["clock_mhz"]) * 1e3  # cycles in one millisecond
            found.append(KernelTiming(row["chip"], row["function"], kernel,
                                      int(row["ansi_c_ticks"]) / per_ms,
                                      int(row["optimized_ticks"]) / per_ms,
                                      row["memory"].strip().lower() == "external",
                                      row["data_info"]))
    return found
