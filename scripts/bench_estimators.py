"""How right are the flash and RAM estimators? Real int8 exports against the estimates.

Every baseline plus ``--genomes`` genomes sampled with a fixed seed across the search space are
converted to full-int8 .tflite (the export pipeline, without latency runs), their TFLite Micro
arena is read back from the real interpreter, and both are compared with the estimators:

* flash: ``estimators.flash.tflite_bytes`` vs the file's bytes;
* RAM: ``estimators.ram.arena_plan`` (host 64-bit tail, the build we can run; the offline
  plan the file carries) vs the arena TFLite Micro allocates for the file.

Each row also records the memory plan (issue 15): the head TFLM's default planner gives the
same file without the plan (``tflm_head_default``), the plan's head as TFLM allocates it
(``tflm_arena_head_bytes``), the floor (aligned bytes alive at the worst operator of the file),
whether TFLM's outputs with and without the plan are bit-identical, and the estimator's greedy
head (``arena_head_estimated_greedy``, what ``arena_plan(offline=False)`` predicts for the file
without a plan).

Goals (issue 3): RAM within 2% and never below the measured arena by more than 1 KiB; flash
within 2%. Exit code 1 when a goal is missed.

``--results FILE`` appends each model's row to a JSON-lines file as soon as it is measured and
skips the models already in it, so an interrupted run resumes where it stopped; with
``--keep DIR`` the files are kept for ``scripts/bench_memory.py``.

    .venv/bin/python scripts/bench_estimators.py [--genomes 20] [--seed 0] [--only NAME ...]
        [--keep DIR] [--results FILE] [--json] [--space full|below-floor] [--no-baselines]

``--space below-floor`` draws the genomes from the choices added for the small boards
(issue 14): 64-112 px, RGB or grayscale, stage widths 0.1-0.35, extras of 16 or 32 channels.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

RAM_TOLERANCE = 0.02
RAM_UNDER_BYTES = 1024
FLASH_TOLERANCE = 0.02
GENOME_CLASSES = (1, 3, 20)  # genomes cycle through these class counts


def _space(name: str) -> Any:
    from dataclasses import replace

    from search_space.space import FULL_SPACE

    if name == "full":
        return FULL_SPACE
    return replace(FULL_SPACE, resolution=(64, 112), widths=((0.1, 0.35),) * 4,
                   extra_channels=(16, 32))


def _models(genomes: int, seed: int, space: str = "full", baselines: bool = True
            ) -> list[tuple[str, Any]]:
    from search_space.baselines import list_baselines
    from search_space.sampling import random_genomes
    from search_space.spec import ModelSpec

    models = [(b.name, ModelSpec(b.num_classes, baseline=b.name))
              for b in (list_baselines() if baselines else [])]
    for i, genome in enumerate(random_genomes(genomes, seed, _space(space))):
        name = f"genome-{seed}-{i:02d}"
        models.append((name, ModelSpec(GENOME_CLASSES[i % len(GENOME_CLASSES)], genome=genome,
                                       name=name)))
    return models


def _measure(name: str, spec: Any, keep: Path | None) -> dict[str, Any]:
    from artefacts.atomic import atomic_write_bytes, atomic_write_text
    from estimators import tflite
    from estimators.deploy import deployed
    from estimators.flash import tflite_bytes
    from estimators.ram import TAIL_HOST64, arena_plan
    from nas.export import memory_plan, representative, rewrite, runtimes
    from nas.export.convert import convert
    from nas.export.pipeline import parity
    from search_space.model import as_if_trained

    net = as_if_trained(spec.build()).eval()
    images = representative.synthetic(net.arch.input_size, 16)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        converted = convert(net, images, Path(work))
    arena = runtimes.tflm_arena(converted.tflite)
    default = runtimes.tflm_arena(converted.unplanned)
    x = runtimes.quantised_inputs(converted.tflite, images[:1])[0]
    identical = all(np.array_equal(a, b) for a, b in zip(
        runtimes.tflm_outputs(converted.tflite, x), runtimes.tflm_outputs(converted.unplanned, x),
        strict=True))
    buffers = memory_plan.file_buffers(tflite.load(converted.unplanned))
    if keep is not None:
        atomic_write_bytes(keep / f"{name}.tflite", converted.tflite)
        atomic_write_text(keep / f"{name}.json", json.dumps(spec.to_dict()))
    dep = deployed(net.arch.graph)
    plan = arena_plan(dep, tail=TAIL_HOST64)
    cos = parity(net, converted.tflite, images[:4])
    real_ops = rewrite.op_histogram(converted.tflite)
    our_ops = dict(Counter(op.kind for op in dep.ops))
    return {
        "name": name, "task": net.arch.task, "input_size": net.arch.input_size,
        "input_channels": net.arch.input_shape[1],
        "tflite_bytes": len(converted.tflite), "tflite_bytes_estimated": tflite_bytes(dep),
        "tflm_arena_bytes": arena.total_bytes, "arena_bytes_estimated": plan.total_bytes,
        "tflm_arena_head_bytes": arena.head_bytes, "arena_head_estimated": plan.head_bytes,
        "tflm_arena_tail_bytes": arena.tail_bytes, "arena_tail_estimated": plan.tail_bytes,
        "tflm_head_default": default.head_bytes, "floor_bytes": buffers.floor_bytes,
        "plan_head": converted.memory_plan.head_bytes, "plan_method": converted.memory_plan.method,
        "outputs_identical": identical,
        "arena_head_estimated_greedy": arena_plan(dep, tail=TAIL_HOST64, offline=False).head_bytes,
        "greedy_head_replayed": buffers.greedy_head_bytes(),
        "parity_cosine_scores": cos["parity_cosine_scores"],
        "parity_cosine_boxes": cos["parity_cosine_boxes"],
        "ops_match": real_ops == our_ops,
        "ops_real": real_ops if real_ops != our_ops else None,
        "ops_estimated": our_ops if real_ops != our_ops else None,
        "convert_s": round(time.perf_counter() - start, 1),
    }


_MEASURED_KEYS = frozenset({
    "name", "task", "input_size", "tflite_bytes", "tflite_bytes_estimated", "tflm_arena_bytes",
    "arena_bytes_estimated", "tflm_arena_head_bytes", "arena_head_estimated",
    "tflm_arena_tail_bytes", "arena_tail_estimated", "tflm_head_default", "floor_bytes",
    "plan_head", "plan_method", "outputs_identical", "arena_head_estimated_greedy",
    "greedy_head_replayed", "parity_cosine_scores", "parity_cosine_boxes", "ops_match",
    "ops_real", "ops_estimated", "convert_s"})


def _done(results: Path | None) -> dict[str, dict[str, Any]]:
    """Rows already measured (``--results``), by model name."""
    if results is None or not results.is_file():
        return {}
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return {r["name"]: r for r in rows}


def _judge(row: dict[str, Any]) -> dict[str, Any]:
    flash_err = (row["tflite_bytes_estimated"] - row["tflite_bytes"]) / row["tflite_bytes"]
    ram_diff = row["arena_bytes_estimated"] - row["tflm_arena_bytes"]
    ram_err = ram_diff / row["tflm_arena_bytes"]
    row.update(flash_rel_error=flash_err, ram_rel_error=ram_err,
               flash_ok=abs(flash_err) <= FLASH_TOLERANCE,
               ram_ok=abs(ram_err) <= RAM_TOLERANCE and ram_diff >= -RAM_UNDER_BYTES,
               ops_ok=row["ops_match"],
               plan_ok=row["tflm_arena_head_bytes"] == row["plan_head"]
               and row["outputs_identical"])
    return row


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    flash = [abs(r["flash_rel_error"]) for r in rows]
    ram = [abs(r["ram_rel_error"]) for r in rows]
    return {
        "models": len(rows),
        "flash_max_abs_rel_error": max(flash), "flash_mean_abs_rel_error": sum(flash) / len(rows),
        "ram_max_abs_rel_error": max(ram), "ram_mean_abs_rel_error": sum(ram) / len(rows),
        "ram_max_under_bytes": max(0, max(r["tflm_arena_bytes"] - r["arena_bytes_estimated"]
                                          for r in rows)),
        "flash_goal_met": all(r["flash_ok"] for r in rows),
        "ram_goal_met": all(r["ram_ok"] for r in rows),
        "op_lists_match": all(r["ops_ok"] for r in rows),
        "offline_plans_honoured": all(r["plan_ok"] for r in rows),
        "plan_head_total": sum(r["plan_head"] for r in rows),
        "default_head_total": sum(r["tflm_head_default"] for r in rows),
        "failed": [r["name"] for r in rows if not (r["flash_ok"] and r["ram_ok"])],
    }


def _table(rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="estimated vs measured (int8 .tflite bytes, TFLM arena bytes)")
    for col in ("model", "in", "tflite", "est.", "err", "arena", "est.", "err", "ok"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(r["name"], str(r["input_size"]), f"{r['tflite_bytes']:,}",
                      f"{r['tflite_bytes_estimated']:,}", f"{r['flash_rel_error']:+.2%}",
                      f"{r['tflm_arena_bytes']:,}", f"{r['arena_bytes_estimated']:,}",
                      f"{r['ram_rel_error']:+.2%}",
                      "yes" if r["flash_ok"] and r["ram_ok"] else "NO")
    console = Console(width=140)
    console.print(table)
    console.print(summary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--genomes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="model names to run (default: all)")
    parser.add_argument("--keep", type=Path, help="keep each .tflite and its spec here")
    parser.add_argument("--results", type=Path,
                        help="JSON-lines file: rows are appended as measured; models already "
                        "in it are not measured again (resume)")
    parser.add_argument("--json", action="store_true", help="rows and summary as JSON")
    parser.add_argument("--space", choices=("full", "below-floor"), default="full",
                        help="where the genomes are drawn from (default: the full space)")
    parser.add_argument("--no-baselines", action="store_true", help="genomes only")
    args = parser.parse_args()
    import nas.export  # noqa: F401  (quiets TensorFlow before anything imports it)

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    from nas.export.convert import ConversionError

    rows: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    done = _done(args.results)
    for name, spec in _models(args.genomes, args.seed, args.space, not args.no_baselines):
        if args.only and name not in args.only:
            continue
        if name in done:
            rows.append(_judge(done[name]))
            continue
        try:
            rows.append(_judge(_measure(name, spec, args.keep)))
            if args.results is not None:
                with args.results.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps({k: v for k, v in rows[-1].items()
                                             if k in _MEASURED_KEYS}) + "\n")
        except ConversionError as exc:  # a model the toolchain cannot export is a finding
            failures.append({"name": name, "error": str(exc)})
            print(f"{name}: FAILED {exc}", file=sys.stderr, flush=True)
            continue
        print(f"{name}: flash {rows[-1]['flash_rel_error']:+.2%} "
              f"ram {rows[-1]['ram_rel_error']:+.2%}", file=sys.stderr, flush=True)
    summary = {**_summary(rows), "export_failures": failures}
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary}, indent=2))
    else:
        _table(rows, summary)
    met = (summary["flash_goal_met"] and summary["ram_goal_met"] and summary["op_lists_match"]
           and summary["offline_plans_honoured"])
    return 0 if met and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
