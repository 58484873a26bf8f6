"""Running an int8 ``.tflite`` in the two real runtimes we have: LiteRT and TFLite Micro.

Both take the same quantised input (uint8 images -> ``normalise`` -> the file's input scale
and zero point). TFLite Micro has no Python getter for the arena it used; it prints
``Arena allocation total/head/tail N bytes`` on the C-level stderr, which we capture by
pointing file descriptor 2 at a temporary file for the duration of the call.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from search_space.detection import normalise

# Generous: the arena actually used is read back, and TFLM only reserves what it plans.
TFLM_ARENA_LIMIT = 64 << 20
_ALLOCATION = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


@dataclass(frozen=True)
class Quantisation:
    """Per-tensor affine int8 quantisation: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int

    def quantise(self, x: np.ndarray) -> np.ndarray:
        q = np.round(x / self.scale) + self.zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantise(self, q: np.ndarray) -> np.ndarray:
        return ((q.astype(np.float32) - self.zero_point) * self.scale).astype(np.float32)


@dataclass(frozen=True)
class ArenaUsage:
    total_bytes: int
    head_bytes: int
    tail_bytes: int


def _litert(tflite: bytes):  # noqa: ANN202 (ai_edge_litert has no type stubs)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite, num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def _quant(details: dict) -> Quantisation:
    scale, zero_point = details["quantization"]
    if not scale:
        raise ValueError(f"tensor {details['name']!r} is not quantised: not a full-int8 model")
    return Quantisation(float(scale), int(zero_point))


def input_quantisation(tflite: bytes) -> Quantisation:
    return _quant(_litert(tflite).get_input_details()[0])


def input_size(tflite: bytes) -> int:
    """The side of the file's square NHWC input."""
    return int(_litert(tflite).get_input_details()[0]["shape"][1])


def quantised_inputs(tflite: bytes, images: np.ndarray) -> np.ndarray:
    """uint8 RGB (N, H, W, 3) -> the int8 NHWC tensors the file expects, one per image."""
    details = _litert(tflite).get_input_details()[0]
    x = np.moveaxis(normalise(images, int(details["shape"][-1])), 1, 3)
    return _quant(details).quantise(x)


def litert_outputs(tflite: bytes, images: np.ndarray) -> list[np.ndarray]:
    """Dequantised outputs in the file's output order, each (N, ...) over the images."""
    interpreter = _litert(tflite)
    (inp,) = interpreter.get_input_details()
    outs = interpreter.get_output_details()
    results: list[list[np.ndarray]] = [[] for _ in outs]
    for x in quantised_inputs(tflite, images):
        interpreter.set_tensor(inp["index"], x[None])
        interpreter.invoke()
        for k, d in enumerate(outs):
            results[k].append(_quant(d).dequantise(interpreter.get_tensor(d["index"])[0]))
    return [np.stack(r) for r in results]


def output_quantisations(tflite: bytes) -> list[Quantisation]:
    return [_quant(d) for d in _litert(tflite).get_output_details()]


def output_names(tflite: bytes) -> list[str]:
    return [d["name"] for d in _litert(tflite).get_output_details()]


@dataclass(frozen=True)
class Times:
    """Per invocation: wall time, and the calling thread's CPU time (both runtimes run a
    1-thread model in the calling thread), which leaves out time the thread was preempted."""

    wall_ms: list[float]
    cpu_ms: list[float]


def _times_ms(invoke: Callable[[], None], runs: int, warmup: int) -> Times:
    for _ in range(warmup):
        invoke()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        invoke()
        cpu.append((time.thread_time() - start_cpu) * 1e3)
        wall.append((time.perf_counter() - start) * 1e3)
    return Times(wall, cpu)


def litert_times_ms(tflite: bytes, x: np.ndarray, runs: int = 20, warmup: int = 3) -> Times:
    """Each of ``runs`` invocations on one int8 input, one thread (XNNPACK)."""
    interpreter = _litert(tflite)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[None])
    return _times_ms(interpreter.invoke, runs, warmup)


def litert_latency_ms(tflite: bytes, x: np.ndarray, runs: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``runs`` invocations on one int8 input, one thread (XNNPACK)."""
    return statistics.median(litert_times_ms(tflite, x, runs, warmup).wall_ms)


def _tflm(tflite: bytes, arena_size: int = TFLM_ARENA_LIMIT):  # noqa: ANN202
    from tflite_micro import runtime

    return runtime.Interpreter.from_bytes(tflite, arena_size=arena_size)


def capture_fd2(fn: Callable[[], None]) -> str:
    """What ``fn`` writes to file descriptor 2: LiteRT and TFLite Micro print from C++, past
    Python's ``sys.stderr``."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return sink.read().decode(errors="replace")


def tflm_arena(tflite: bytes) -> ArenaUsage:
    """The arena TFLite Micro really allocates for the model (host build, 64-bit)."""
    interpreter = _tflm(tflite)
    text = capture_fd2(interpreter.print_allocations)
    found = {k: int(v) for k, v in _ALLOCATION.findall(text)}
    if set(found) != {"total", "head", "tail"}:
        raise RuntimeError(f"could not read TFLM's arena allocation from: {text[:200]!r}")
    return ArenaUsage(found["total"], found["head"], found["tail"])


def tflm_outputs(tflite: bytes, x: np.ndarray) -> list[np.ndarray]:
    """Raw int8 outputs of one int8 input (H, W, C), in the file's output order."""
    interpreter = _tflm(tflite)
    interpreter.set_input(x[None], 0)
    interpreter.invoke()
    return [interpreter.get_output(k)[0] for k in range(_num_outputs(tflite))]


def _num_outputs(tflite: bytes) -> int:
    return len(_litert(tflite).get_output_details())


def tflm_times_ms(tflite: bytes, x: np.ndarray, runs: int = 20, warmup: int = 2) -> Times:
    """Each of ``runs`` invocations with TFLM's reference kernels on the host."""
    interpreter = _tflm(tflite)
    interpreter.set_input(x[None], 0)
    return _times_ms(interpreter.invoke, runs, warmup)


def tflm_latency_ms(tflite: bytes, x: np.ndarray, runs: int = 20, warmup: int = 2) -> float:
    """Median wall time of ``runs`` invocations with TFLM's reference kernels on the host."""
    return statistics.median(tflm_times_ms(tflite, x, runs, warmup).wall_ms)
