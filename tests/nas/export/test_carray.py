from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from nas.export.carray import arena_define, read_c_array, write_c_array


def _write(tmp_path, data: bytes, **kwargs):
    header, source = tmp_path / "model_data.h", tmp_path / "model_data.cc"
    kwargs.setdefault("arena_bytes", 123_456)
    write_c_array(data, header, source, **kwargs)
    return header, source


@pytest.mark.parametrize("length", [1, 11, 12, 13, 24, 1000, 4099])
def test_round_trip(tmp_path, length):
    data = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8).tobytes()
    _, source = _write(tmp_path, data)
    assert read_c_array(source) == data


def test_round_trip_extreme_bytes_and_line_layout(tmp_path):
    data = bytes([0x00, 0xFF] * 13 + [0x7F])  # 27 bytes: two full lines and a partial one
    _, source = _write(tmp_path, data)
    assert read_c_array(source) == data
    rows = [line for line in source.read_text().splitlines() if line.startswith("  0x")]
    assert [len(re.findall(r"0x[0-9a-f]{2}", r)) for r in rows] == [12, 12, 3]
    assert rows[0].startswith("  0x00, 0xff, ")


def test_output_is_deterministic(tmp_path):
    data = bytes(range(256))
    a = [p.read_text() for p in _write(tmp_path, data, note="tiny for stm32h7")]
    b = [p.read_text() for p in _write(tmp_path, data, note="tiny for stm32h7")]
    assert a == b


def test_header_and_source_content(tmp_path):
    header, source = _write(tmp_path, bytes(100), arena_bytes=65_536,
                            note="tiny-ssd for stm32h7\nsecond line")
    h = header.read_text()
    assert "#ifndef TINYNAS_G_MODEL_DATA_H_" in h and "#define TINYNAS_G_MODEL_DATA_H_" in h
    assert h.rstrip().endswith("#endif  // TINYNAS_G_MODEL_DATA_H_")
    assert "#include <stddef.h>" in h and "#include <stdint.h>" in h
    assert "extern const unsigned char g_model[];" in h
    assert "extern const unsigned int g_model_len;" in h
    assert "#define G_MODEL_ARENA_BYTES 65536" in h
    assert "// tiny-ssd for stm32h7" in h and "// second line" in h
    assert "(100)" in h  # the comment states the length

    s = source.read_text()
    assert '#include "model_data.h"' in s
    assert "alignas(16) const unsigned char g_model[] = {" in s
    assert "const unsigned int g_model_len = 100;" in s


def test_custom_symbol_and_alignment(tmp_path):
    header, source = _write(tmp_path, b"\x01\x02", symbol="person_det", alignment=32)
    assert "#define PERSON_DET_ARENA_BYTES 123456" in header.read_text()
    assert "extern const unsigned char person_det[];" in header.read_text()
    assert "alignas(32) const unsigned char person_det[] = {" in source.read_text()
    assert read_c_array(source) == b"\x01\x02"
    assert arena_define("person_det") == "PERSON_DET_ARENA_BYTES"


@pytest.mark.parametrize("symbol", ["", "1model", "g-model", "g model", "int", "g_model;"])
def test_bad_symbol_refused(tmp_path, symbol):
    with pytest.raises(ValueError, match="not a C identifier") as info:
        _write(tmp_path, b"\x00", symbol=symbol)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "model_data.h").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"arena_bytes": 0}, "arena_bytes=0"),
    ({"arena_bytes": 1.5}, "arena_bytes=1.5"),
    ({"alignment": 12}, "alignment=12"),
])
def test_bad_arguments_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _write(tmp_path, b"\x00", **kwargs)


def test_empty_model_refused(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        _write(tmp_path, b"")


def test_read_checks_length(tmp_path):
    _, source = _write(tmp_path, bytes(30))
    source.write_text(source.read_text().replace("g_model_len = 30;", "g_model_len = 31;"))
    with pytest.raises(ValueError, match="g_model_len = 31 but g_model\\[\\] holds 30 bytes"):
        read_c_array(source)


def test_read_refuses_other_files(tmp_path):
    path = tmp_path / "x.cc"
    path.write_text("int main() { return 0; }\n")
    with pytest.raises(ValueError, match="no 'unsigned char"):
        read_c_array(path)


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler on this machine")
def test_files_compile_and_link(tmp_path):
    data = bytes(range(40))
    _write(tmp_path, data, arena_bytes=4096)
    (tmp_path / "main.cc").write_text(
        '#include "model_data.h"\n#include <cstdio>\n'
        "int main() { std::printf(\"%u %d %u\", g_model_len, G_MODEL_ARENA_BYTES,\n"
        "  (unsigned)(reinterpret_cast<uintptr_t>(g_model) % 16) + g_model[39]); }\n")
    exe = tmp_path / "main"
    subprocess.run(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                    "main.cc", "model_data.cc"], cwd=tmp_path, check=True)
    assert subprocess.run([str(exe)], capture_output=True, text=True,
                          check=True).stdout == "40 4096 39"
