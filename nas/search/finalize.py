"""Top-k: fully train the best feasible Pareto trials and the seed baselines that fit, with one
recipe and one time budget, then (optionally) export each to int8 and measure it for real.

Which trials (:func:`pick`): the search exists to beat the baselines, so first, for each
baseline that fits (fastest first), the front trial with the highest proxy whose predicted
latency is at most that baseline's (its rival: the one that can dominate it); then the
remaining places go to the front trials with the highest proxy. Every fitting baseline is
trained too, with the same recipe and budget, so the comparison is like for like.

Results are recorded per trial with :func:`nas.search.trials.record_result` (a study user attr:
Optuna refuses to change finished trials), so ``pareto`` and ``show`` display them and a rerun
reuses what is done: a trial whose record points at existing files is not trained or exported
again. An export the parity check refuses is that trial's ``export_error``, not a crash; a
training that fails is its ``train_error``. Measured flash/RAM above the budget is a
violation (:func:`budget_violations`): the caller must not present it as a result.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from estimators.budgets import format_bytes
from estimators.estimate import Budgets
from estimators.targets import Target
from nas.export.files import LAYOUT
from nas.search import trials
from nas.search.config import SearchConfig
from nas.search.trials import TRAIN_ERROR, TrialRow
from objectives.data import DetectionDataset
from objectives.train_progress import NoProgress, RichProgress, TrainProgress
from search_space.spec import ModelSpec


def pick(front: Sequence[TrialRow], baselines: Sequence[TrialRow], k: int) -> list[TrialRow]:
    """Up to ``k`` front trials: each fitting baseline's best rival first, then by proxy."""
    pool = [r for r in front if r.proxy is not None and r.latency_ms is not None]
    chosen: list[TrialRow] = []
    rivals = sorted((b for b in baselines if b.fits and b.latency_ms is not None),
                    key=lambda b: b.latency_ms or 0.0)
    for base in rivals:
        if len(chosen) >= k:
            break
        faster = [r for r in pool if r not in chosen
                  and (r.latency_ms or 0.0) <= (base.latency_ms or 0.0)]
        if faster:
            chosen.append(max(faster, key=lambda r: (r.proxy or 0.0, -r.trial)))
    rest = sorted((r for r in pool if r not in chosen), key=lambda r: (-(r.proxy or 0.0),
                                                                          r.trial))
    return chosen + rest[: max(0, k - len(chosen))]


@dataclass(frozen=True)
class Setup:
    """What every candidate shares: the board, budgets, data and training budget."""

    target: Target
    budgets: Budgets
    data_root: Path
    data_format: str | None
    train_set: DetectionDataset
    val_set: DetectionDataset | None
    time_budget_s: float
    console: Console | None

    @property
    def data_info(self) -> dict[str, Any]:
        # Recorded in each checkpoint: the export calibrates on these training images.
        return {"root": str(self.data_root.resolve()), "format": self.data_format,
                "train_split": "train", "val_split": "val" if self.val_set else "none",
                # What the study's --drop-empty did: no image left out reads the same either way.
                "drop_empty": self.train_set.dropped_images > 0}

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, highlight=False)


def make_setup(config: SearchConfig, time_budget_s: float, console: Console | None) -> Setup:
    target, budgets = config.target_and_budgets()
    train_set, val_set = config.open_splits()
    return Setup(target, budgets, config.data_root(), config.data_format, train_set, val_set,
                 time_budget_s, console)


@dataclass(frozen=True)
class Candidate:
    study: optuna.Study
    row: TrialRow
    spec: ModelSpec
    out_dir: Path  # runs/STUDY/trial-0007 or runs/STUDY/baseline-NAME

    @property
    def label(self) -> str:
        return self.row.baseline or f"trial {self.row.trial}"


def candidates(study: optuna.Study, baselines: optuna.Study | None, k: int,
               runs_dir: Path) -> list[Candidate]:
    front = trials.front(study)
    # A baseline that fits is trained even if a training proxy's pruner stopped it: it is the
    # reference the searched models must beat, not a candidate competing for a place.
    base_rows = [r for r in trials.rows(baselines)
                 if r.state in ("COMPLETE", "PRUNED") and r.fits and r.baseline
                 ] if baselines else []
    home = runs_dir / study.study_name
    found = [Candidate(study, r, _spec(r), home / f"trial-{r.trial:04d}")
             for r in pick(front, base_rows, k)]
    return found + [Candidate(baselines, r, _spec(r), home / f"baseline-{r.baseline}")
                    for r in base_rows if baselines is not None]


def _spec(row: TrialRow) -> ModelSpec:
    return ModelSpec.from_dict(row.spec or {})


def run_top_k(study: optuna.Study, baselines: optuna.Study | None, config: SearchConfig,
              k: int, export: bool, time_budget_s: float, runs_dir: Path,
              console: Console | None = None) -> list[dict[str, Any]]:
    """Train (and with ``export``, export and measure) the top ``k`` front trials and every
    fitting baseline; one result dict per model (see :func:`result_row`). ``console=None``
    is quiet."""
    chosen = candidates(study, baselines, k, Path(runs_dir))
    if not chosen:
        return []
    setup = make_setup(config, time_budget_s, console)
    out = []
    for i, cand in enumerate(chosen, 1):
        setup.say(f"[bold]top-k {i}/{len(chosen)}[/]: {cand.label} ({cand.spec.label})")
        out.append(finish(cand, setup, export))
    return out


def finish(cand: Candidate, setup: Setup, export: bool) -> dict[str, Any]:
    """Train and export one candidate as needed; its result row."""
    record = _train_step(cand, setup)
    if export and "trained" in record:
        record = _export_step(cand, setup, record)
    return result_row(cand, record)


def _train_step(cand: Candidate, setup: Setup) -> dict[str, Any]:
    record = {k: v for k, v in (("trained", cand.row.trained),
                                ("exported", cand.row.exported),
                                ("export_error", cand.row.export_error)) if v is not None}
    if _trained_reusable(cand.row.trained, setup.time_budget_s):
        setup.say(f"  reusing the training in {Path(record['trained']['checkpoint']).parent}")
        return record
    # A training that failed before is tried again: the failure may have been the machine's.
    record = {}
    try:
        record["trained"] = train_one(cand, setup)
    except Exception as exc:  # one candidate's failure must not lose the others
        setup.say(f"  [red]training failed[/]: {exc}")
        record[TRAIN_ERROR] = _one_line(exc)
    trials.record_result(cand.study, cand.row.trial, record)
    return record


def _export_step(cand: Candidate, setup: Setup, record: dict[str, Any]) -> dict[str, Any]:
    if _exported_reusable(record):
        setup.say(f"  reusing the export in {record['exported']['out_dir']}")
        return record
    record = {"trained": record["trained"]}
    try:
        record.update(export_one(cand, setup, Path(record["trained"]["checkpoint"])))
    except Exception as exc:  # as for training: recorded, and the others go on
        setup.say(f"  [red]export failed[/]: {exc}")
        record["export_error"] = _one_line(exc)
    trials.record_result(cand.study, cand.row.trial, record)
    return record


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}"[:300] if lines else type(exc).__name__


def _trained_reusable(trained: dict[str, Any] | None, time_budget_s: float) -> bool:
    if not trained or trained.get("time_budget_s") != time_budget_s:
        return False
    path = trained.get("checkpoint")
    return isinstance(path, str) and Path(path).is_file()


def _exported_reusable(record: dict[str, Any]) -> bool:
    exported = record.get("exported")
    if not exported:
        return False
    # An export made from an earlier training of this trial is stale.
    if exported.get("checkpoint") != record["trained"]["checkpoint"]:
        return False
    return (Path(exported["out_dir"]) / LAYOUT.model).is_file()


def _fresh_dir(path: Path, setup: Setup) -> Path:
    """``path`` empty: leftovers of an unrecorded (interrupted) or outdated run are ours to
    replace, since they live under the study's own runs directory."""
    if path.exists():
        setup.say(f"  replacing unrecorded {path}")
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def train_one(cand: Candidate, setup: Setup) -> dict[str, Any]:
    from objectives.train import Recipe, train

    out_dir = _fresh_dir(cand.out_dir / "train", setup)
    recipe = Recipe(epochs=None, time_budget_s=setup.time_budget_s)
    progress: TrainProgress = (RichProgress(setup.console) if setup.console is not None
                               else NoProgress())
    try:
        result = train(cand.spec, setup.train_set, out_dir, recipe, val_set=setup.val_set,
                       progress=progress, data_info=setup.data_info)
    finally:
        progress.stop()  # a live bar left running would swallow the next lines
    ev = result.evaluation
    return {"ap50": ev.ap50 if ev else None, "map": ev.map if ev else None,
            "epochs": result.epochs, "wall_s": round(result.wall_s, 2),
            "stopped_by": result.stopped_by, "checkpoint": str(result.checkpoint),
            "time_budget_s": setup.time_budget_s}


def export_one(cand: Candidate, setup: Setup, checkpoint: Path) -> dict[str, Any]:
    """``{"exported": {...}}`` or ``{"export_error": "..."}`` (conversion or parity)."""
    from nas.export import pipeline
    from objectives.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    request = pipeline.ExportRequest(
        ckpt.spec, setup.target, setup.budgets, ckpt.build_model(), tuple(ckpt.class_names),
        f"checkpoint {checkpoint} (epoch {ckpt.epoch})", calib_dir=setup.data_root,
        calib_files=tuple(r.image for r in setup.train_set.records))
    out_dir = _fresh_dir(cand.out_dir / "export", setup)  # the pipeline fills it atomically
    try:
        card = pipeline.run(request, out_dir, lambda text: setup.say(f"  export: {text}"))
    except pipeline.EXPORT_FAILURES as exc:
        setup.say(f"  [red]export failed[/]: {exc}")
        return {"export_error": _one_line(exc)}
    return {"exported": {**measured(card, setup.budgets), **int8_accuracy(out_dir, setup),
                         "out_dir": str(out_dir), "checkpoint": str(checkpoint)}}


def measured(card: dict[str, Any], budgets: Budgets) -> dict[str, Any]:
    """The export's measurements against the search's budgets. On TFLM runtimes flash =
    .tflite bytes + runtime code, RAM = TFLM arena (head measured, tail at the target's pointer
    size) + runtime RAM; on xcubeai both are the X-CUBE-AI model's on the exported graph (band
    high ends). The pipeline's totals, checked here against the budgets the search used."""
    flash, ram = int(card["flash_bytes_total"]), int(card["ram_bytes_total"])
    if (card["flash_budget"], card["ram_budget"]) != (budgets.flash_bytes, budgets.ram_bytes):
        raise RuntimeError(f"export judged against budgets {card['flash_budget']}/"
                           f"{card['ram_budget']}, the search's are {budgets}")
    found = []
    if flash > budgets.flash_bytes:
        found.append(f"flash {format_bytes(flash)} > budget {format_bytes(budgets.flash_bytes)}")
    if ram > budgets.ram_bytes:
        found.append(f"RAM {format_bytes(ram)} > budget {format_bytes(budgets.ram_bytes)}")
    return {"tflite_bytes": int(card["tflite_bytes"]),
            "tflm_arena_bytes": int(card["tflm_arena_bytes"]),
            "arena_bytes_target": int(card["arena_bytes_estimated_target"]),
            "flash_bytes_measured": flash, "ram_bytes_measured": ram,
            # Both views must agree; if the pipeline's own verdict differs, trust neither.
            "fits_measured": not found and bool(card["fits"]),
            "violations_measured": found or list(card["violations"]),
            "parity_cosine_scores": card["parity_cosine_scores"]}


def int8_accuracy(export_dir: Path, setup: Setup) -> dict[str, Any]:
    """AP50/mAP of the int8 file that ships, run by LiteRT as firmware would feed it."""
    if setup.val_set is None:
        return {"int8_ap50": None, "int8_map": None}
    from nas.detector import load_detector
    from objectives.evaluate import evaluate

    result = evaluate(load_detector(export_dir), setup.val_set)
    return {"int8_ap50": result.ap50, "int8_map": result.map}


def result_row(cand: Candidate, record: dict[str, Any]) -> dict[str, Any]:
    """One model's line of the final table (JSON-safe)."""
    r, trained, exported = cand.row, record.get("trained") or {}, record.get("exported") or {}
    return trials.json_safe({
        "study": cand.study.study_name, "trial": r.trial, "name": r.name,
        "kind": "baseline" if r.baseline else "searched", "model": cand.spec.label,
        "proxy": r.proxy, "latency_ms": r.latency_ms, "latency_ms_low": r.latency_ms_low,
        "latency_ms_high": r.latency_ms_high, "flash_bytes_estimated": r.flash_bytes,
        "ram_bytes_estimated": r.ram_bytes, "ap50": trained.get("ap50"),
        "map": trained.get("map"), "epochs": trained.get("epochs"),
        "int8_ap50": exported.get("int8_ap50"), "int8_map": exported.get("int8_map"),
        "tflite_bytes": exported.get("tflite_bytes"),
        "tflm_arena_bytes": exported.get("tflm_arena_bytes"),
        "flash_bytes_measured": exported.get("flash_bytes_measured"),
        "ram_bytes_measured": exported.get("ram_bytes_measured"),
        "fits_measured": exported.get("fits_measured"),
        "violations_measured": exported.get("violations_measured") or [],
        "checkpoint": trained.get("checkpoint"), "export_dir": exported.get("out_dir"),
        "train_error": record.get(TRAIN_ERROR), "export_error": record.get("export_error")})


def budget_violations(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per exported model whose measured flash/RAM breaks the budget: the search
    must report these as violations (and exit non-zero), never as results."""
    return [f"{r['name']}: {'; '.join(r['violations_measured'])}" for r in rows
            if r.get("fits_measured") is False]
