"""How well each proxy ranked the trained set's held-out draws: the one home of those numbers.

``scripts/bench_proxies.py --heldout --draw-seed N --record`` writes them into
``data/heldout_ranking.json`` (one entry per draw: date, command, n, and each proxy's Kendall
tau and top-5 recall against trained AP50); the command-line help of ``--proxy`` and the
README quote them from there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from artefacts.atomic import atomic_write_json
from artefacts.tags import check_format

RANKING_FILE = Path(__file__).with_name("data") / "heldout_ranking.json"
RANKING_FORMAT = "tinynas-heldout-ranking-v1"


def load_ranking(path: Path = RANKING_FILE) -> dict[str, dict[str, Any]]:
    """``{draw seed: {"date", "command", "n", "proxies": {label: {kendall_tau,
    top5_recall}}}}``; empty before any draw was recorded."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return check_format(data, RANKING_FORMAT, lambda found: ValueError(
        f"{path}: format {found!r}, expected {RANKING_FORMAT!r}"))["draws"]


def record_draw(draw_seed: int, entry: dict[str, Any], path: Path = RANKING_FILE) -> None:
    """Store (or replace) one draw's measurement, keeping the other draws."""
    draws = load_ranking(path)
    draws[str(draw_seed)] = entry
    atomic_write_json(path, {"format": RANKING_FORMAT,
                             "draws": dict(sorted(draws.items()))}, indent=2)


def measured_summary(names: list[str], default: str, path: Path = RANKING_FILE) -> str:
    """Every proxy of ``names`` with its held-out tau / top-5 recall on each recorded draw,
    the default marked, in one paragraph; for ``--proxy`` help."""
    draws = load_ranking(path)
    parts = []
    for name in names:
        measured = [d["proxies"][name] for d in draws.values() if name in d["proxies"]]
        cells = [f"{m['kendall_tau']:.2f}/{m['top5_recall']:.2f}" for m in measured]
        mark = " (default)" if name == default else ""
        parts.append(f"{name}{mark} {', '.join(cells) if cells else 'not measured'}")
    seeds = ", ".join(draws) or "none yet"
    return (f"Held-out Kendall tau/top-5 recall vs trained AP50 (draws {seeds}): "
            + "; ".join(parts))
