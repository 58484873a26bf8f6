"""Top-k: which trials, training with the same recipe and time budget, records, reuse, export
failures as results, and (slow) a real export measured against the budget."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from estimators.estimate import Budgets
from nas.cli.search import results_table
from nas.export.files import LAYOUT
from nas.search import finalize, trials

TRAINED_KEYS = {"ap50", "map", "epochs", "wall_s", "stopped_by", "checkpoint", "time_budget_s"}
BUDGET_S = 3.0


@pytest.fixture(scope="module")
def small_demo() -> Path:
    from objectives.data.demo import demo_dataset

    return demo_dataset("small")  # 48 + 16 images at 160 px, drawn once into the cache


def test_candidates_are_the_picked_front_and_every_fitting_baseline(make_views_study):
    vs = make_views_study()
    found = finalize.candidates(vs.study, vs.baselines, 2, vs.runs_dir)
    assert [(c.label, c.out_dir.name) for c in found] == [
        ("trial 0", "trial-0000"), ("trial 1", "trial-0001"),
        ("etn-w0.35-ssdlite", "baseline-etn-w0.35-ssdlite"),
        ("ssd-mbv1-0.25-192", "baseline-ssd-mbv1-0.25-192")]
    assert found[0].out_dir.parent == vs.runs_dir / "search"
    assert found[2].study is vs.baselines and found[2].spec.baseline == "etn-w0.35-ssdlite"
    assert finalize.candidates(vs.study, None, 1, vs.runs_dir)[0].row.trial == 6


def test_a_fitting_baseline_the_pruner_stopped_is_still_trained(make_views_study):
    from search_space.spec import ModelSpec
    from tests.nas.search.conftest import add_trial

    vs = make_views_study()
    add_trial(vs.baselines, ModelSpec(3, baseline="ssd-mbv1-0.25-224"), 0.0, 50.0,
              state="PRUNED")
    add_trial(vs.baselines, ModelSpec(3, baseline="etn-w1.0-ssdlite"), 0.0, 90.0,
              flash=10**9, state="PRUNED")  # does not fit: never trained
    found = finalize.candidates(vs.study, vs.baselines, 2, vs.runs_dir)
    assert [c.label for c in found if c.study is vs.baselines] == [
        "etn-w0.35-ssdlite", "ssd-mbv1-0.25-192", "ssd-mbv1-0.25-224"]


def test_measured_flags_a_budget_violation():
    card = {"flash_bytes_total": 600_000, "ram_bytes_total": 100_000, "flash_budget": 524_288,
            "ram_budget": 262_144, "tflite_bytes": 90_000, "tflm_arena_bytes": 40_000,
            "arena_bytes_estimated_target": 39_000, "fits": False,
            "violations": ["flash ..."], "parity_cosine_scores": 0.999}
    got = finalize.measured(card, Budgets(524_288, 262_144))
    assert got["fits_measured"] is False and got["violations_measured"][0].startswith("flash")
    rows = [{"name": "#3", "fits_measured": False,
             "violations_measured": got["violations_measured"]},
            {"name": "#4", "fits_measured": True, "violations_measured": []}]
    assert finalize.budget_violations(rows) == [f"#3: {got['violations_measured'][0]}"]
    with pytest.raises(RuntimeError, match="budgets"):
        finalize.measured(card, Budgets(1, 2))


def _fake_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """nas.export.pipeline without TensorFlow, whose export always fails at parity."""

    class ParityError(RuntimeError):
        pass

    def run(request, out_dir, step):
        raise ParityError("int8 parity failed: parity_cosine_scores = 0.4000 < 0.98\nmore")

    fake = types.ModuleType("nas.export.pipeline")
    fake.ExportRequest = lambda *a, **k: (a, k)
    fake.run, fake.ParityError, fake.EXPORT_FAILURES = run, ParityError, (ParityError,)
    import nas.export

    monkeypatch.setitem(sys.modules, "nas.export.pipeline", fake)
    monkeypatch.setattr(nas.export, "pipeline", fake, raising=False)


@pytest.mark.slow
def test_top_k_trains_records_reuses_and_survives_a_failed_export(make_views_study, small_demo,
                                                                  monkeypatch, cli):
    vs = make_views_study(data=str(small_demo))
    rows = finalize.run_top_k(vs.study, None, vs.config, k=1, export=False,
                              time_budget_s=BUDGET_S, runs_dir=vs.runs_dir)
    assert [r["trial"] for r in rows] == [6] and rows[0]["kind"] == "searched"
    trained = trials.row_of(vs.study, vs.study.trials[6]).trained
    assert set(trained) == TRAINED_KEYS and trained["time_budget_s"] == BUDGET_S
    ckpt = Path(trained["checkpoint"])
    assert ckpt == vs.runs_dir / "search" / "trial-0006" / "train" / "last.pt" and ckpt.is_file()
    assert 0.0 <= trained["ap50"] <= 1.0 and rows[0]["ap50"] == trained["ap50"]
    json.dumps(rows, allow_nan=False)

    # A rerun reuses the training; an export refused at parity is the trial's result.
    monkeypatch.setattr(finalize, "train_one", lambda *a: pytest.fail("trained again"))
    _fake_pipeline(monkeypatch)
    rows = finalize.run_top_k(vs.study, None, vs.config, k=1, export=True,
                              time_budget_s=BUDGET_S, runs_dir=vs.runs_dir)
    assert rows[0]["export_error"].startswith("ParityError: int8 parity failed")
    assert rows[0]["ap50"] == trained["ap50"] and rows[0]["fits_measured"] is None
    row = trials.row_of(vs.study, vs.study.trials[6])
    assert row.trained == trained and row.export_error == rows[0]["export_error"]
    assert not (vs.runs_dir / "search" / "trial-0006" / "export").exists() or not any(
        (vs.runs_dir / "search" / "trial-0006" / "export").iterdir())
    table = results_table(rows)
    assert table.row_count == 1

    # What was recorded is what `show` displays, and the trial's checkpoint is now usable.
    code, stdout, _ = cli("show", "--trial", "6", *vs.args())
    assert code == 0 and "ParityError" in stdout and str(ckpt) in stdout
    code, stdout, err = cli("evaluate", "--study", "search", "--trial", "6", *vs.args(),
                            "--json")
    assert code == 0, err
    assert json.loads(stdout)["ap50"] == pytest.approx(trained["ap50"], abs=1e-6)


def test_a_failed_training_is_recorded_not_raised(make_views_study, small_demo, monkeypatch):
    vs = make_views_study(data=str(small_demo))

    def nan(*_):
        raise FloatingPointError("loss is NaN at step 3")

    monkeypatch.setattr(finalize, "train_one", nan)
    rows = finalize.run_top_k(vs.study, None, vs.config, k=2, export=True,
                              time_budget_s=BUDGET_S, runs_dir=vs.runs_dir)
    assert [r["train_error"] for r in rows] == ["FloatingPointError: loss is NaN at step 3"] * 2
    assert trials.results(vs.study)[6] == {"train_error": rows[0]["train_error"]}


@pytest.mark.slow
def test_top_k_export_measures_the_int8_file(make_views_study, small_demo):
    vs = make_views_study(data=str(small_demo))
    rows = finalize.run_top_k(vs.study, None, vs.config, k=1, export=True,
                              time_budget_s=BUDGET_S, runs_dir=vs.runs_dir)
    row = rows[0]
    assert row["export_error"] is None, row
    exported = trials.row_of(vs.study, vs.study.trials[6]).exported
    assert set(exported) >= {"out_dir", "int8_ap50", "int8_map", "tflite_bytes",
                             "tflm_arena_bytes", "flash_bytes_measured", "ram_bytes_measured",
                             "fits_measured", "violations_measured", "parity_cosine_scores"}
    assert (Path(exported["out_dir"]) / LAYOUT.model).stat().st_size == \
        exported["tflite_bytes"]
    # The study runs on xcubeai: flash = weights + code, RAM = activations + runtime RAM of the
    # X-CUBE-AI model on the exported graph (band high ends), as the search estimated them.
    card = json.loads((Path(exported["out_dir"]) / LAYOUT.card_json).read_text())
    assert card["memory_model"].startswith("X-CUBE-AI")
    assert exported["flash_bytes_measured"] == (card["weights_flash_bytes_high"]
                                                + card["code_flash_bytes_high"])
    assert exported["ram_bytes_measured"] == (card["activation_ram_bytes_high"]
                                              + card["runtime_ram_bytes_high"])
    assert exported["fits_measured"] is True and row["fits_measured"] is True
    assert 0.0 <= exported["int8_ap50"] <= 1.0
    assert finalize.budget_violations(rows) == []
    # A rerun reuses both the training and the export.
    again = finalize.run_top_k(vs.study, None, vs.config, k=1, export=True,
                               time_budget_s=BUDGET_S, runs_dir=vs.runs_dir)
    assert again == rows


def test_train_a_trial_by_study_and_number(make_views_study, small_demo, cli, tmp_path):
    vs = make_views_study(data=str(small_demo))
    out = tmp_path / "run"
    code, stdout, err = cli("train", "--study", "search", "--trial", "0", *vs.args(),
                            "--epochs", "1", "--batch-size", "8", "--out", str(out), "--json")
    assert code == 0, err
    row = json.loads(stdout)
    assert row["model"] == vs.spec.label and row["epochs"] == 1
    from objectives.checkpoint import load_checkpoint

    ckpt = load_checkpoint(out / "last.pt")
    # The trial's network, on the study's data (no --data given).
    assert ckpt.spec == vs.spec and ckpt.data["root"] == str(small_demo.resolve())
