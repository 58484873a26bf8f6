"""The Pareto plots: which trial goes in which series, both files written whole."""

from __future__ import annotations

import dataclasses

import pytest

from nas.search import plots, trials


def _data(vs):
    return plots.plot_data("t", trials.front(vs.study), trials.rows(vs.study),
                           trials.rows(vs.baselines))


def test_series(make_views_study):
    data = _data(make_views_study())
    assert [r.trial for r in data.front] == [0, 1, 6]  # fastest first: the joining line
    assert [r.trial for r in data.dominated] == [2]
    assert [r.trial for r in data.infeasible] == [3]  # proxy -inf: right panel only
    assert [r.name for r in data.baselines] == ["etn-w0.35-ssdlite", "ssd-mbv1-0.25-192"]
    # The right panel: every trial whose constraints say how much budget it takes (the hand-
    # built failed/pruned trials 4 and 5 stopped before their constraints were set).
    assert [r.trial for r in data.budgeted] == [0, 1, 2, 3, 6]
    assert data.latency_budget_ms is None
    assert plots.worst_use(data.infeasible[0]) == pytest.approx(100 * 600_000 / 524_288)
    assert "rejected: flash" in plots.hover(data.infeasible[0])


def test_staircase_joins_only_the_proxy_latency_front(make_views_study):
    front = trials.front(make_views_study().study)
    assert [r.trial for r in plots.staircase(front)] == [0, 1, 6]
    # On a 4-objective front (say it wins on RAM) but dominated in the plane: not joined.
    slow_and_worse = dataclasses.replace(front[1], trial=9, latency_ms=30.0, proxy=0.7)
    assert [r.trial for r in plots.staircase([*front, slow_and_worse])] == [0, 1, 6]


def test_png(make_views_study, tmp_path):
    path = plots.write_png(_data(make_views_study()), tmp_path / "x" / "pareto.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_html_is_self_contained(make_views_study, tmp_path):
    path = plots.write_html(_data(make_views_study()), tmp_path / "pareto.html")
    text = path.read_text()
    # plotly.js inlined (no script loaded from a CDN): the page opens offline.
    assert '<script src="http' not in text and len(text) > 1_000_000
    assert "Pareto front" in text and "etn-w0.35-ssdlite" in text and "rejected" in text


def test_missing_library_skips_its_file(make_views_study, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_plotly(name, *args, **kwargs):
        if name.startswith("plotly"):
            raise ImportError("no plotly", name="plotly")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_plotly)
    written = plots.write_plots(_data(make_views_study()), tmp_path)
    assert written["html"] is None and "plotly is not installed" in written["html_error"]
    assert not (tmp_path / "pareto.html").exists()
