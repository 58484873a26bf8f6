"""Parse and format memory sizes such as ``512KiB``, ``0.5MiB`` or ``524288``.

Parsing rules (``parse_bytes`` / ``parse_budget``):

* A size is a decimal number, an optional space, and an optional unit: ``512KiB``,
  ``1.5 MiB``, ``524288``. Surrounding spaces are ignored. No sign, exponent (``1e3``),
  thousands separators or underscores.
* Units are case-insensitive. Binary: ``B``, ``KiB`` (1024), ``MiB``, ``GiB``.
  SI: ``kB``/``KB`` (1000), ``MB``, ``GB``. ``B`` always means bytes, never bits.
* No unit, or ``B``, means bytes and must be a whole number.
* SI units are taken literally (``512KB`` = 512,000 bytes); the budget's ``note`` says so,
  because people often mean KiB, and a 2.4 % larger budget is the unsafe direction.
* Single-letter units (``512K``, ``2M``, ``1G``) are rejected: they are ambiguous between
  binary and SI, and guessing wrong could let a model that does not fit pass the check.
* A fractional result is rounded *down* to whole bytes (``0.3KiB`` -> 307): a budget is a
  ceiling, so rounding must never grant more than was asked for. The note says so.
* The size must be at least 1 byte after rounding.

Errors are ``BudgetError`` (a ``ValueError``) with a one-line message that quotes the bad value
and lists the valid forms.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

_BINARY_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SI_UNITS = {"kb": 1000, "mb": 1000**2, "gb": 1000**3}
_SI_TO_BINARY = {"kb": "KiB", "mb": "MiB", "gb": "GiB"}
_AMBIGUOUS = {"k": ("KiB", "kB"), "m": ("MiB", "MB"), "g": ("GiB", "GB")}

# digits with an optional fraction (or a bare fraction such as ".5"), then letters for the unit
_SIZE_RE = re.compile(r"(?P<number>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>[A-Za-z]*)")

_EXPONENT_RE = re.compile(r"(?P<number>(?:\d+(?:\.\d*)?|\.\d+)[eE][+-]?\d+)\s*"
                          r"(?P<unit>[A-Za-z]*)")

VALID_FORMS = ("use a number with an optional unit B, KiB, MiB, GiB (binary) or kB, MB, GB (SI), "
               "e.g. 512KiB, 0.5MiB, 524288")


class BudgetError(ValueError):
    """A size that cannot be parsed; the message is one line with the bad value and valid forms."""


@dataclass(frozen=True)
class Budget:
    """A parsed size: whole ``bytes``, the ``text`` it came from, and a ``note`` on how it was
    read when that may surprise (SI units, rounding), else ``None``."""

    bytes: int
    text: str
    note: str | None = None


def parse_bytes(text: str | int) -> int:
    """The number of bytes in ``text`` (see the module docstring for the accepted forms)."""
    return parse_budget(text).bytes


def parse_budget(text: str | int) -> Budget:
    """Parse a size such as ``512KiB``; SI units and rounding are explained in ``note``."""
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise BudgetError(f"invalid size {text!r}: {VALID_FORMS}")
    if isinstance(text, int):
        return _from_int(text)
    return _from_str(text)


def _from_int(value: int) -> Budget:
    if value <= 0:
        raise _error(value, "must be at least 1 byte")
    return Budget(bytes=value, text=str(value))


def _from_str(text: str) -> Budget:
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise _error(text, _why_not_a_size(text.strip()))
    number, written_unit = match["number"], match["unit"]
    factor = _unit_factor(text, number, written_unit)
    if factor == 1 and "." in number:
        raise _error(text, "a byte count must be a whole number")
    exact = Fraction(number) * factor
    size = math.floor(exact)
    if size < 1:
        raise _error(text, "must be at least 1 byte")
    rounding = _rounding_note(f"{number}{written_unit}", exact, size)
    notes = [n for n in (_si_note(number, written_unit, size), rounding) if n]
    return Budget(bytes=size, text=text.strip(), note="; ".join(notes) or None)


def _why_not_a_size(text: str) -> str | None:
    """The specific rule a malformed size breaks, when one is recognisable."""
    if not text:
        return "the size is empty"
    if text.startswith("-"):
        return "a size cannot be negative"
    exponent = _EXPONENT_RE.fullmatch(text)
    if exponent:
        plain = format(Decimal(exponent["number"]), "f")
        return f"no exponents (write {plain}{exponent['unit']})"
    if re.match(r"\d+[,_]\d", text):
        return "no thousands separators (write 524288 or 512KiB)"
    return None


def _unit_factor(text: str, number: str, written_unit: str) -> int:
    unit = written_unit.lower()
    if unit in _AMBIGUOUS:
        binary, si = _AMBIGUOUS[unit]
        raise _error(text, f"unit {written_unit!r} is ambiguous, write {number}{binary} "
                           f"(binary) or {number}{si} (SI)")
    factor = _BINARY_UNITS.get(unit or "b") or _SI_UNITS.get(unit)
    if factor is None:
        raise _error(text, f"unknown unit {written_unit!r}")
    return factor


def _si_note(number: str, written_unit: str, size: int) -> str | None:
    unit = written_unit.lower()
    if unit not in _SI_UNITS:
        return None
    binary_unit = _SI_TO_BINARY[unit]
    binary_size = math.floor(Fraction(number) * _BINARY_UNITS[binary_unit.lower()])
    return (f"{number}{written_unit} read as SI: {size:,} bytes "
            f"(use {number}{binary_unit} for {binary_size:,})")


def _rounding_note(size_text: str, exact: Fraction, size: int) -> str | None:
    if exact == size:
        return None
    return f"{size_text} = {float(exact):,.1f} bytes, rounded down to {size:,}"


def _error(text: str | int, reason: str | None = None) -> BudgetError:
    detail = f"{reason}; " if reason else ""
    return BudgetError(f"invalid size {text!r}: {detail}{VALID_FORMS}")


def format_bytes(n: int) -> str:
    """Human-readable binary size: ``912 B``, ``512.0 KiB``, ``1.50 MiB``, ``2.00 GiB``."""
    sign = "-" if n < 0 else ""
    size = abs(n)
    if size < 1024:
        return f"{sign}{size} B"
    # KiB with one decimal; MiB and GiB with two (a 0.1 MiB step is too coarse for budgets).
    # A value that would print as 1024.0 moves up to the next unit instead.
    for unit, scale, decimals in (("KiB", 1024, 1), ("MiB", 1024**2, 2)):
        value = round(size / scale, decimals)
        if value < 1024:
            return f"{sign}{value:.{decimals}f} {unit}"
    return f"{sign}{size / 1024**3:.2f} GiB"
