"""The model card of an export: ``model_card.md`` for people, ``model_card.json`` for tools.

The Markdown follows the ST model zoo cards (summary, memory footprint, accuracy/parity, how
to deploy) with one addition they lack: every figure says where it comes from. A RAM figure
that disagrees with the build is the worst failure a card can have, so ``measured`` (the real
TFLM interpreter's arena, the file's size, host runtimes), ``estimated`` (tinynas' estimators,
published runtime build sizes) and ``measured + estimated`` (sums of both) are kept apart, and
where the estimator predicted a measured figure its prediction and error are shown next to it.

Nothing is computed here that the pipeline did not measure or estimate: a ``None`` prints as
``n/a``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.export.carray import DEFAULT_SYMBOL, arena_define
from nas.export.files import LAYOUT
from search_space.detection import PIXEL_MEAN, PIXEL_STD
from search_space.priors import CENTER_VARIANCE, SIZE_VARIANCE

CARD_FORMAT = "tinynas-card/1"
NA = "n/a"
MEASURED, ESTIMATED, BOTH = "measured", "estimated", "measured + estimated"
NOT_RUN = "not measured"
FROM_FILE = "computed from the file"
MAX_CLASS_NAMES = 20  # a summary paragraph, not a label file: longer lists are cut

REQUIRED_KEYS = (
    "name", "model", "class_names", "num_classes", "input_shape", "num_priors", "params",
    "macs", "target", "board", "runtime", "clock_mhz", "tflite_bytes", "tflite_bytes_estimated",
    "tflite_bytes_rel_error", "tflm_arena_bytes", "tflm_arena_head_bytes",
    "tflm_arena_tail_bytes", "arena_bytes_estimated", "arena_bytes_rel_error",
    "arena_bytes_estimated_target", "runtime_code_flash_bytes", "runtime_ram_bytes",
    "flash_bytes_total", "ram_bytes_total", "flash_budget", "ram_budget", "fits", "violations",
    "litert_ms", "tflm_ms", "latency_runs", "parity_cosine_boxes", "parity_cosine_scores",
    "parity_max_abs_error_boxes", "parity_max_abs_error_scores", "parity_threshold",
    "parity_images", "calibration", "toolchain", "created", "out_dir",
)


def check_result(result: Mapping[str, Any]) -> None:
    """ValueError naming every key the card needs and ``result`` lacks."""
    missing = [key for key in REQUIRED_KEYS if key not in result]
    if missing:
        raise ValueError(f"export result lacks {', '.join(missing)}: cannot write a model card")


def card_json(result: Mapping[str, Any]) -> dict[str, Any]:
    """``model_card.json``: the result itself, every key at top level, plus ``format``."""
    check_result(result)
    card: dict[str, Any] = {"format": CARD_FORMAT}
    card.update((k, copy.deepcopy(v)) for k, v in result.items() if k != "format")
    return card


def render_markdown(result: Mapping[str, Any]) -> str:
    """``model_card.md``: a model card in the style of the ST model zoo."""
    check_result(result)
    r = result
    sections = [
        f"# {r['name']}: int8 object detector for {r['board']}",
        _summary(r),
        "## Memory and latency",
        _memory_table(r),
        _memory_notes(r),
        _budget(r),
        "## Parity of the int8 file with the float model",
        _parity(r),
        "## Host latency",
        _latency(r),
        "## Calibration",
        _calibration(r),
        "## Toolchain",
        _toolchain(r),
        "## Using the files",
        _usage(r),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


# --- formatting ---------------------------------------------------------------------------

def _kib(n: float | None) -> str:
    return NA if n is None else f"{n / 1024:,.2f} KiB"


def _ms(x: float | None) -> str:
    # Host LiteRT runs a small detector in well under a millisecond: keep 3 decimals there.
    if x is None:
        return NA
    return f"{x:,.2f} ms" if x >= 1 else f"{x:.3f} ms"


def _pct(x: float | None) -> str:
    return NA if x is None else f"{x * 100:+.1f} %"


def _count(n: float | None) -> str:
    return NA if n is None else f"{n:,}"


def _millions(n: float | None) -> str:
    return NA if n is None else f"{n / 1e6:,.2f} M"


def _num(x: float | None, fmt: str) -> str:
    return NA if x is None else format(x, fmt)


def _get(r: Mapping[str, Any], *path: str) -> Any:
    """``r[a][b]...`` or None when any level is missing (nested dicts are free-form)."""
    node: Any = r
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


# --- sections -----------------------------------------------------------------------------

def _model_kind(model: Mapping[str, Any]) -> str:
    if _get(model, "baseline"):
        return f"baseline `{model['baseline']}`"
    head = _get(model, "genome", "head", "kind")
    resolution = _get(model, "genome", "resolution")
    parts = ["a searched EtinyNet genome"]
    if head:
        parts.append(f"{head.upper() if head == 'ssd' else 'SSDLite'} head")
    if resolution:
        parts.append(f"resolution {resolution}")
    return ", ".join(parts)


def _class_list(names: Sequence[str]) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:MAX_CLASS_NAMES])
    rest = len(names) - MAX_CLASS_NAMES
    return shown + (f" and {rest} more" if rest > 0 else "")


def _colours(r: Mapping[str, Any]) -> str:
    shape = r.get("input_shape")
    return "grayscale (the mean of R, G and B)" if shape and shape[-1] == 1 else "RGB"


def _input_text(shape: Sequence[int] | None) -> str:
    if not shape or len(shape) != 3:
        return f"an input of shape {shape}"
    h, w, c = shape
    return f"a {h}x{w}x{c} image (int8, NHWC)"


def _summary(r: Mapping[str, Any]) -> str:
    n = r["num_classes"]
    classes = f"{n} class{'es' if n != 1 else ''} ({_class_list(r['class_names'])})"
    text = (
        f"**{r['name']}** is an SSD object detector from tinynas ({_model_kind(r['model'])}). "
        f"It takes {_input_text(r['input_shape'])} and detects {classes} over "
        f"{_count(r['num_priors'])} prior boxes, with {_count(r['params'])} parameters and "
        f"{_millions(r['macs'])} MACs per image. This full-int8 TFLite export targets "
        f"`{r['target']}`, the {r['board']} at {_num(r['clock_mhz'], 'g')} MHz, with the "
        f"`{r['runtime']}` runtime."
    )
    if r.get("weights"):
        text += f" Weights: {r['weights']}."
    return text + f" Created {r['created']}."


@dataclass(frozen=True)
class _Row:
    label: str
    value: str
    source: str
    estimate: str = ""
    error: str = ""


def _row(label: str, value: float | None, fmt: Any, source: str,
         estimate: float | None = None, error: float | None = None,
         has_estimate: bool = False) -> _Row:
    """One figure; a missing measurement says so instead of claiming a source."""
    shown_source = source if value is not None or source == ESTIMATED else NOT_RUN
    if not has_estimate:
        return _Row(label, fmt(value), shown_source)
    return _Row(label, fmt(value), shown_source, fmt(estimate), _pct(error))


def _xcubeai_rows(r: Mapping[str, Any]) -> list[_Row]:
    """The X-CUBE-AI model's figures (with their bands), which the totals use on xcubeai."""
    if not _is_xcubeai(r):
        return []
    labels = (("activation_ram", "activations"), ("weights_flash", "weights"),
              ("code_flash", "code flash"), ("runtime_ram", "runtime RAM"))
    return [_Row(f"{r['memory_model']}: {label} (band)",
                 f"{_kib(r[f'{key}_bytes'])} ({_kib(r[f'{key}_bytes_low'])}-"
                 f"{_kib(r[f'{key}_bytes_high'])})", ESTIMATED) for key, label in labels]


def _runtime_overheads(r: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(code flash, runtime RAM) of the runtime: on xcubeai the X-CUBE-AI model's figures for
    this network (the totals use them), not the runtime's fixed upper bound."""
    if _is_xcubeai(r) and "code_flash_bytes" in r:
        return r["code_flash_bytes"], r["runtime_ram_bytes"]
    return r["runtime_code_flash_bytes"], r["runtime_ram_bytes"]


def _is_xcubeai(r: Mapping[str, Any]) -> bool:
    return str(r.get("memory_model", "")).startswith("X-CUBE-AI")


def _memory_rows(r: Mapping[str, Any]) -> list[_Row]:
    code, runtime_ram = _runtime_overheads(r)
    return [
        _row("Activation RAM (arena)", r["arena_bytes_estimated_target"], _kib, BOTH),
        _row("↳ TFLM arena, 64-bit host build", r["tflm_arena_bytes"], _kib, MEASURED,
             r["arena_bytes_estimated"], r["arena_bytes_rel_error"], has_estimate=True),
        *_plan_rows(r),
        _row("Runtime RAM", runtime_ram, _kib, ESTIMATED),
        _row("Weights flash (.tflite)", r["tflite_bytes"], _kib, MEASURED,
             r["tflite_bytes_estimated"], r["tflite_bytes_rel_error"], has_estimate=True),
        _row("Code flash (runtime)", code, _kib, ESTIMATED),
        *_xcubeai_rows(r),
        _row("Total RAM", r["ram_bytes_total"], _kib, BOTH),
        _row("Total flash", r["flash_bytes_total"], _kib, BOTH),
        _row("Latency, host LiteRT (x86, 1 thread)", r["litert_ms"], _ms, MEASURED),
        _row("Latency, host TFLM (reference kernels)", r["tflm_ms"], _ms, MEASURED),
        *_predicted_latency_rows(r),
    ]


def _plan_rows(r: Mapping[str, Any]) -> list[_Row]:
    """The arena head three ways; cards written before offline plans have none of them."""
    if r.get("tflm_arena_head_default_bytes") is None:
        return []
    rows = [_row("↳ head with TFLM's default plan (no offline plan)",
                 r["tflm_arena_head_default_bytes"], _kib, MEASURED)]
    if r.get("arena_head_planned_bytes") is not None:
        rows.append(_row(f"↳ head with the file's offline plan ({r['offline_plan_method']})",
                         r["tflm_arena_head_bytes"], _kib, MEASURED))
    rows.append(_row("↳ floor: bytes alive at the worst operator", r["arena_head_floor_bytes"],
                     _kib, FROM_FILE))
    return rows


def _predicted_latency_rows(r: Mapping[str, Any]) -> list[_Row]:
    if r.get("latency_ms") is None:
        return []
    band = f"{_ms(r['latency_ms_low'])} to {_ms(r['latency_ms_high'])}"
    return [_row(f"Latency on the board at {r['latency_clock_mhz']} MHz (band {band})",
                 r["latency_ms"], _ms, ESTIMATED)]


def _table(header: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _memory_table(r: Mapping[str, Any]) -> str:
    rows = [(x.label, x.value, x.source, x.estimate, x.error) for x in _memory_rows(r)]
    return _table(("", "value", "source", "tinynas estimate", "estimate error"),
                  ("---", "---:", "---", "---:", "---:"), rows)


def _memory_notes(r: Mapping[str, Any]) -> str:
    notes = [
        f"- **Activation RAM** is the arena the {r['board']} needs: the head measured by the "
        f"TFLM interpreter on the host ({_kib(r['tflm_arena_head_bytes'])}: activations placed "
        f"{_placed_by(r)}, whose sizes do not depend on the word size) plus "
        "tinynas' estimate of the "
        "persistent tail on a 32-bit build (runtime structs are smaller than on the 64-bit "
        f"host, whose measured tail is {_kib(r['tflm_arena_tail_bytes'])}).",
        "- **Runtime RAM** and **Code flash** are the runtime's own costs, estimated from "
        f"published build sizes of `{r['runtime']}`; the totals add them to the model's figures.",
        "- **Estimate error** = (estimate - measured) / measured: how far tinynas' estimator, "
        "which the search relies on, was from the real figure for this model.",
        "- Kernel scratch buffers of optimised kernels (CMSIS-NN, ESP-NN) are not in the arena "
        "figures.",
    ]
    return "\n".join(notes)


def _placed_by(r: Mapping[str, Any]) -> str:
    if r.get("offline_plan"):
        return ("at the offsets of the offline memory plan the file carries "
                "(`OfflineMemoryAllocation` metadata; TFLM allocated exactly that head, outputs "
                "bit-identical to the file without the plan)")
    return "by TFLM's own greedy memory planner (the file carries no offline plan)"


def _yes_no(flag: bool | None) -> str:
    return NA if flag is None else ("**yes**" if flag else "**no**")


def _budget(r: Mapping[str, Any]) -> str:
    text = (f"Budget (model + runtime): flash {_kib(r['flash_budget'])}, RAM "
            f"{_kib(r['ram_budget'])}. Fits: {_yes_no(r['fits'])}.")
    violations = r["violations"] or []
    if violations:
        text += "\n\n" + "\n".join(f"- {v}" for v in violations)
    return text


def _parity_passed(r: Mapping[str, Any]) -> bool | None:
    figures = (r["parity_cosine_boxes"], r["parity_cosine_scores"], r["parity_threshold"])
    if any(f is None for f in figures):
        return None
    return min(figures[:2]) >= figures[2]


def _parity(r: Mapping[str, Any]) -> str:
    intro = (f"The int8 file's dequantised outputs against the float PyTorch model on "
             f"{_count(r['parity_images'])} images. Required: cosine >= "
             f"{_num(r['parity_threshold'], 'g')} for both outputs. Passed: "
             f"{_yes_no(_parity_passed(r))}.")
    rows = [
        ("boxes (offsets)", _num(r["parity_cosine_boxes"], ".4f"),
         _num(r["parity_max_abs_error_boxes"], ".4g")),
        ("scores (softmax)", _num(r["parity_cosine_scores"], ".4f"),
         _num(r["parity_max_abs_error_scores"], ".4g")),
    ]
    text = intro + "\n\n" + _table(("output", "cosine", "max abs error"),
                                   ("---", "---:", "---:"), rows)
    lsb = r.get("tflm_vs_litert_max_lsb")  # optional: TFLM and LiteRT on the same input
    if lsb is not None:
        text += (f"\n\nTFLite Micro and LiteRT outputs on the same int8 input differ by at "
                 f"most {lsb} LSB.")
    return text


def _latency(r: Mapping[str, Any]) -> str:
    return (
        f"Median of {_count(r['latency_runs'])} runs on the export host (x86): LiteRT with one "
        f"thread {_ms(r['litert_ms'])}, TFLite Micro with its reference kernels "
        f"{_ms(r['tflm_ms'])}.\n\n"
        f"These are host measurements, **not** latency on the {r['board']}."
        + _board_latency(r)
    )


def _board_latency(r: Mapping[str, Any]) -> str:
    if r.get("latency_ms") is None:
        return ""
    thin = (" The calibration data for this board and runtime is thin: treat the band as "
            "indicative and check on the board (`tinynas calibrate`)."
            if r.get("latency_thin_data") else "")
    rows = r.get("latency_calibration_rows") or 0
    basis = (f"calibrated on {rows} board runs" if rows else
             "derived from published ratios between runtimes (no board runs of this runtime)")
    return (f" Predicted on the {r['board']} with {r['runtime']} at {r['latency_clock_mhz']} "
            f"MHz: {_ms(r['latency_ms'])} ({_ms(r['latency_ms_low'])} to "
            f"{_ms(r['latency_ms_high'])}), {basis}.{thin}")


def _calibration(r: Mapping[str, Any]) -> str:
    images, source = _get(r, "calibration", "images"), _get(r, "calibration", "source")
    return (f"int8 scales and zero points were calibrated on {_count(images)} images from "
            f"{source if source is not None else NA}.")


def _toolchain(r: Mapping[str, Any]) -> str:
    tools = r["toolchain"] or {}
    if not tools:
        return NA
    rows = [(f"`{name}`", str(version)) for name, version in sorted(tools.items())]
    return _table(("package", "version"), ("---", "---"), rows)


def _usage(r: Mapping[str, Any]) -> str:
    define = arena_define(DEFAULT_SYMBOL)
    c1 = r["num_classes"] + 1 if isinstance(r["num_classes"], int) else "C + 1"
    p = r["num_priors"] if r["num_priors"] is not None else "P"
    f = LAYOUT
    return f"""\
- `{f.model}`: the full-int8 model (int8 input and outputs) for TFLite Micro or LiteRT.
- `{f.c_header}` / `{f.c_source}`: the same bytes as `{DEFAULT_SYMBOL}[]` (16-byte aligned,
  `{DEFAULT_SYMBOL}_len` bytes) and `{define}`, the tensor arena to reserve (the Activation RAM
  above).
- `{f.genome}`: the model spec, class names and output names.
- `{f.card_json}`: every figure of this card.

```cpp
#include "{f.c_header}"
alignas(16) static uint8_t tensor_arena[{define}];
const tflite::Model* model = tflite::GetModel({DEFAULT_SYMBOL});
tflite::MicroInterpreter interpreter(model, op_resolver, tensor_arena, {define});
```

**Input** `images`: int8, NHWC, {_colours(r)}, shape (1, {_shape_text(r['input_shape'])}). Normalise
each pixel p (0..255) as `search_space.detection.normalise` does,
x = (p - {PIXEL_MEAN:g}) / {PIXEL_STD:g}, then quantise with the input tensor's scale and zero
point stored in the file: q = clamp(round(x / scale) + zero_point, -128, 127).{_input_quant(r)}

**Outputs** (dequantise each with its own scale and zero point, x = (q - zero_point) * scale):
`boxes` (1, {p}, 4), SSD offsets against the {p} priors (cx, cy, w, h; variances
{CENTER_VARIANCE:g} / {SIZE_VARIANCE:g}), and `logits` (1, {p}, {c1}), class logits with the
background first. Decode with the priors (`Architecture.priors()`): softmax, box decoding,
class-wise NMS. On the host, `nas.detector.load_detector("<export dir>").detect(images)` does
all of it on the int8 file."""


def _shape_text(shape: Sequence[int] | None) -> str:
    return ", ".join(str(s) for s in shape) if shape else NA


def _input_quant(r: Mapping[str, Any]) -> str:
    scale, zero = _get(r, "input_quantization", "scale"), _get(r, "input_quantization",
                                                               "zero_point")
    if scale is None or zero is None:  # optional key: read them from the file instead
        return ""
    return f" In this file: scale {scale:.6g}, zero point {zero}."
