from __future__ import annotations

from pathlib import Path

import pytest

from objectives.proxies import DEFAULT_PROXY, list_proxies
from objectives.proxies.measured import (
    RANKING_FILE,
    load_ranking,
    measured_summary,
    record_draw,
)

GOAL_TAU, GOAL_TOP5 = 0.75, 0.6  # issue 17's goal for the default ranking


def _entry(tau: float, top5: float) -> dict:
    return {"date": "2026-12-06", "command": "x", "n": 3,
            "proxies": {"a": {"kendall_tau": tau, "top5_recall": top5}}}


def test_record_keeps_other_draws_and_replaces_its_own(tmp_path: Path):
    path = tmp_path / "r.json"
    assert load_ranking(path) == {}
    record_draw(7, _entry(0.1, 0.2), path)
    record_draw(3, _entry(0.5, 0.6), path)
    record_draw(7, _entry(0.9, 1.0), path)
    draws = load_ranking(path)
    assert list(draws) == ["3", "7"] and draws["7"]["proxies"]["a"]["kendall_tau"] == 0.9


def test_summary_marks_the_default_and_the_unmeasured(tmp_path: Path):
    path = tmp_path / "r.json"
    record_draw(3, _entry(0.5, 0.6), path)
    record_draw(7, _entry(0.25, 0.4), path)
    text = measured_summary(["a", "b"], "a", path)
    assert "draws 3, 7" in text and "a (default) 0.50/0.60, 0.25/0.40" in text
    assert "b not measured" in text


def test_a_file_of_another_format_is_refused(tmp_path: Path):
    path = tmp_path / "r.json"
    path.write_text('{"format": "other", "draws": {}}')
    with pytest.raises(ValueError, match="'other'"):
        load_ranking(path)


def test_the_shipped_default_meets_the_goal_on_every_recorded_draw():
    draws = load_ranking(RANKING_FILE)
    assert len(draws) >= 2  # draw 9017 and the fresh draw 9018
    for seed, draw in draws.items():
        measured = draw["proxies"][DEFAULT_PROXY]
        assert measured["kendall_tau"] >= GOAL_TAU, seed
        assert measured["top5_recall"] >= GOAL_TOP5, seed
        assert {label.partition(":")[0] for label in draw["proxies"]} <= set(list_proxies())
