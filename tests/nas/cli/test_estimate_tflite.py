"""``tinynas estimate MODEL.tflite``: our exports and a tf_keras -> TFLiteConverter file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from estimators.deploy import deployed
from estimators.estimate import Budgets
from estimators.ram import TAIL_MCU32, tail_bytes
from estimators.targets import get_target
from estimators.tflite import schema
from estimators.xcubeai import xcubeai_memory
from nas.cli.estimate_row import model_row
from nas.export.files import LAYOUT
from nas.export.inspect import deployed_from_tflite, kernels_from_tflite
from nas.export.runtimes import tflm_arena
from search_space.baselines import get_baseline


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small Keras classifier converted three ways: full int8, float, dynamic-range
    (hybrid). About 15 s (TensorFlow import and three conversions)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(128, activation="relu")(x)  # big enough for dynamic range
    model = keras.Model(inp, keras.layers.Dense(4)(x))

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield [rng.uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)]

    out = tmp_path_factory.mktemp("keras_tflite")
    files = {}
    for kind in ("int8", "float", "hybrid"):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if kind != "float":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if kind == "int8":
            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = conv.inference_output_type = tf.int8
        files[kind] = out / f"{kind}.tflite"
        files[kind].write_bytes(conv.convert())
    return files


def _json(cli, *argv: str) -> tuple[int, dict]:
    code, out, err = cli("estimate", *argv, "--json")
    assert code in (0, 1), err
    return code, json.loads(out)


@pytest.mark.slow
def test_our_export_on_xcubeai_matches_the_graph_estimate(cli, tiny_int8_export, tiny_spec):
    path = tiny_int8_export[0] / LAYOUT.model
    code, row = _json(cli, str(path), "--target", "stm32h7")
    assert code == 0 and row["fits"]
    baseline_keys = set(model_row(get_baseline("mbv1-0.25-96-c5"), get_target("stm32h7"),
                                  Budgets(1 << 30, 1 << 30)))
    assert baseline_keys <= set(row) and set(row) - baseline_keys == {"model_file"}
    # The file's graph gives the same X-CUBE-AI figures as the graph it was exported from.
    ours = xcubeai_memory(deployed(tiny_spec.lower().graph))
    assert row["weights_flash_bytes"] == ours.weights_flash.bytes
    assert row["activation_ram_bytes"] == pytest.approx(ours.activation_ram.bytes, rel=0.02)
    assert row["ram_bytes"] == row["activation_ram_bytes_high"] + row["runtime_ram_bytes_high"]
    assert row["flash_bytes"] == row["weights_flash_bytes_high"] + row["code_flash_bytes_high"]
    assert row["latency_ms_low"] <= row["latency_ms"] <= row["latency_ms_high"]


def test_keras_int8_file_on_a_tflm_runtime_is_measured(cli, keras_files):
    data = keras_files["int8"].read_bytes()
    code, row = _json(cli, str(keras_files["int8"]), "--target", "esp32s3")
    target = get_target("esp32s3")
    head = tflm_arena(data).head_bytes
    assert row["arena_bytes_estimated"] == head + tail_bytes(deployed_from_tflite(data),
                                                             TAIL_MCU32)
    assert row["ram_bytes"] == row["arena_bytes_estimated"] + target.runtime.ram_bytes
    assert row["flash_bytes"] == len(data) + target.runtime.code_flash_bytes
    assert row["macs"] == sum(k.macs for k in kernels_from_tflite(data)) > 0
    assert row["input_shape"] == [3, 32, 32] and row["memory_model"] == "TFLite Micro arena plan"
    # The same exit codes as for a baseline: 1 when it does not fit.
    code, out, _ = cli("estimate", str(keras_files["int8"]), "--target", "esp32s3",
                       "--ram", "1KiB")
    assert code == 1 and "ram" in out


def test_keras_int8_file_on_xcubeai(cli, keras_files):
    code, row = _json(cli, str(keras_files["int8"]), "--target", "stm32h7")
    assert code == 0 and row["runtime"] == "xcubeai"
    # int8 weights + int32 biases of the file; the dense layers' biases are still zero and
    # the converter drops them (the operand is -1).
    weights = 8 * 27 + 8 * 9 + 16 * 8 + 16 * 128 + 128 * 4
    biases = 4 * (8 + 8 + 16)
    assert row["weights_flash_bytes"] == weights + biases


@pytest.mark.parametrize("kind, word", [("float", "is a float model"),
                                        ("hybrid", "is a hybrid (int8 weights")])
def test_float_and_hybrid_files_are_refused(cli, keras_files, kind, word):
    code, out, err = cli("estimate", str(keras_files[kind]), "--target", "stm32h7")
    assert code == 2 and out == ""
    assert word in err and "full-int8" in err and len(err.strip().splitlines()) == 1


def test_a_file_tflm_cannot_load_is_refused(cli, keras_files, tmp_path):
    model = schema.ModelT.InitFromPackedBuf(keras_files["int8"].read_bytes(), 0)
    code = model.operatorCodes[-1]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = "NotInTFLM"
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "custom.tflite"
    path.write_bytes(bytes(builder.Output()))
    code, out, err = cli("estimate", str(path), "--target", "esp32")
    assert code == 2 and out == ""
    assert "does not load in TFLite Micro" in err and len(err.strip().splitlines()) == 1
