from __future__ import annotations

import json
import re

import pytest

from nas.export.card import CARD_FORMAT, REQUIRED_KEYS, card_json, render_markdown


def _result(**changes):
    """What the pipeline measured for a small model; every number is distinct so a test can
    tell which key a printed figure came from."""
    result = {
        "name": "tiny-ssd", "model": {"format": "tinynas-model/1", "num_classes": 2,
                                      "name": "tiny-ssd",
                                      "genome": {"resolution": 96, "head": {"kind": "ssdlite"}}},
        "class_names": ["person", "car"], "num_classes": 2, "input_shape": [96, 96, 3],
        "num_priors": 178, "params": 31_904, "macs": 1_234_567,
        "target": "stm32h7", "board": "STM32H743 (Cortex-M7)", "runtime": "tflm-cmsis-nn",
        "clock_mhz": 480,
        "tflite_bytes": 83_344, "tflite_bytes_estimated": 80_000,
        "tflite_bytes_rel_error": -0.0401,
        "tflm_arena_bytes": 60_000, "tflm_arena_head_bytes": 51_200,
        "tflm_arena_tail_bytes": 8_800, "arena_bytes_estimated": 61_440,
        "arena_bytes_rel_error": 0.024, "arena_bytes_estimated_target": 56_320,
        "runtime_code_flash_bytes": 102_400, "runtime_ram_bytes": 10_240,
        "flash_bytes_total": 185_744, "ram_bytes_total": 66_560,
        "flash_budget": 524_288, "ram_budget": 262_144, "fits": True, "violations": [],
        "litert_ms": 0.412, "tflm_ms": 23.456, "latency_runs": 20,
        "latency_ms": 151.5, "latency_ms_low": 120.25, "latency_ms_high": 190.75,
        "latency_clock_mhz": 480, "latency_calibration_rows": 0, "latency_thin_data": True,
        "parity_cosine_boxes": 0.99512, "parity_cosine_scores": 0.99871,
        "parity_max_abs_error_boxes": 0.1234, "parity_max_abs_error_scores": 0.0456,
        "parity_threshold": 0.98, "parity_images": 16,
        "calibration": {"source": "synthetic shapes (seed 0)", "images": 64},
        "toolchain": {"torch": "2.13.0", "onnx2tf": "1.29.24", "tensorflow-cpu": "2.19.0"},
        "created": "2026-01-02", "out_dir": "/tmp/out",
    }
    result.update(changes)
    return result


def _row(markdown: str, label: str) -> list[str]:
    """The cells of the memory table's row starting with ``label``."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in:\n{markdown}")


def test_memory_table_rows_values_and_sources():
    md = render_markdown(_result())
    assert _row(md, "Activation RAM (arena)")[1:3] == ["55.00 KiB", "measured + estimated"]
    assert _row(md, "↳ TFLM arena, 64-bit host build") == [
        "↳ TFLM arena, 64-bit host build", "58.59 KiB", "measured", "60.00 KiB", "+2.4 %"]
    assert _row(md, "Runtime RAM")[1:3] == ["10.00 KiB", "estimated"]
    assert _row(md, "Weights flash (.tflite)") == [
        "Weights flash (.tflite)", "81.39 KiB", "measured", "78.12 KiB", "-4.0 %"]
    assert _row(md, "Code flash (runtime)")[1:3] == ["100.00 KiB", "estimated"]
    assert _row(md, "Total RAM")[1:3] == ["65.00 KiB", "measured + estimated"]
    assert _row(md, "Total flash")[1:3] == ["181.39 KiB", "measured + estimated"]
    assert _row(md, "Latency, host LiteRT (x86, 1 thread)")[1:3] == ["0.412 ms", "measured"]
    assert _row(md, "Latency, host TFLM (reference kernels)")[1:3] == ["23.46 ms", "measured"]
    # Figures the estimator did not predict get no estimate cells.
    assert _row(md, "Total RAM")[3:] == ["", ""]


def test_summary_budget_parity_and_usage():
    md = render_markdown(_result())
    assert md.startswith("# tiny-ssd: int8 object detector for STM32H743 (Cortex-M7)\n")
    for text in ("96x96x3 image (int8, NHWC)", "2 classes (`person`, `car`)", "178 prior boxes",
                 "31,904 parameters", "1.23 M MACs", "`tflm-cmsis-nn`",
                 "`stm32h7`, the STM32H743 (Cortex-M7) at 480 MHz",
                 "SSDLite head"):
        assert text in md, text
    assert "flash 512.00 KiB, RAM 256.00 KiB. Fits: **yes**." in md
    assert "| boxes (offsets) | 0.9951 | 0.1234 |" in md
    assert "| scores (softmax) | 0.9987 | 0.0456 |" in md
    assert "16 images" in md and "cosine >= 0.98" in md and "Passed: **yes**" in md
    assert "**not** latency on the STM32H743" in md
    assert "Predicted on the STM32H743 (Cortex-M7) with tflm-cmsis-nn at 480 MHz" in md
    assert "derived from published ratios" in md and "thin" in md
    assert "band" in md and "151.5" in md
    assert "64 images from synthetic shapes (seed 0)" in md
    assert "| `onnx2tf` | 1.29.24 |" in md and "| `torch` | 2.13.0 |" in md
    for text in ("`model_int8.tflite`", "`model_data.h`", "G_MODEL_ARENA_BYTES",
                 "x = (p - 127.5) / 127.5", "zero point", "`boxes` (1, 178, 4)",
                 "`logits` (1, 178, 3)", "nas.detector.load_detector"):
        assert text in md, text


def test_optional_keys_are_shown_when_present():
    md = render_markdown(_result(input_quantization={"scale": 0.00784313725, "zero_point": -1},
                                 tflm_vs_litert_max_lsb=1, weights="random init (seed 0)"))
    assert "In this file: scale 0.00784314, zero point -1." in md
    assert "differ by at most 1 LSB" in md
    assert "Weights: random init (seed 0)." in md
    assert "In this file" not in render_markdown(_result())


def test_violations_and_failed_parity_are_shown():
    md = render_markdown(_result(fits=False, violations=["ram 301.2 KiB > budget 256.0 KiB"],
                                 parity_cosine_scores=0.95))
    assert "Fits: **no**." in md
    assert "- ram 301.2 KiB > budget 256.0 KiB" in md
    assert "Passed: **no**" in md


def test_none_prints_na_and_never_claims_a_measurement():
    md = render_markdown(_result(tflm_ms=None, tflm_arena_bytes=None,
                                 arena_bytes_rel_error=None, litert_ms=None,
                                 parity_cosine_boxes=None, parity_max_abs_error_scores=None,
                                 ram_bytes_total=None, arena_bytes_estimated_target=None))
    assert _row(md, "Latency, host TFLM (reference kernels)")[1:3] == ["n/a", "not measured"]
    assert _row(md, "Latency, host LiteRT (x86, 1 thread)")[1:3] == ["n/a", "not measured"]
    assert _row(md, "↳ TFLM arena, 64-bit host build")[1:] == [
        "n/a", "not measured", "60.00 KiB", "n/a"]
    assert _row(md, "Total RAM")[1:3] == ["n/a", "not measured"]
    assert _row(md, "Activation RAM (arena)")[1:3] == ["n/a", "not measured"]
    assert "| boxes (offsets) | n/a | 0.1234 |" in md
    assert "| scores (softmax) | 0.9987 | n/a |" in md
    assert "Passed: n/a" in md
    assert "TFLite Micro with its reference kernels n/a" in md
    assert "None" not in md


def test_card_json_keeps_every_key_at_top_level():
    result = _result()
    card = card_json(result)
    assert card["format"] == CARD_FORMAT == "tinynas-card/1"
    assert set(REQUIRED_KEYS) <= set(card)
    assert {k: v for k, v in card.items() if k != "format"} == result
    assert json.loads(json.dumps(card)) == card
    card["calibration"]["images"] = 0  # a copy: the pipeline's result is not changed
    assert result["calibration"]["images"] == 64


def test_missing_keys_are_named():
    result = _result()
    del result["tflm_ms"], result["toolchain"]
    for fn in (render_markdown, card_json):
        with pytest.raises(ValueError, match=re.escape("lacks tflm_ms, toolchain")):
            fn(result)


def test_baseline_model_and_long_class_list():
    names = [f"c{i}" for i in range(25)]
    md = render_markdown(_result(model={"format": "tinynas-model/1", "num_classes": 25,
                                        "baseline": "etn-w0.35-ssdlite"},
                                 class_names=names, num_classes=25))
    assert "baseline `etn-w0.35-ssdlite`" in md
    assert "`c19` and 5 more" in md and "`c20`" not in md
    assert "`logits` (1, 178, 26)" in md


def test_xcubeai_card_shows_the_models_code_and_runtime_ram_not_the_fixed_bound():
    """On xcubeai the runtime rows are the X-CUBE-AI model's figures for this network (what
    the totals add), not the 112 KiB / 32 KiB upper bound the runtime record carries."""
    figures = {}
    for key, value in (("activation_ram", 40_960), ("weights_flash", 30_720),
                       ("code_flash", 51_200), ("runtime_ram", 2_048)):
        figures |= {f"{key}_bytes": value, f"{key}_bytes_low": value - 1024,
                    f"{key}_bytes_high": value + 1024}
    md = render_markdown(_result(runtime="xcubeai", runtime_code_flash_bytes=114_688,
                                 memory_model="X-CUBE-AI model (STEdgeAI Core 3.0.0)",
                                 **figures))
    assert _row(md, "Code flash (runtime)")[1:3] == ["50.00 KiB", "estimated"]
    assert _row(md, "Runtime RAM")[1:3] == ["2.00 KiB", "estimated"]
    assert "112.00 KiB" not in md
