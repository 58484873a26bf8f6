from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nas.calibrate.user import MeasurementsError, read_measurements
from nas.export.files import LAYOUT
from nas.export.inspect import kernels_from_tflite


def _csv(folder: Path, text: str) -> Path:
    path = folder / "runs.csv"
    path.write_text(text)
    return path


def _error(path: Path) -> str:
    with pytest.raises(MeasurementsError) as info:
        read_measurements(path)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.slow
def test_good_file_reads_export_dirs_and_tflite_files(tiny_int8_export, tmp_path):
    out, _ = tiny_int8_export
    tflite = out / LAYOUT.model
    path = _csv(tmp_path, f"# board: STM32H743 @ 480 MHz\n"
                          f"Model, Latency_ms ,note\n"
                          f"\n"
                          f"{out},12.5,median of 50\n"
                          f"{tflite},13\n"
                          f"{out},12.75,\"second run, warm\"\n")
    rows = read_measurements(path)
    expected = tuple(kernels_from_tflite(tflite.read_bytes()))
    assert [(r.line, r.model, r.latency_ms, r.note) for r in rows] == [
        (4, str(out), 12.5, "median of 50"), (5, str(tflite), 13.0, ""),
        (6, str(out), 12.75, "second run, warm")]
    assert all(r.kernels == expected and r.source == str(tflite.resolve()) for r in rows)


@pytest.mark.slow
def test_relative_paths_start_from_the_csv_folder(tiny_int8_export, tmp_path, monkeypatch):
    out, _ = tiny_int8_export
    shutil.copytree(out, tmp_path / "exports" / "tiny")
    shutil.copy(out / LAYOUT.model, tmp_path / "exports" / "tiny.tflite")
    _csv(tmp_path, "latency_ms,model\n3.5,exports/tiny\n4,exports/tiny.tflite\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rows = read_measurements(Path("..") / "runs.csv")
    assert [r.source for r in rows] == [
        str((tmp_path / "exports" / "tiny" / LAYOUT.model).resolve()),
        str((tmp_path / "exports" / "tiny.tflite").resolve())]
    assert rows[0].kernels == rows[1].kernels and rows[0].kernels


def test_missing_file(tmp_path):
    assert _error(tmp_path / "runs.csv") == f"{tmp_path / 'runs.csv'}: no such file; give the " \
        "CSV of your board runs (model,latency_ms[,note])"


@pytest.mark.parametrize("text", ["", "\n# only a comment\n\n"])
def test_empty_file(tmp_path, text):
    path = _csv(tmp_path, text)
    assert _error(path).startswith(f"{path}: empty; expected a header (model,latency_ms")


def test_header_without_rows(tmp_path):
    path = _csv(tmp_path, "# nothing measured yet\nmodel,latency_ms\n# later\n")
    assert _error(path).startswith(f"{path}: no measurements after the header (line 2)")


def test_missing_header_column(tmp_path):
    path = _csv(tmp_path, "model,ms\na.tflite,3\n")
    message = _error(path)
    assert message.startswith(f"{path} line 1: the header 'model,ms' lacks latency_ms;")
    assert "model,latency_ms[,note]" in message


def test_data_without_header(tmp_path):
    path = _csv(tmp_path, "a.tflite,3\n")
    assert "line 1: the header 'a.tflite,3' lacks model, latency_ms" in _error(path)


def test_unknown_header_column(tmp_path):
    path = _csv(tmp_path, "# runs\nmodel,latency_ms,board\na.tflite,3,h7\n")
    assert _error(path) == (f"{path} line 2: unknown column 'board' in the header; valid "
                            "columns are model, latency_ms (required) and note (optional)")


def test_repeated_header_column(tmp_path):
    path = _csv(tmp_path, "model,latency_ms,model\n")
    assert _error(path) == f"{path} line 1: column 'model' appears twice in the header"


@pytest.mark.parametrize("value", ["abc", "0", "-3", "nan", "inf", ""])
def test_latency_must_be_a_positive_number(tmp_path, value):
    path = _csv(tmp_path, f"model,latency_ms\n\na.tflite,{value}\n")
    assert _error(path) == (f"{path} line 3: latency_ms {value!r} is not a positive number "
                            "of milliseconds (e.g. 41.2)")


def test_too_many_values(tmp_path):
    path = _csv(tmp_path, "model,latency_ms\na.tflite,3,extra\n")
    assert _error(path).startswith(f"{path} line 2: 3 values but the header has 2 columns")


def test_empty_model(tmp_path):
    path = _csv(tmp_path, "model,latency_ms\n,3\n")
    assert _error(path).startswith(f"{path} line 2: model is empty;")


def test_study_trials_need_a_storage(tmp_path):
    path = _csv(tmp_path, "model,latency_ms\nstudy:h7/trial:12,3\n")
    assert _error(path) == (f"{path} line 2: model 'study:h7/trial:12' names a search trial, "
                            "but no study storage was given")


def test_malformed_study_reference(tmp_path):
    path = _csv(tmp_path, "model,latency_ms\nstudy:h7/12,3\n")
    with pytest.raises(MeasurementsError, match="write study:NAME/trial:N"):
        read_measurements(path, lambda study, trial: tmp_path)


def test_study_trial_resolves_to_its_export_dir(tmp_path):
    asked = []

    def exports(study: str, trial: int) -> Path:
        asked.append((study, trial))
        raise ValueError(f"trial {trial} of study '{study}': it was never exported")

    path = _csv(tmp_path, "model,latency_ms\nstudy:h7/trial:12,3\n")
    with pytest.raises(MeasurementsError) as info:
        read_measurements(path, exports)
    assert asked == [("h7", 12)]
    assert str(info.value) == (f"{path} line 2: model 'study:h7/trial:12': trial 12 of study "
                               "'h7': it was never exported")


@pytest.mark.slow
def test_study_trial_reads_the_trial_export(tiny_int8_export, tmp_path):
    out, _ = tiny_int8_export
    path = _csv(tmp_path, "model,latency_ms\nstudy:h7/trial:3,3\n")
    rows = read_measurements(path, lambda study, trial: out)
    assert rows[0].source == str((out / LAYOUT.model).resolve()) and rows[0].kernels


def test_missing_model_path(tmp_path):
    path = _csv(tmp_path, "model,latency_ms\nmodels/nope.tflite,3\n")
    assert _error(path) == (f"{path} line 2: model 'models/nope.tflite' not found (looked for "
                            f"{(tmp_path / 'models' / 'nope.tflite').resolve()}); relative "
                            "paths start from the CSV's folder")


def test_directory_without_model(tmp_path):
    (tmp_path / "export").mkdir()
    path = _csv(tmp_path, "model,latency_ms\nexport,3\n")
    message = _error(path)
    assert message.startswith(f"{path} line 2: directory 'export' ")
    assert f"holds no {LAYOUT.model}" in message


def test_file_that_is_not_a_tflite_model(tmp_path):
    (tmp_path / "junk.tflite").write_bytes(b"PK\x03\x04 a zip, not a model")
    path = _csv(tmp_path, "model,latency_ms\njunk.tflite,3\n")
    message = _error(path)
    assert message.startswith(f"{path} line 2: model 'junk.tflite' ")
    assert "not a TFLite model" in message
