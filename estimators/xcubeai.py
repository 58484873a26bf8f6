"""X-CUBE-AI / STEdgeAI memory of a deployed int8 graph: activations, weights, code, runtime RAM.

ST's code generator does not run TFLite Micro: it compiles the graph into C with its own
memory plan, so the TFLM arena is the wrong figure for it (35-50% too high on ST's own
networks). This model follows what is known of how it allocates, and fits the few numbers
that are not known on ST's published runs (``published_device_runs.csv``):

* **Fused layers, no PAD buffer.** Convolution, bias, BN and the activation are one C layer;
  a PAD is folded into the convolution that reads it and a RESHAPE is a view of its input, so
  neither owns a buffer. The model therefore never depends on PAD ops being in the graph.
* **Inputs and outputs in the activations buffer** (``--allocate-inputs`` /
  ``--allocate-outputs``, the defaults of both releases): the input tensor is a live buffer
  of the plan like any other. A QUANTIZE in front (a uint8 input, as in ST's zoo files) is a
  conversion layer with its own output buffer, so the input counts twice while it runs.
* **Concatenation in place.** Each input of a CONCATENATION that nothing else reads is
  written into its slice of the output, which is live from the first slice's producer on.
* **Overlapping buffers.** When a layer is the last reader of its input, the output may be
  placed over it: a depthwise convolution writes each output row after reading the rows it
  needs, a 1x1 convolution each pixel after reading it. ``overlap_depthwise`` and
  ``overlap_pointwise`` are the fitted fractions of ``min(input, output)`` the plan saves
  there (other layers, a full 3x3 convolution included, get none).
* **Peak, then the planner's slack.** The activations figure is ``scale x peak + offset``,
  where ``peak`` is the largest live set over the layers with those overlaps; ``scale`` and
  ``offset`` absorb per-layer scratch buffers and the planner's fragmentation.
* **Weights** are exact: int8 weights plus int32 biases (the per-channel scales live in the
  generated C code, so they count as code), which reproduces ST's "weights flash" to its
  rounding on every published row.
* **Code flash** (runtime library + generated network code) is ``base + per_layer x layers +
  per_channel x requantised channels``, **runtime RAM** (the runtime's and the network's
  own structures outside the activations) ``base + per_layer x layers + per_merge x
  layers reading two buffers``: STEdgeAI 3.0's jumps from 0.3-0.7 KiB to 3.4-3.8 KiB
  between MobileNet v1 and v2, whose residual adds are the difference.

Every figure carries a band from its leave-one-out relative errors on the published rows of
its tool version (``estimators.xcubeai_fit``), as latency does: ``high`` is what a budget is
checked against, so a model the estimate passes fits for sure within the errors seen.

The tool version is an input (:data:`VERSIONS`); the default is the newest release with
published runs, STEdgeAI Core 3.0.0. The same file's figures differ between versions
(STM32Cube.AI 10.0.0's activations are up to 48% larger for mobilenet_v1 1.0).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from estimators.deploy import (
    BIAS,
    CONCATENATION,
    CONV_2D,
    DEPTHWISE_CONV_2D,
    FC_PER_CHANNEL,
    FULLY_CONNECTED,
    PAD,
    RESHAPE,
    WEIGHT,
    DeployedGraph,
)

DATA_PATH = Path(__file__).parent / "data" / "xcubeai_memory.json"
SCHEMA = "tinynas-xcubeai-memory/1"
STEDGEAI_3_0 = "STEdgeAI Core 3.0.0"
CUBEAI_10_0 = "STM32Cube.AI 10.0.0"
VERSIONS = (STEDGEAI_3_0, CUBEAI_10_0)
DEFAULT_VERSION = STEDGEAI_3_0
FIGURES = ("activation_ram", "weights_flash", "code_flash", "runtime_ram")
# Ops that own no buffer in X-CUBE-AI's plan: their output is their input.
_VIEWS = frozenset({PAD, RESHAPE})
_PER_CHANNEL = frozenset({CONV_2D, DEPTHWISE_CONV_2D} | ({FULLY_CONNECTED} if FC_PER_CHANNEL
                                                        else set()))


class XCubeAIModelError(ValueError):
    """The shipped coefficients are missing, malformed, or lack the asked tool version."""


# -- the graph as X-CUBE-AI plans it -----------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    """One C layer: its kind, the bytes of its first input and its output, the bytes of every
    other live buffer while it runs, and whether it is its input's last reader."""

    kind: str
    in_bytes: int
    out_bytes: int
    other_bytes: int
    last_reader: bool
    pointwise: bool
    inputs: int = 1


Step = tuple[Any, list[int], int]  # op, its data inputs, its output


def _fold_views(graph: DeployedGraph) -> tuple[list[Step], dict[int, int]]:
    """The ops that own a buffer, each with its data inputs and output, PADs and RESHAPEs
    folded into the tensor they read; and tensor -> the buffer it is a view of."""
    alias: dict[int, int] = {}

    def root(t: int) -> int:
        while t in alias:
            t = alias[t]
        return t

    steps: list[Step] = []
    for op in graph.ops:
        data = [root(t) for t in graph.activation_inputs(op)]
        if op.kind in _VIEWS and data:
            alias[op.output] = data[0]
            continue
        steps.append((op, data, op.output))
    return steps, {t: root(t) for t in (*graph.inputs, *graph.outputs)}


def concat_slices(steps: list[Step], outer: set[int]) -> dict[int, int]:
    """Tensor -> the CONCATENATION output it is written into directly.

    X-CUBE-AI writes each input of a concatenation straight into its slice of the output
    buffer when that input has no other reader (and is not the network's input): the inputs
    then own no buffer, and the output is live from the first slice's producer on."""
    readers: dict[int, int] = {}
    for _, data, _ in steps:
        for t in data:
            readers[t] = readers.get(t, 0) + 1
    return {t: out for op, data, out in steps if op.kind == CONCATENATION
            for t in data if readers[t] == 1 and t not in outer}


def layers(graph: DeployedGraph) -> list[Layer]:
    """The fused layers in execution order, PADs and RESHAPEs folded away, concatenation
    inputs written in place into their output."""
    steps, roots = _fold_views(graph)
    into = concat_slices(steps, set(roots.values()))

    def size(t: int) -> int:
        return 0 if t in into else graph.nbytes(t)

    first = dict.fromkeys((roots[t] for t in graph.inputs), 0)
    last = dict(first)
    for i, (_, data, out) in enumerate(steps):
        for t in data:
            last[t] = i
        first.setdefault(out, i)  # a concatenation is live from its first slice on
        if out in into:
            first.setdefault(into[out], i)
        last[out] = i
    for t in graph.outputs:
        last[roots[t]] = max(len(steps) - 1, 0)
    delta = [0] * (len(steps) + 1)
    for t, start in first.items():
        delta[start] += size(t)
        delta[last[t] + 1] -= size(t)
    found, running = [], 0
    for i, (op, data, out) in enumerate(steps):
        running += delta[i]
        x = data[0] if data else out
        live = running - size(out) - (size(x) if x != out else 0)
        weight = graph.tensors[op.inputs[1]].shape if op.kind == CONV_2D else ()
        found.append(Layer(op.kind, size(x) if data else 0, size(out), live,
                           last.get(x) == i and bool(data),
                           pointwise=len(weight) == 4 and weight[1] == weight[2] == 1,
                           inputs=len(data)))
    return found


def activation_peak(plan: list[Layer], overlap_depthwise: float, overlap_pointwise: float
                    ) -> int:
    """Largest live set over the layers, each output overlapping its dying input by the
    given fraction of the smaller of the two."""
    best = 0.0
    for layer in plan:
        share = 0.0
        if layer.last_reader:
            if layer.kind == DEPTHWISE_CONV_2D:
                share = overlap_depthwise
            elif layer.pointwise:
                share = overlap_pointwise
        live = (layer.other_bytes + layer.in_bytes + layer.out_bytes
                - share * min(layer.in_bytes, layer.out_bytes))
        best = max(best, live)
    return round(best)


def weights_bytes(graph: DeployedGraph) -> int:
    """int8 weights + int32 biases: X-CUBE-AI's "weights" (read-only) section."""
    return sum(t.nbytes for t in graph.tensors if t.role in (WEIGHT, BIAS))


def requantised_channels(graph: DeployedGraph) -> int:
    """Output channels of per-channel layers: each has its multiplier and shift in the code."""
    return sum(graph.tensors[op.output].shape[-1] for op in graph.ops if op.kind in _PER_CHANNEL)


@dataclass(frozen=True)
class Features:
    """What the figures are computed from (one graph, independent of the tool version)."""

    plan: tuple[Layer, ...]
    weights: int
    layers: int
    channels: int
    merges: int  # layers reading two or more buffers (residual ADDs, CONCATENATIONs)

    @classmethod
    def of(cls, graph: DeployedGraph) -> Features:
        plan = tuple(layers(graph))
        return cls(plan, weights_bytes(graph), len(plan), requantised_channels(graph),
                   sum(layer.inputs > 1 for layer in plan))


# -- the fitted model -----------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """One estimated figure in bytes with the band [low, high] the truth should lie in."""

    bytes: int
    low: int
    high: int


def band(value: float, error_range: tuple[float, float]) -> Figure:
    """prediction = truth x (1 + e), e in error_range -> the interval of the truth."""
    e_min, e_max = error_range
    return Figure(round(value), int(value / (1.0 + e_max)), -int(-value // (1.0 + e_min)))


@dataclass(frozen=True)
class XCubeAIModel:
    """Coefficients of one tool version and the leave-one-out error range of each figure."""

    version: str
    overlap_depthwise: float
    overlap_pointwise: float
    activation_scale: float
    activation_offset: float
    code_base: float
    code_per_layer: float
    code_per_channel: float
    runtime_ram_base: float
    runtime_ram_per_layer: float
    runtime_ram_per_merge: float
    errors: dict[str, tuple[float, float]]
    rows: int
    source: str = ""

    def __post_init__(self) -> None:
        missing = [f for f in FIGURES if f not in self.errors]
        if missing:
            raise XCubeAIModelError(f"X-CUBE-AI model {self.version!r} has no error range for "
                                    f"{', '.join(missing)}")
        for figure, (low, high) in self.errors.items():
            if not -1.0 < low <= high:
                raise XCubeAIModelError(f"X-CUBE-AI model {self.version!r}: error range of "
                                        f"{figure} {low, high} needs -1 < low <= high")

    def point(self, f: Features) -> dict[str, float]:
        peak = activation_peak(list(f.plan), self.overlap_depthwise, self.overlap_pointwise)
        return {
            "activation_ram": self.activation_scale * peak + self.activation_offset,
            "weights_flash": float(f.weights),
            "code_flash": (self.code_base + self.code_per_layer * f.layers
                           + self.code_per_channel * f.channels),
            "runtime_ram": (self.runtime_ram_base + self.runtime_ram_per_layer * f.layers
                            + self.runtime_ram_per_merge * f.merges),
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["errors"] = {k: list(v) for k, v in self.errors.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> XCubeAIModel:
        try:
            values = dict(data)
            values["errors"] = {k: (float(v[0]), float(v[1])) for k, v in data["errors"].items()}
            return cls(**values)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise XCubeAIModelError(f"X-CUBE-AI model record is malformed: {exc}") from None


@dataclass(frozen=True)
class XCubeAIMemory:
    """The four figures of one graph for one tool version."""

    version: str
    activation_ram: Figure
    weights_flash: Figure
    code_flash: Figure
    runtime_ram: Figure

    @property
    def ram_high(self) -> int:
        return self.activation_ram.high + self.runtime_ram.high

    @property
    def flash_high(self) -> int:
        return self.weights_flash.high + self.code_flash.high

    def to_dict(self) -> dict[str, Any]:
        return figures_dict({f: getattr(self, f) for f in FIGURES})


def figures_dict(figures: dict[str, Figure]) -> dict[str, int]:
    """The JSON keys: ``<figure>_bytes`` with ``_low`` / ``_high``."""
    out: dict[str, int] = {}
    for name, fig in figures.items():
        out[f"{name}_bytes"] = fig.bytes
        out[f"{name}_bytes_low"] = fig.low
        out[f"{name}_bytes_high"] = fig.high
    return out


@cache
def shipped_models() -> dict[str, XCubeAIModel]:
    try:
        data = json.loads(DATA_PATH.read_text())
    except (OSError, ValueError) as exc:
        raise XCubeAIModelError(f"cannot read {DATA_PATH.name}: {exc}") from None
    if data.get("schema") != SCHEMA:
        raise XCubeAIModelError(f"{DATA_PATH.name}: schema {data.get('schema')!r}, "
                                f"expected {SCHEMA!r}")
    return {m["version"]: XCubeAIModel.from_dict(m) for m in data["models"]}


def model_for(version: str = DEFAULT_VERSION) -> XCubeAIModel:
    models = shipped_models()
    if version not in models:
        raise XCubeAIModelError(f"unknown X-CUBE-AI version {version!r}; fitted versions: "
                                f"{', '.join(models)}")
    return models[version]


def xcubeai_memory(graph: DeployedGraph, version: str = DEFAULT_VERSION,
                   model: XCubeAIModel | None = None) -> XCubeAIMemory:
    """The X-CUBE-AI figures of ``graph`` (our deployed graph, or one read from a file)."""
    model = model or model_for(version)
    point = model.point(Features.of(graph))
    figs = {f: band(point[f], model.errors[f]) for f in FIGURES}
    return XCubeAIMemory(model.version, **figs)
