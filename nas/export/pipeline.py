"""One export: convert, verify on the real runtimes, compare with the estimators, write.

The files are written into a hidden sibling of the output directory, fsynced and renamed into
place at the end (:func:`artefacts.atomic.staged_dir`), so an interrupted or failed export
leaves no output directory, never a partial one.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artefacts.atomic import staged_dir
from estimators import tflite
from estimators.deploy import deployed
from estimators.estimate import Budgets, estimate, memory_figures, totals, violations
from estimators.flash import tflite_bytes as flash_file_bytes
from estimators.ram import TAIL_HOST64, TAIL_MCU32, arena_plan, tail_bytes
from estimators.targets import Target
from estimators.xcubeai import figures_dict
from nas.export import memory_plan, representative, runtimes
from nas.export.convert import (
    ConversionError,
    Converted,
    convert,
    cosine,
    float_outputs,
    output_names,
)
from nas.export.files import LAYOUT, check_out_dir, genome_json
from nas.export.memory_plan import OfflinePlanError
from search_space.detection import softmax
from search_space.model import GraphNet
from search_space.spec import ModelSpec

# Dequantised int8 outputs must point the same way as the float ones. Per-channel int8 of a
# trained SSD reaches > 0.999 on boxes and scores; 0.98 leaves room for untrained weights
# (wider activation ranges) while still catching a wrong layout, a transposed filter or a
# mis-assigned output, which give < 0.5.
PARITY_MIN_COSINE = 0.98
TOOLCHAIN = ("torch", "onnx", "onnx2tf", "tensorflow-cpu", "ai-edge-litert", "tflite-micro")

Step = Callable[[str], None]


class ParityError(RuntimeError):
    """The int8 file does not compute what the float model computes."""


EXPORT_FAILURES = (ParityError, ConversionError, OfflinePlanError)


@dataclass(frozen=True)
class ExportRequest:
    spec: ModelSpec
    target: Target
    budgets: Budgets
    net: GraphNet
    class_names: tuple[str, ...]
    weights: str  # where the weights come from, for the card
    calib_dir: Path | None = None
    # The training images themselves (a dataset's split, class subset applied): used rather
    # than every image under calib_dir, which then only names where they come from.
    calib_files: tuple[Path, ...] = ()
    calib_count: int = representative.DEFAULT_COUNT
    parity_images: int = 8
    latency_runs: int = 20
    offline_plan: bool = True  # write the arena plan into the file (OfflineMemoryAllocation)
    extra: dict[str, Any] = field(default_factory=dict)


def calibration_images(request: ExportRequest) -> tuple[np.ndarray, dict[str, Any]]:
    size = request.net.arch.input_size
    if request.calib_files:
        images = representative.from_files(request.calib_files, size, request.calib_count)
        source = request.calib_dir or request.calib_files[0].parent
        return images, {"source": str(source), "images": len(images)}
    if request.calib_dir is not None:
        images = representative.from_folder(request.calib_dir, size, request.calib_count)
        return images, {"source": str(request.calib_dir), "images": len(images)}
    images = representative.synthetic(size, request.calib_count)
    return images, {"source": "synthetic scenes (nas.export.representative)",
                    "images": len(images)}


def parity(net: GraphNet, tflite: bytes, images: np.ndarray) -> dict[str, Any]:
    """Float PyTorch vs dequantised int8 (LiteRT) on the same images: boxes are the raw
    offsets, scores the softmax class probabilities. A classifier has scores only."""
    ref = float_outputs(net, images)
    names = runtimes.output_names(tflite)
    q = dict(zip(names, runtimes.litert_outputs(tflite, images), strict=True))
    pairs = {"scores": (softmax(ref["logits"]), softmax(q["logits"]))}
    if "boxes" in ref:
        pairs["boxes"] = (ref["boxes"], q["boxes"])
    figures: dict[str, Any] = {"parity_cosine_boxes": None, "parity_max_abs_error_boxes": None}
    for key, (a, b) in pairs.items():
        figures[f"parity_cosine_{key}"] = cosine(a, b)
        figures[f"parity_max_abs_error_{key}"] = float(np.abs(a - b).max())
    return {**figures, "parity_threshold": PARITY_MIN_COSINE, "parity_images": len(images)}


def check_parity(figures: dict[str, Any]) -> None:
    for key in ("parity_cosine_boxes", "parity_cosine_scores"):
        if figures[key] is not None and figures[key] < PARITY_MIN_COSINE:
            raise ParityError(f"int8 parity failed: {key} = {figures[key]:.4f} < "
                              f"{PARITY_MIN_COSINE} (the int8 file does not compute what the "
                              "float model does; nothing was written)")


def measure(tflite: bytes, images: np.ndarray, runs: int) -> dict[str, Any]:
    """Real runtimes: LiteRT latency, TFLM arena and latency, TFLM vs LiteRT agreement.
    ``runs=0`` skips the latencies (the estimator benchmark needs only the memory)."""
    x = runtimes.quantised_inputs(tflite, images[:1])[0]
    arena = runtimes.tflm_arena(tflite)
    tflm = runtimes.tflm_outputs(tflite, x)
    litert = runtimes.litert_outputs(tflite, images[:1])
    scales = runtimes.output_quantisations(tflite)
    lsb = max(int(np.abs(s.dequantise(t) - out[0]).max() / s.scale + 0.5)
              for s, t, out in zip(scales, tflm, litert, strict=True))
    return {
        "litert_ms": runtimes.litert_latency_ms(tflite, x, runs) if runs else None,
        "tflm_ms": runtimes.tflm_latency_ms(tflite, x, runs) if runs else None,
        "latency_runs": runs,
        "tflm_arena_bytes": arena.total_bytes,
        "tflm_arena_head_bytes": arena.head_bytes,
        "tflm_arena_tail_bytes": arena.tail_bytes,
        "tflm_vs_litert_max_lsb": lsb,
    }


def check_memory_plan(converted: Converted, measured: dict[str, Any], images: np.ndarray
                      ) -> dict[str, Any]:
    """TFLite Micro against the offline plan: the head it allocates for the file must be the
    plan's, and its outputs those of the same file without the plan, bit for bit. Also
    measures what TFLM's default plan gives the file without ours."""
    default = runtimes.tflm_arena(converted.unplanned)
    figures: dict[str, Any] = {
        "offline_plan": converted.memory_plan is not None,
        "tflm_arena_head_default_bytes": default.head_bytes,
        "arena_head_floor_bytes": memory_plan.file_buffers(
            tflite.load(converted.unplanned)).floor_bytes,
        "offline_plan_method": None, "arena_head_planned_bytes": None,
        "offline_plan_outputs_identical": None,
    }
    plan = converted.memory_plan
    if plan is None:
        return figures
    if measured["tflm_arena_head_bytes"] != plan.head_bytes:
        raise OfflinePlanError(
            f"TFLite Micro allocated a {measured['tflm_arena_head_bytes']:,}-byte arena head "
            f"for the file, its offline plan says {plan.head_bytes:,}: the runtime did not use "
            "the plan (nothing was written)")
    x = runtimes.quantised_inputs(converted.tflite, images[:1])[0]
    same = all(np.array_equal(a, b) for a, b in zip(
        runtimes.tflm_outputs(converted.tflite, x), runtimes.tflm_outputs(converted.unplanned, x),
        strict=True))
    if not same:
        raise OfflinePlanError("TFLite Micro's outputs with the offline memory plan differ "
                               "from those without it: the plan overlaps live tensors "
                               "(nothing was written)")
    return {**figures, "offline_plan_method": plan.method,
            "arena_head_planned_bytes": plan.head_bytes, "offline_plan_outputs_identical": True}


def _rel(estimated: int, measured: int) -> float:
    return (estimated - measured) / measured


def sizes(request: ExportRequest, tflite_bytes: int, arena_head: int, arena_total: int
          ) -> dict[str, Any]:
    """The estimators next to the measurements, and the target totals."""
    graph = request.net.arch.graph
    dep = deployed(graph)
    est = estimate(graph, request.target, request.budgets)
    arena_host = arena_plan(dep, tail=TAIL_HOST64, offline=request.offline_plan).total_bytes
    file_estimate = flash_file_bytes(dep, offline_plan=request.offline_plan)
    tail = TAIL_HOST64 if request.target.pointer_bytes == 8 else TAIL_MCU32
    arena_target = arena_head + tail_bytes(dep, tail)
    # TFLM: the file + runtime code, the measured arena (board tail) + runtime RAM. X-CUBE-AI:
    # its model on the graph the file was checked to hold, at the bands' high ends.
    memory, memory_model = memory_figures(dep, request.target, tflite_bytes, arena_target)
    flash_total, ram_total = totals(memory)
    found = violations(flash_total, ram_total, request.budgets)
    return {
        "params": est.params, "macs": est.macs,
        "tflite_bytes": tflite_bytes,
        "tflite_bytes_estimated": file_estimate,
        "tflite_bytes_rel_error": _rel(file_estimate, tflite_bytes),
        "arena_bytes_estimated": arena_host,
        "arena_bytes_rel_error": _rel(arena_host, arena_total),
        "arena_bytes_estimated_target": arena_target,
        # The runtime's own figures: fixed for TFLM, the X-CUBE-AI model's for this graph.
        "runtime_code_flash_bytes": memory["code_flash"].bytes,
        "runtime_ram_bytes": memory["runtime_ram"].bytes,
        "flash_bytes_total": flash_total, "ram_bytes_total": ram_total,
        "flash_budget": request.budgets.flash_bytes, "ram_budget": request.budgets.ram_bytes,
        "fits": not found, "violations": list(found),
        "memory_model": memory_model, **figures_dict(memory),
        **est.latency.to_dict(),
    }


def _toolchain() -> dict[str, str]:
    versions = {}
    for name in TOOLCHAIN:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _describe(request: ExportRequest, out_dir: Path, tflite: bytes) -> dict[str, Any]:
    arch, target = request.net.arch, request.target
    quant = runtimes.input_quantisation(tflite)
    return {
        "name": request.spec.label, "model": request.spec.to_dict(),
        "class_names": list(request.class_names), "num_classes": arch.num_classes,
        "input_shape": [arch.input_size, arch.input_size, arch.input_shape[1]],
        "input_quantization": {"scale": quant.scale, "zero_point": quant.zero_point},
        "num_priors": arch.num_priors, "weights": request.weights,
        "target": target.name, "board": target.board, "runtime": target.runtime.name,
        "clock_mhz": target.clock_mhz, "out_dir": str(out_dir),
        "toolchain": _toolchain(), "created": datetime.date.today().isoformat(),
        **request.extra,
    }


def run(request: ExportRequest, out_dir: Path, step: Step = lambda _: None) -> dict[str, Any]:
    """Export, verify and write ``out_dir`` atomically; returns the model card's JSON."""
    check_out_dir(out_dir)
    # The converter's scratch files are internal: the system's temporary directory.
    with tempfile.TemporaryDirectory(prefix="tinynas-export-") as work:
        step("calibration images")
        images, calib = calibration_images(request)
        step("PyTorch -> ONNX -> onnx2tf -> int8 TFLite")
        converted = convert(request.net, images, Path(work), request.offline_plan)
        step("parity: float PyTorch vs int8 LiteRT")
        figures = parity(request.net, converted.tflite, images[: request.parity_images])
        check_parity(figures)
        step("LiteRT and TFLite Micro: arena and latency")
        measured = measure(converted.tflite, images, request.latency_runs)
        step("TFLite Micro: the offline memory plan")
        measured.update(check_memory_plan(converted, measured, images))
        result = {**_describe(request, out_dir, converted.tflite), **figures, **measured,
                  **sizes(request, len(converted.tflite), measured["tflm_arena_head_bytes"],
                          measured["tflm_arena_bytes"]),
                  "calibration": calib, "rewritten_depthwise": converted.rewritten_depthwise,
                  "reordered": converted.reordered}
    step("writing files")
    # Staged in a hidden sibling, fsynced, renamed over the (absent or empty) out_dir.
    with staged_dir(out_dir) as stage:
        _write(stage, request, converted.tflite, converted.onnx, result)
    return result


def _write(stage: Path, request: ExportRequest, tflite: bytes, onnx: bytes,
           result: dict[str, Any]) -> None:
    from nas.export.card import card_json, render_markdown
    from nas.export.carray import write_c_array

    # Plain writes: the stage as a whole is what appears atomically (staged_dir).
    (stage / LAYOUT.model).write_bytes(tflite)
    (stage / LAYOUT.onnx).write_bytes(onnx)
    genome = genome_json(request.spec, request.class_names, output_names(request.net))
    (stage / LAYOUT.genome).write_text(json.dumps(genome, indent=2) + "\n", encoding="utf-8")
    (stage / LAYOUT.card_json).write_text(json.dumps(card_json(result), indent=2) + "\n",
                                          encoding="utf-8")
    (stage / LAYOUT.card_markdown).write_text(render_markdown(result), encoding="utf-8")
    write_c_array(tflite, stage / LAYOUT.c_header, stage / LAYOUT.c_source,
                  arena_bytes=result["arena_bytes_estimated_target"],
                  note=f"{request.spec.label} for {request.target.name}")
    missing = [f for f in LAYOUT.files if not (stage / f).is_file()]
    if missing:
        raise RuntimeError(f"export wrote no {', '.join(missing)}")
