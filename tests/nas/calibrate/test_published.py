"""The published ESP data the ESP32-S3 board is fitted on: esp-nn's kernel table as copied
into the package, each row turned into a kernel with its shapes."""

from __future__ import annotations

import pytest

from estimators.deploy import CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED
from nas.calibrate.published import KERNELS_PATH, board_runs, kernel_timings


def test_the_kernel_table_rows_and_their_shapes():
    rows = kernel_timings()
    assert KERNELS_PATH.is_file() and len(rows) == 10  # 11 in the table, MUL not fitted
    assert {r.chip for r in rows} == {"ESP32-S3"}
    by_info = {(r.function, r.data_info): r for r in rows}
    wide = by_info[("convolution", "input(10,10), filter(64x1x1x64), pad(0,0), stride(1,1)")]
    assert wide.kernel.kind == CONV_2D and wide.kernel.macs == 10 * 10 * 64 * 64
    assert wide.optimized_ms == pytest.approx(461398 / 240e3)  # cycles at 240 MHz
    assert wide.ansi_c_ms == pytest.approx(4642259 / 240e3) and wide.external
    stem = by_info[("convolution", "input(10,10), filter(64x3x3x3), pad(0,0), stride(1,1)")]
    assert stem.kernel.out_shape == (1, 8, 8, 64) and stem.kernel.kernel == 3
    assert stem.kernel.macs == 8 * 8 * 64 * 27
    dw = [r for r in rows if r.kernel.kind == DEPTHWISE_CONV_2D]
    assert sorted(r.kernel.kernel for r in dw) == [3, 5]
    fc = next(r for r in rows if r.kernel.kind == FULLY_CONNECTED)
    assert not fc.external and fc.kernel.macs == 265 * 3
    # the table's memory column: the convolutions, depthwise and add ran from PSRAM
    assert sum(r.external for r in rows) == 6


def test_the_whole_model_runs_of_the_esp32s3():
    runs = {(r.runtime, r.ms) for r in board_runs() if r.target == "esp32s3"}
    assert runs == {("tflm-esp-nn", 54.0), ("tflm-ref", 2300.0)}
