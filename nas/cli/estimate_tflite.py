"""``tinynas estimate MODEL.tflite``: any full-int8 TFLite file against a target and budget.

Nothing is estimated that can be read or run instead:

* flash: the file's own bytes (+ the runtime's code) for TFLite Micro runtimes;
* RAM: the arena the real TFLite Micro interpreter allocates for the file on this host, its
  persistent tail replaced by the board's 32-bit one (:func:`estimators.ram.tail_bytes` of the
  file's graph), as ``tinynas export`` measures;
* for ``xcubeai``: the X-CUBE-AI memory model on the file's graph
  (:func:`nas.export.inspect.deployed_from_tflite` -> :func:`estimators.xcubeai.xcubeai_memory`);
* latency: the kernels read back from the file (the ``tinynas calibrate`` path).

The row has the same keys as a baseline's; what a file cannot tell (classes, priors, the seed's
MAC convention, a backbone) is ``null``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from estimators.deploy import BIAS, WEIGHT, DeployedGraph
from estimators.estimate import Budgets, memory_figures, totals, violations
from estimators.latency import predict_latency
from estimators.ram import TAIL_HOST64, TAIL_MCU32, tail_bytes
from estimators.targets import Target
from estimators.xcubeai import figures_dict
from nas.errors import UsageError


def is_tflite_path(name: str | None) -> bool:
    return name is not None and name.lower().endswith(".tflite")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"model file '{path}' not found") from None
    except IsADirectoryError:
        raise UsageError(f"model file '{path}' is a directory; name the .tflite file") from None
    except OSError as exc:
        raise UsageError(f"cannot read model file '{path}': {exc.strerror}") from None


def _graph(path: Path, data: bytes) -> tuple[DeployedGraph, list[Any]]:
    from nas.export.inspect import NotInt8Error, deployed_from_tflite, kernels_from_tflite

    try:
        return deployed_from_tflite(data), kernels_from_tflite(data)
    except NotInt8Error as exc:
        raise UsageError(f"model file '{path}' {exc}") from None
    except ValueError as exc:
        raise UsageError(f"model file '{path}' is not a usable TFLite model: {exc}") from None


def _arena_head(path: Path, data: bytes) -> int:
    from nas.export.runtimes import capture_fd2, tflm_arena

    found: dict[str, Any] = {}

    def load() -> None:
        try:
            found["arena"] = tflm_arena(data)
        except Exception as exc:  # the interpreter refuses a file in many ways (ops, types)
            found["error"] = exc

    # TFLM prints why it refused on the C-level stderr: keep it for the one error line.
    printed = capture_fd2(load).strip()
    if "arena" in found:
        return found["arena"].head_bytes
    exc = found["error"]
    reason = "; ".join(line.strip() for line in [*printed.splitlines(), str(exc)]
                       if line.strip()) or type(exc).__name__
    raise UsageError(f"model file '{path}' does not load in TFLite Micro ({reason}); "
                     "only files TFLM can run are estimated")


def tflite_row(path: str | Path, target: Target, budgets: Budgets) -> dict[str, Any]:
    """The ``estimate`` row of a .tflite file on ``target``; UsageError for a bad file."""
    path = Path(path)
    data = _read(path)
    dep, kernels = _graph(path, data)
    head = _arena_head(path, data)
    tail = TAIL_HOST64 if target.pointer_bytes == 8 else TAIL_MCU32
    arena = head + tail_bytes(dep, tail)
    memory, memory_model = memory_figures(dep, target, len(data), arena)
    flash, ram = totals(memory)
    found = violations(flash, ram, budgets)
    shape = dep.tensors[dep.inputs[0]].shape if dep.inputs else ()
    _, h, w, c = shape if len(shape) == 4 else (1, 0, 0, 0)
    params = sum(t.numel for t in dep.tensors if t.role in (WEIGHT, BIAS))
    return {
        "name": path.stem, "task": None, "input_size": h, "input_shape": [c, h, w],
        "num_classes": None, "num_priors": None, "params": params,
        "macs": sum(k.macs for k in kernels), "macs_seed_convention": None,
        "backbone_params": None, "backbone_macs_seed_convention": None,
        "tflite_bytes_estimated": len(data), "arena_bytes_estimated": arena,
        "flash_bytes": flash, "ram_bytes": ram, "target": target.label,
        "runtime": target.runtime.name, "flash_budget": budgets.flash_bytes,
        "ram_budget": budgets.ram_bytes, "violations": list(found),
        "memory_model": memory_model, "model_file": str(path), "fits": not found,
        **figures_dict(memory), **predict_latency(kernels, target).to_dict(),
    }
