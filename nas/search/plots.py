"""The Pareto plots of a study: a PNG (matplotlib, Agg: no display, no browser) and an
interactive HTML page (plotly, its JavaScript inlined so the page opens offline).

Two panels. Left: proxy score against predicted latency for the trials that fit; the feasible
Pareto front is highlighted and joined, dominated trials are grey, the seed baselines are
marked with their names. Right: every estimated trial against the share of its flash/RAM
budget it takes; infeasible trials live here only, because their proxy is -inf (they were
rejected before any scoring) and they have no place on the left.

:func:`plot_data` sorts the rows into those series and is plain Python, so it is testable
without the plotting libraries, which are imported only when a file is drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artefacts.atomic import atomic_write, atomic_write_text  # each plot appears whole
from estimators.budgets import format_bytes
from nas.search.trials import TrialRow

PNG_NAME, HTML_NAME = "pareto.png", "pareto.html"
FRONT_COLOUR, DOMINATED_COLOUR, INFEASIBLE_COLOUR, BASELINE_COLOUR = (
    "#1f77b4", "#b0b0b0", "#d62728", "#ff7f0e")


@dataclass(frozen=True)
class PlotData:
    title: str
    front: tuple[TrialRow, ...]  # fastest first, so the joining line is the front's shape
    dominated: tuple[TrialRow, ...]
    baselines: tuple[TrialRow, ...]
    infeasible: tuple[TrialRow, ...]
    latency_budget_ms: float | None
    # The right panel: every searched trial with a latency and a budget share (failed and
    # pruned ones too when they got that far: their estimates are real, their score is not).
    budgeted: tuple[TrialRow, ...] = ()


def staircase(front: Sequence[TrialRow]) -> list[TrialRow]:
    """The front points not dominated in the proxy-latency plane, fastest first: the line.
    With flash/RAM as objectives too, the study's front holds points that only win on memory;
    they are marked but not joined, or the line would zigzag."""
    best, out = float("-inf"), []
    for row in sorted(front, key=lambda r: (r.latency_ms or 0.0, -(r.proxy or 0.0))):
        if row.proxy is not None and row.proxy > best:
            best = row.proxy
            out.append(row)
    return out


def worst_use(row: TrialRow) -> float | None:
    """The larger of the flash and RAM budget shares, in percent."""
    shares = [s for s in (row.budget_used("flash"), row.budget_used("ram")) if s is not None]
    return 100 * max(shares) if shares else None


def _scored(row: TrialRow) -> bool:
    return row.proxy is not None and row.latency_ms is not None


def plot_data(title: str, front: Sequence[TrialRow], every: Iterable[TrialRow],
              baselines: Iterable[TrialRow] = ()) -> PlotData:
    on_front = {r.trial for r in front}
    every = list(every)
    dominated = tuple(r for r in every if r.feasible and r.trial not in on_front and _scored(r))
    infeasible = tuple(r for r in every if r.fits is False and r.latency_ms is not None)
    budgets = [b for b in (r.budget("latency") for r in every) if b is not None]
    budgeted = tuple(r for r in every if r.latency_ms is not None and worst_use(r) is not None)
    return PlotData(title, tuple(sorted((r for r in front if _scored(r)),
                                        key=lambda r: r.latency_ms or 0.0)),
                    dominated, tuple(b for b in baselines if _scored(b)), infeasible,
                    budgets[0] if budgets else None, budgeted)


def hover(row: TrialRow) -> str:
    """One trial in a few lines (plotly hover text; <br> breaks lines)."""
    lines = [f"<b>{row.name}</b> ({row.state.lower()})"]
    if row.proxy is not None:
        lines.append(f"proxy {row.proxy:.4g}")
    if row.latency_ms is not None:
        band = (f" ({row.latency_ms_low:.1f}-{row.latency_ms_high:.1f})"
                if row.latency_ms_low is not None and row.latency_ms_high is not None else "")
        lines.append(f"latency {row.latency_ms:.1f} ms{band}")
    if row.flash_bytes is not None and row.ram_bytes is not None:
        lines.append(f"flash {format_bytes(row.flash_bytes)}, RAM {format_bytes(row.ram_bytes)}")
    if row.macs is not None:
        lines.append(f"MACs {row.macs / 1e6:.2f} M")
    if row.input_size is not None:
        lines.append(f"{row.input_size} px, {row.head or '?'} head, {row.block_mix or '?'}")
    if row.rejected:
        lines.append(f"rejected: {row.rejected}")
    return "<br>".join(lines)


def write_png(data: PlotData, path: Path) -> Path:
    # Figure without pyplot: no global backend choice, no display needed (Agg renders PNG).
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 5.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    _png_front(left, data)
    _png_budgets(right, data)
    fig.suptitle(data.title)
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))


def _xy(rows: Sequence[TrialRow]) -> tuple[list[float], list[float]]:
    return [r.latency_ms or 0.0 for r in rows], [r.proxy or 0.0 for r in rows]


def _png_front(ax: Any, data: PlotData) -> None:
    ax.scatter(*_xy(data.dominated), s=18, c=DOMINATED_COLOUR, label="dominated (fits)")
    if data.front:
        # Steps, not straight segments: between two front points nothing better is known.
        ax.plot(*_xy(staircase(data.front)), drawstyle="steps-post", c=FRONT_COLOUR, lw=1.2,
                alpha=0.6)
        ax.scatter(*_xy(data.front), s=36, c=FRONT_COLOUR, label="Pareto front", zorder=3)
        for row in data.front:
            ax.annotate(f"#{row.trial}", (row.latency_ms, row.proxy), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    if data.baselines:
        ax.scatter(*_xy(data.baselines), s=90, marker="*", c=BASELINE_COLOUR,
                   label="baselines", zorder=4)
        for row in data.baselines:
            ax.annotate(row.name, (row.latency_ms, row.proxy), fontsize=8,
                        xytext=(4, -10), textcoords="offset points", color=BASELINE_COLOUR)
    if data.latency_budget_ms is not None:
        ax.axvline(data.latency_budget_ms, ls="--", c="k", lw=0.8, label="latency budget")
    ax.margins(x=0.12, y=0.08)  # room for the baselines' names at the edges
    ax.set_xlabel("predicted latency (ms)")
    ax.set_ylabel("accuracy proxy (higher is better)")
    ax.set_title("trials that fit the budget")
    ax.grid(alpha=0.3)
    if data.front or data.dominated or data.baselines:
        ax.legend(fontsize=8, loc="lower right")


def _png_budgets(ax: Any, data: PlotData) -> None:
    fits = [r for r in data.budgeted if r.fits is not False]
    broke = [r for r in data.budgeted if r.fits is False]
    ax.scatter([worst_use(r) for r in fits], [r.latency_ms for r in fits], s=14,
               c=DOMINATED_COLOUR, label="fits")
    ax.scatter([worst_use(r) for r in broke], [r.latency_ms for r in broke], s=22, marker="x",
               c=INFEASIBLE_COLOUR, label="rejected (over budget)")
    ax.axvline(100, ls="--", c="k", lw=0.8)
    if data.latency_budget_ms is not None:
        ax.axhline(data.latency_budget_ms, ls="--", c="k", lw=0.8)
    ax.set_xlabel("share of the flash/RAM budget used, the larger (%)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"all estimated trials ({len(broke)} rejected)")
    ax.grid(alpha=0.3)
    if fits or broke:
        ax.legend(fontsize=8, loc="upper left")


def write_html(data: PlotData, path: Path) -> Path:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], subplot_titles=(
        "trials that fit the budget", "all estimated trials"))
    for trace in _front_traces(go, data):
        fig.add_trace(trace, row=1, col=1)
    for trace in _budget_traces(go, data):
        fig.add_trace(trace, row=1, col=2)
    fig.add_vline(x=100, line_dash="dash", line_width=1, row=1, col=2)
    if data.latency_budget_ms is not None:
        fig.add_vline(x=data.latency_budget_ms, line_dash="dash", line_width=1, row=1, col=1)
        fig.add_hline(y=data.latency_budget_ms, line_dash="dash", line_width=1, row=1, col=2)
    fig.update_xaxes(title_text="predicted latency (ms)", row=1, col=1)
    fig.update_yaxes(title_text="accuracy proxy (higher is better)", row=1, col=1)
    fig.update_xaxes(title_text="share of the flash/RAM budget used, the larger (%)",
                     row=1, col=2)
    fig.update_yaxes(title_text="predicted latency (ms)", row=1, col=2)
    fig.update_layout(title_text=data.title, template="plotly_white", hovermode="closest")
    # include_plotlyjs=True inlines plotly.js (~4 MB): the page needs no network.
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    return atomic_write_text(path, html)


def _scatter(go: Any, rows: Sequence[TrialRow], x: list[Any], y: list[Any], name: str,
             **style: Any) -> Any:
    return go.Scatter(x=x, y=y, name=name, text=[hover(r) for r in rows],
                      hovertemplate="%{text}<extra></extra>", **style)


def _front_traces(go: Any, data: PlotData) -> list[Any]:
    traces = [_scatter(go, data.dominated, *_xy(data.dominated), "dominated (fits)",
                       mode="markers", marker={"color": DOMINATED_COLOUR, "size": 6})]
    if data.front:
        line = staircase(data.front)
        traces.append(_scatter(go, line, *_xy(line), "front line", mode="lines",
                               line={"shape": "hv", "width": 1.5, "color": FRONT_COLOUR},
                               hoverinfo="skip", showlegend=False))
        traces.append(_scatter(go, data.front, *_xy(data.front), "Pareto front",
                               mode="markers", marker={"color": FRONT_COLOUR, "size": 9}))
    if data.baselines:
        traces.append(_scatter(go, data.baselines, *_xy(data.baselines), "baselines",
                               mode="markers+text", textposition="bottom right",
                               texttemplate=[r.name for r in data.baselines],
                               marker={"color": BASELINE_COLOUR, "size": 14,
                                       "symbol": "star"}))
    return traces


def _budget_traces(go: Any, data: PlotData) -> list[Any]:
    fits = [r for r in data.budgeted if r.fits is not False]
    broke = [r for r in data.budgeted if r.fits is False]
    return [
        _scatter(go, fits, [worst_use(r) for r in fits], [r.latency_ms for r in fits],
                 "fits", mode="markers", marker={"color": DOMINATED_COLOUR, "size": 5}),
        _scatter(go, broke, [worst_use(r) for r in broke], [r.latency_ms for r in broke],
                 "rejected (over budget)", mode="markers",
                 marker={"color": INFEASIBLE_COLOUR, "size": 7, "symbol": "x"}),
    ]


def write_plots(data: PlotData, out_dir: Path) -> dict[str, str | None]:
    """Both files into ``out_dir``; a missing plotting library skips its file (None) with the
    reason, rather than losing the table the user asked for."""
    written: dict[str, str | None] = {}
    for key, name, draw in (("png", PNG_NAME, write_png), ("html", HTML_NAME, write_html)):
        try:
            written[key] = str(draw(data, out_dir / name))
        except ImportError as exc:
            written[key] = None
            written[f"{key}_error"] = f"{name} not written: {exc.name or exc} is not installed"
    return written
