from __future__ import annotations

import pytest

from estimators.budgets import Budget, BudgetError, format_bytes, parse_budget, parse_bytes


@pytest.mark.parametrize(("text", "expected"), [
    ("512KiB", 524_288),
    ("0.5MiB", 524_288),
    ("2MiB", 2_097_152),
    ("1.5 MiB", 1_572_864),
    ("1GiB", 1_073_741_824),
    ("524288", 524_288),
    ("912B", 912),
    ("912 b", 912),
    ("512kib", 524_288),
    ("512 KIB", 524_288),
    ("  256KiB  ", 262_144),
    (".5KiB", 512),
    ("512KB", 512_000),
    ("512kB", 512_000),
    ("512kb", 512_000),
    ("2MB", 2_000_000),
    ("1.5MB", 1_500_000),
    ("1GB", 1_000_000_000),
    ("0.3KiB", 307),
    (524_288, 524_288),
    (1, 1),
])
def test_parse_bytes_good(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", [
    "lots", "-5KiB", "0", "", "   ", "512 KiBs", "1e3KiB", "512K", "2M", "1g", "1.5B",
    "1.5", "0KiB", "0.0001KiB", "1,024", "524_288", "KiB", "5 5KiB", "+5KiB", "512 KiB B",
    "512Kb/s", 0, -1, True, 1.5, None,
])
def test_parse_bytes_bad(text):
    with pytest.raises(BudgetError) as info:
        parse_bytes(text)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"invalid size {text!r}")
    assert "KiB" in message and "kB" in message and "e.g. 512KiB" in message


def test_error_message_matches_the_documented_form():
    with pytest.raises(BudgetError) as info:
        parse_budget("lots")
    assert str(info.value) == (
        "invalid size 'lots': use a number with an optional unit B, KiB, MiB, GiB (binary) "
        "or kB, MB, GB (SI), e.g. 512KiB, 0.5MiB, 524288")


def test_ambiguous_single_letter_suggests_both_readings():
    with pytest.raises(BudgetError, match=r"write 512KiB \(binary\) or 512kB \(SI\)"):
        parse_budget("512K")


def test_budget_error_is_a_value_error():
    assert issubclass(BudgetError, ValueError)


def test_si_note_is_explicit():
    budget = parse_budget("512KB")
    assert budget == Budget(bytes=512_000, text="512KB",
                            note="512KB read as SI: 512,000 bytes (use 512KiB for 524,288)")


def test_si_note_for_megabytes():
    assert parse_budget("2MB").note == "2MB read as SI: 2,000,000 bytes (use 2MiB for 2,097,152)"


@pytest.mark.parametrize("text", ["512KiB", "0.5MiB", "524288", "1.5 MiB"])
def test_exact_binary_sizes_have_no_note(text):
    assert parse_budget(text).note is None


def test_fraction_is_rounded_down_and_noted():
    budget = parse_budget("0.3KiB")
    assert budget.bytes == 307
    assert budget.note == "0.3KiB = 307.2 bytes, rounded down to 307"


def test_budget_keeps_the_text():
    assert parse_budget(" 1.5 MiB ").text == "1.5 MiB"
    assert parse_budget(2048).text == "2048"


@pytest.mark.parametrize(("n", "expected"), [
    (0, "0 B"),
    (912, "912 B"),
    (1023, "1023 B"),
    (1024, "1.0 KiB"),
    (524_288, "512.0 KiB"),
    (1_572_864, "1.50 MiB"),
    (1_048_575, "1.00 MiB"),  # would be "1024.0 KiB"; moves up a unit instead
    (3 * 1024**3, "3.00 GiB"),
    (-2048, "-2.0 KiB"),
])
def test_format_bytes(n, expected):
    assert format_bytes(n) == expected


@pytest.mark.parametrize("text", ["512KiB", "1.5 MiB", "912"])
def test_format_round_trips_binary_sizes(text):
    n = parse_bytes(text)
    assert parse_bytes(format_bytes(n).replace(" ", "")) == n
