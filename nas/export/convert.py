"""PyTorch -> ONNX -> onnx2tf -> full-integer int8 ``.tflite``, offline.

onnx2tf builds the TensorFlow graph (NHWC; a SAME-padded strided conv of the model, a Pad
and a Conv in ONNX, becomes one SAME convolution, so explicit PADs remain only where the model
pads in a way SAME cannot express); the TFLite converter quantises it with our calibration
images: per-channel int8 weights, int8 activations, int8 input and output.
:mod:`nas.export.rewrite` then fixes what onnx2tf gets wrong for microcontrollers and names the
input and outputs, and :mod:`nas.export.memory_plan` writes the arena plan into the file.

Which output is ``boxes`` and which ``logits`` is decided by value, against the float model:
both can have the same shape (3 classes + background = 4 channels, like box offsets) and
their order changes in conversion.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from estimators import tflite
from estimators.deploy import deployed
from estimators.memplan import MemoryPlan
from nas.detector import OUTPUT_ROLES
from nas.export import memory_plan, rewrite, schedule
from search_space.detection import normalise
from search_space.model import DETECTION, GraphNet

ONNX_OPSET = 13
INPUT_NAME = "images"
OUTPUT_NAMES = OUTPUT_ROLES  # a detector's; a classifier has one output, "logits"
# onnx2tf fetches this file from GitHub for its self-test unless it is in the working
# directory; we provide it (our own calibration images) so that nothing is downloaded.
ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


class ConversionError(RuntimeError):
    """The toolchain could not produce a valid int8 file for this model."""


@dataclass(frozen=True)
class Converted:
    onnx: bytes
    tflite: bytes  # with the offline memory plan, unless it was turned off
    rewritten_depthwise: int  # grouped CONV_2D ops turned back into DEPTHWISE_CONV_2D
    reordered: bool  # operators put in the deployed graph's order (nas.export.schedule)
    memory_plan: MemoryPlan | None = None  # the offline plan ``tflite`` carries
    unplanned: bytes = b""  # the same file without the plan (to verify the plan against)


def output_names(net: GraphNet) -> tuple[str, ...]:
    return OUTPUT_NAMES if net.arch.task == DETECTION else ("logits",)


def to_onnx(net: GraphNet, path: Path) -> None:
    """Eval-mode export; the exporter folds every BatchNorm into its convolution."""
    net = net.eval()
    x = torch.zeros(net.arch.input_shape)
    # dynamo=False: the TorchScript exporter is 30x faster here and its opset-13 output is
    # what onnx2tf converts best; its deprecation notice is not for our users.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # F.pad of a SAME-padded conv: a note about slices the exporter leaves unfolded.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=[INPUT_NAME], output_names=list(output_names(net)),
                          do_constant_folding=True)
    import onnx

    kinds = {node.op_type for node in onnx.load(str(path)).graph.node}
    if "BatchNormalization" in kinds:
        raise ConversionError("BatchNormalization survived ONNX export: BN was not folded")


@contextlib.contextmanager
def _onnx2tf_sandbox(workdir: Path, sample: np.ndarray) -> Iterator[None]:
    """cwd = workdir holding the sample file; the venv's bin on PATH (onnx2tf runs onnxsim
    as a subprocess and silently skips it when the tool is not found)."""
    np.save(workdir / ONNX2TF_SAMPLE, sample)
    old_cwd, old_path = Path.cwd(), os.environ.get("PATH", "")
    bin_dir = str(Path(sys.executable).parent)
    os.chdir(workdir)
    os.environ["PATH"] = bin_dir + os.pathsep + old_path
    try:
        yield
    finally:
        os.chdir(old_cwd)
        os.environ["PATH"] = old_path


def _onnx2tf_sample(images: np.ndarray, channels: int) -> np.ndarray:
    """Our calibration images as the (20, 128, 128, C) float array onnx2tf expects."""
    import tensorflow as tf

    x = np.moveaxis(normalise(images, channels), 1, 3)
    x = tf.image.resize(x, (128, 128)).numpy()
    reps = -(-20 // len(x))
    return np.concatenate([x] * reps)[:20].astype(np.float32)


def to_keras(onnx_path: Path, workdir: Path, images: np.ndarray, channels: int = 3) -> Any:
    import onnx2tf

    with _onnx2tf_sandbox(workdir, _onnx2tf_sample(images, channels)), \
            contextlib.redirect_stdout(sys.stderr if os.environ.get("TINYNAS_DEBUG") else
                                       open(os.devnull, "w")):
        return onnx2tf.convert(input_onnx_file_path=str(onnx_path),
                               output_folder_path=str(workdir / "saved_model"),
                               disable_model_save=True, non_verbose=True)


def quantise(model: Any, images: np.ndarray) -> bytes:
    """Full-integer int8 conversion calibrated on ``images`` (uint8 NHWC RGB)."""
    import tensorflow as tf

    channels = int(model.inputs[0].shape[-1])
    batches = np.moveaxis(normalise(images, channels), 1, 3).astype(np.float32)

    def representative() -> Iterator[list[np.ndarray]]:
        for x in batches:
            yield [x[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def float_outputs(net: GraphNet, images: np.ndarray) -> dict[str, np.ndarray]:
    """The float model's outputs by name, on uint8 NHWC images."""
    with torch.no_grad():
        outs = net.eval()(torch.from_numpy(normalise(images, net.arch.input_shape[1])))
    outs = outs if isinstance(outs, tuple) else (outs,)
    return {name: o.numpy() for name, o in zip(output_names(net), outs, strict=True)}



def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def identify_outputs(tflite: bytes, net: GraphNet, images: np.ndarray) -> dict[int, str]:
    """Output position -> "boxes" / "logits", by shape and, where shapes agree, by which
    assignment makes the int8 outputs most like the float ones."""
    from nas.export.runtimes import litert_outputs

    reference = float_outputs(net, images[:2])
    names = tuple(reference)
    outputs = litert_outputs(tflite, images[:2])
    if len(outputs) != len(names):
        raise ConversionError(f"the int8 model has {len(outputs)} outputs, expected "
                              f"{len(names)}")
    best, best_score = None, -np.inf
    for order in dict.fromkeys((names, names[::-1])):
        if any(out.shape != reference[name].shape for out, name in zip(outputs, order,
                                                                          strict=True)):
            continue
        score = sum(cosine(out, reference[name]) for out, name in zip(outputs, order,
                                                                        strict=True))
        if score > best_score:
            best, best_score = order, score
    if best is None:
        shapes = [o.shape for o in outputs]
        expected = {k: v.shape for k, v in reference.items()}
        raise ConversionError(f"int8 output shapes {shapes} do not match {expected}")
    return dict(enumerate(best))


@contextlib.contextmanager
def toolchain_log(path: Path) -> Iterator[None]:
    """Send the C++ logs of TensorFlow / the converter (fd 2) to ``path``; on failure, the
    last line of that log joins the error. ``TINYNAS_DEBUG=1`` leaves them on the terminal."""
    if os.environ.get("TINYNAS_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("wb") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except Exception as exc:
            os.dup2(saved, 2)
            lines = path.read_text(errors="replace").strip().splitlines()
            raise ConversionError(f"{type(exc).__name__}: {exc}".splitlines()[0]
                                  + (f" (toolchain: {lines[-1][:200]})" if lines else "")
                                  ) from exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def convert(net: GraphNet, images: np.ndarray, workdir: Path, offline_plan: bool = True
            ) -> Converted:
    """The whole chain for one model; ``images`` (uint8 NHWC) calibrate the quantisation.
    ``offline_plan``: write the arena plan into the file (:mod:`nas.export.memory_plan`)."""
    onnx_path = workdir / "model.onnx"
    to_onnx(net, onnx_path)
    with toolchain_log(workdir / "toolchain.log"):
        keras_model = to_keras(onnx_path, workdir, images, net.arch.input_shape[1])
        raw = quantise(keras_model, images)
    model = tflite.load(raw)
    fixed = rewrite.depthwise_from_grouped(model)
    try:
        reordered = schedule.reorder(model, deployed(net.arch.graph))
    except schedule.ScheduleError as exc:
        raise ConversionError(f"the converted graph differs from the deployed graph the "
                              f"estimators model: {exc}") from None
    positions = identify_outputs(rewrite.pack(model), net, images)
    rewrite.rename_io(model, {0: INPUT_NAME}, positions)
    unplanned = rewrite.pack(model)
    if not offline_plan:
        return Converted(onnx_path.read_bytes(), unplanned, fixed, reordered, None, unplanned)
    planned = memory_plan.embed(model)
    return Converted(onnx_path.read_bytes(), rewrite.pack(model), fixed, reordered, planned,
                     unplanned)
