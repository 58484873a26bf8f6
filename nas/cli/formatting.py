"""How the commands' tables write numbers: one home for each formatter several of them use
(AP in %, byte sizes with a placeholder, latency with its band, the fits verdict, MACs)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from estimators.budgets import format_bytes


def millions(n: int) -> str:
    return f"{n / 1e6:,.3f} M"


def compact(n: int) -> str:
    """12.3M / 456.7k / 89: narrow enough for an 80-column table."""
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    return f"{n / 1e3:.1f}k" if n >= 10_000 else str(n)


def ap(value: Any) -> str:
    """An AP (a fraction) in %, one decimal; '-' when there is none (a class absent from the
    split, a model not trained)."""
    return "-" if not isinstance(value, int | float) else f"{100 * value:.1f}"


def size(n: int | None, missing: str = "-") -> str:
    """Bytes in binary units (``512.0 KiB``); ``missing`` when unknown."""
    return missing if n is None else format_bytes(n)


def latency_band(ms: float | None, low: float | None, high: float | None) -> str:
    """``12.3 (11.0-14.1)`` in ms; the point alone when the band is unknown, '-' when there is
    no prediction (a trial that failed before it was estimated)."""
    if ms is None:
        return "-"
    if low is None or high is None:
        return f"{ms:,.1f}"
    return f"{ms:,.1f} ({low:,.1f}-{high:,.1f})"


def latency_text(row: dict[str, Any]) -> str:
    """An estimate row's latency with its unit and band (every estimate has a band)."""
    return (f"{row['latency_ms']:,.1f} ms ({row['latency_ms_low']:,.1f}-"
            f"{row['latency_ms_high']:,.1f})")


def fits_text(fits: bool | None) -> Text:
    if fits is None:
        return Text("-")
    return Text("yes", style="green") if fits else Text("no", style="bold red")


def component_lines(components: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A proxy's parts as table rows under its score (``estimate --proxy``, ``show``); the
    score itself is the row above them."""
    return [(f"  {key}", _component(value)) for key, value in (components or {}).items()
            if key != "score"]


def _component(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.4g}" if isinstance(value, float) else "-"
