"""What a running search shows: the tally of the studies, the panel rows, the per-trial lines."""

from __future__ import annotations

import io

from rich.console import Console

from nas.search import display


def _tally(vs, elapsed: float = 5.0) -> display.Tally:
    return display.Tally.of(vs.study, vs.baselines, n_trials=10, deadline=None,
                            elapsed=elapsed, done_before=0)


def test_tally_counts_the_studies_and_reads_the_front(make_views_study):
    tally = _tally(make_views_study())
    assert (tally.done, tally.complete, tally.feasible, tally.rejected, tally.pruned,
            tally.failed, tally.running) == (7, 5, 4, 1, 1, 1, 0)
    assert tally.front == (0, 1, 6)  # by number; the rejected, fastest trial 3 is not on it
    assert (tally.best_proxy, tally.best_latency_ms) == (0.9, 10.0)
    assert (tally.baselines_done, tally.baselines_total) == (2, 2)
    assert tally.eta == 5.0 / 7 * 3
    assert display.summary_rows(tally)["front"] == [0, 1, 6]
    rows = dict(display.progress_rows(tally))
    assert rows["front"] == "3 trials" and rows["baselines"] == "2 of 2"
    assert rows["best"] == "proxy 0.9, latency 10.0 ms"


def test_plain_progress_prints_each_finished_trial_once(make_views_study):
    vs = make_views_study()
    out = io.StringIO()
    progress = display.PlainProgress(Console(file=out, width=200))
    progress.refresh(_tally(vs, elapsed=3600.0))
    lines = out.getvalue().splitlines()
    # Trial 0 of the main study and trial 0 of the baselines study are both shown.
    assert lines[0].startswith("trial 0: proxy 0.5, 10.0 ms  [7/10 done, 4 feasible]")
    assert any(line.startswith("baseline etn-w0.35-ssdlite: proxy 0.6, 30.0 ms")
               for line in lines)
    assert any(line.startswith("trial 3: rejected (flash 600000 > budget 524288)")
               for line in lines)
    assert any(line.startswith("trial 4: fail (RuntimeError: boom)") for line in lines)
    assert len(lines) == 9
    progress.refresh(_tally(vs, elapsed=3600.0))
    assert out.getvalue().splitlines() == lines
