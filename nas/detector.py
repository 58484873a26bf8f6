"""Run an exported full-int8 ``.tflite`` detector on the host, the way firmware runs it.

Accuracy must be measured on the file that ships, not on the float model it came from (the
ST model zoo lost up to 4.4 AP between the two). :class:`Detector` feeds the int8 file
exactly as firmware must (``search_space.detection.normalise``, then the input's own scale
and zero point), dequantises its outputs and decodes them with the same
:func:`~search_space.detection.postprocess` and priors as the float model, so any difference
between the two comes from the int8 file alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.export.files import LAYOUT, check_genome
from nas.export.runtimes import Quantisation
from search_space.baselines import BaselineError
from search_space.detection import Detections, PostProcess, normalise, postprocess
from search_space.genome import GenomeError
from search_space.model import DETECTION
from search_space.spec import ModelSpec

OUTPUT_ROLES = ("boxes", "logits")


class DetectorError(ValueError):
    """An export directory, its ``genome.json`` or its ``.tflite`` cannot be used."""


def _quantisation(detail: Mapping[str, Any], what: str, path: Path) -> Quantisation:
    if detail["dtype"] != np.int8:
        raise DetectorError(f"{path}: {what} '{detail['name']}' is "
                            f"{np.dtype(detail['dtype']).name}, expected int8 (not a "
                            "full-int8 file)")
    scales = detail["quantization_parameters"]["scales"]
    zeros = detail["quantization_parameters"]["zero_points"]
    # Activations are quantised per tensor; several scales would mean a file we did not make.
    if len(scales) != 1 or len(zeros) != 1 or not scales[0] > 0:
        raise DetectorError(f"{path}: {what} '{detail['name']}' is not quantised per tensor "
                            f"(scales {list(scales)})")
    return Quantisation(float(scales[0]), int(zeros[0]))


class Detector:
    """An int8 ``.tflite`` detector of ``spec``, run by LiteRT (one thread, batch 1).

    ``outputs`` names the file's output tensors: ``{"boxes": name, "logits": name}``. Names,
    not positions, because conversion reorders outputs; and names, not shapes, because with
    3 foreground classes both outputs are (1, P, 4). Where the shapes differ they are
    checked against the names.
    """

    def __init__(self, model_path: str | Path, spec: ModelSpec, outputs: Mapping[str, str],
                 class_names: Sequence[str] | None = None) -> None:
        self.path = Path(model_path)
        self.spec = spec
        arch = spec.lower()
        if arch.task != DETECTION:
            raise DetectorError(f"{self.path}: {spec.label} is a {arch.task} network, not a "
                                "detector")
        self.priors = arch.priors()
        self._size = arch.input_size
        # Images are always RGB; a grayscale model (1 input channel) gets their average.
        self._channels = arch.input_shape[1]
        self.class_names = tuple(class_names) if class_names is not None else tuple(
            str(i) for i in range(spec.num_classes))
        self._interpreter = _open(self.path)
        self._input, self.input_quantisation = self._check_input()
        self._outputs = self._check_outputs(outputs)

    @property
    def input_size(self) -> int:
        return self._size

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def output_quantisations(self) -> dict[str, Quantisation]:
        return {role: quant for role, (_, quant) in self._outputs.items()}

    def _check_input(self) -> tuple[int, Quantisation]:
        details = self._interpreter.get_input_details()
        expected = (1, self._size, self._size, self._channels)
        if len(details) != 1 or tuple(details[0]["shape"]) != expected:
            shapes = [tuple(int(s) for s in d["shape"]) for d in details]
            raise DetectorError(f"{self.path}: input shapes {shapes}, expected one {expected} "
                                f"for {self.spec.label}")
        return details[0]["index"], _quantisation(details[0], "input", self.path)

    def _check_outputs(self, names: Mapping[str, str]) -> dict[str, tuple[int, Quantisation]]:
        if not isinstance(names, Mapping) or set(names) != set(OUTPUT_ROLES):
            raise DetectorError(f"{self.path}: outputs must name 'boxes' and 'logits', got "
                                f"{dict(names) if isinstance(names, Mapping) else names!r}")
        by_name = {d["name"]: d for d in self._interpreter.get_output_details()}
        p, c1 = len(self.priors), self.spec.num_classes + 1
        expected = {"boxes": (1, p, 4), "logits": (1, p, c1)}
        shapes = {n: tuple(int(s) for s in d["shape"]) for n, d in by_name.items()}
        found = {}
        for role in OUTPUT_ROLES:
            name = names[role]
            if name not in by_name:
                raise DetectorError(f"{self.path}: no output tensor {name!r} (for {role}); "
                                    f"the file's outputs are {sorted(by_name)}")
            if shapes[name] != expected[role]:
                raise DetectorError(_shape_mismatch(self.path, role, name, shapes, expected))
            found[role] = (by_name[name]["index"],
                           _quantisation(by_name[name], f"output {role}", self.path))
        if names["boxes"] == names["logits"]:
            raise DetectorError(f"{self.path}: boxes and logits both name {names['boxes']!r}")
        return found

    def _check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        expected = f"(N, {self._size}, {self._size}, 3) uint8"
        if images.ndim != 4 or images.shape[1:] != (self._size, self._size, 3):
            raise ValueError(f"images of shape {images.shape}: expected {expected} for "
                             f"{self.spec.label}")
        if images.dtype != np.uint8:
            raise ValueError(f"images of dtype {images.dtype}: expected {expected}")
        return images

    def raw(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dequantised head outputs of uint8 RGB images (N, S, S, 3): boxes (N, P, 4) and
        logits (N, P, C + 1), float32, as the float model's ``forward`` gives them."""
        images = self._check_images(images)
        # normalise() gives NCHW (the PyTorch layout); the int8 file is NHWC.
        x = np.moveaxis(normalise(images, self._channels), 1, -1)
        q = self.input_quantisation.quantise(x)
        boxes, logits = [], []
        for one in q:  # the file has batch 1
            b, c = self._invoke(one[None])
            boxes.append(b)
            logits.append(c)
        p, c1 = len(self.priors), self.spec.num_classes + 1
        if not boxes:
            return np.zeros((0, p, 4), np.float32), np.zeros((0, p, c1), np.float32)
        return np.stack(boxes), np.stack(logits)

    def _invoke(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        it = self._interpreter
        it.set_tensor(self._input, q)
        it.invoke()
        return tuple(quant.dequantise(it.get_tensor(index)[0])  # type: ignore[return-value]
                     for index, quant in (self._outputs[r] for r in OUTPUT_ROLES))

    def detect(self, images: np.ndarray, config: PostProcess | None = None
               ) -> list[Detections]:
        """uint8 RGB images (N, S, S, 3) -> one :class:`Detections` per image, decoded as
        the float model's ``GraphNet.detect`` decodes."""
        boxes, logits = self.raw(images)
        return [postprocess(b, c, self.priors, config or PostProcess())
                for b, c in zip(boxes, logits, strict=True)]


def _shape_mismatch(path: Path, role: str, name: str, shapes: Mapping[str, tuple[int, ...]],
                    expected: Mapping[str, tuple[int, ...]]) -> str:
    other = "logits" if role == "boxes" else "boxes"
    hint = ""
    if shapes[name] == expected[other]:
        hint = f" (it has the shape of {other}: are boxes and logits swapped?)"
    return (f"{path}: output {name!r} named as {role} has shape {shapes[name]}, expected "
            f"{expected[role]}{hint}")


def _open(path: Path) -> Any:
    # Imported here: LiteRT is only needed by callers that run a file.
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise DetectorError(f"{path}: not a usable TFLite file ({_reason(exc)})") from None
    return interpreter


def _reason(exc: Exception) -> str:
    """LiteRT's first message line. For a non-TFLite file the message quotes the file's
    first bytes and fails to decode as UTF-8: decode it leniently instead."""
    text = str(exc)
    if isinstance(exc, UnicodeDecodeError) and isinstance(exc.object, bytes):
        text = exc.object.decode("utf-8", errors="replace")
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _paths(path: str | Path) -> tuple[Path, Path]:
    """(the .tflite, its genome.json) for an export dir or the file inside it."""
    path = Path(path)
    if path.is_dir():
        model = path / LAYOUT.model
        if not model.is_file():
            raise DetectorError(f"{path}: no {LAYOUT.model} in this directory (expected an "
                                "export directory or the .tflite inside it)")
        return model, path / LAYOUT.genome
    if not path.exists():
        raise DetectorError(f"{path}: no such file or directory")
    return path, path.parent / LAYOUT.genome


def _read_export(genome: Path) -> dict[str, Any]:
    if not genome.is_file():
        raise DetectorError(f"{genome}: missing; an export directory holds {LAYOUT.model} and "
                            f"{LAYOUT.genome} side by side")
    try:
        data = json.loads(genome.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise DetectorError(f"{genome}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DetectorError(f"{genome}: not valid JSON ({exc.msg} at line {exc.lineno})"
                            ) from None
    try:
        return check_genome(data)
    except ValueError as exc:
        raise DetectorError(f"{genome}: {exc}") from None


def _spec(data: dict[str, Any], genome: Path) -> tuple[ModelSpec, tuple[str, ...]]:
    try:
        spec = ModelSpec.from_dict(data["model"])
    except (GenomeError, BaselineError) as exc:
        raise DetectorError(f"{genome}: {exc}") from None
    names = data["class_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) \
            or len(names) != spec.num_classes:
        raise DetectorError(f"{genome}: class_names must be {spec.num_classes} strings (the "
                            f"model's class count), got {names!r}")
    return spec, tuple(names)


def load_detector(path: str | Path) -> Detector:
    """The :class:`Detector` of an export directory, or of the ``model_int8.tflite`` in one
    (its ``genome.json`` is read from beside it)."""
    model, genome = _paths(path)
    data = _read_export(genome)
    spec, class_names = _spec(data, genome)
    outputs = data["outputs"]
    if not isinstance(outputs, dict) or not all(isinstance(outputs.get(r), str)
                                                for r in OUTPUT_ROLES):
        raise DetectorError(f"{genome}: outputs must map 'boxes' and 'logits' to tensor "
                            f"names, got {outputs!r}")
    return Detector(model, spec, outputs, class_names)
