from __future__ import annotations

import pytest
import torch

from objectives.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from search_space.spec import ModelSpec

NAMES = ("circle", "square", "triangle")


def _save(path, spec, **kw):
    torch.manual_seed(1)
    net = spec.build()
    save_checkpoint(path, spec=spec, class_names=NAMES, model=net, epoch=2, batch=3, step=9,
                    total_epochs=5, recipe={"lr": 0.1}, rng={"torch": torch.get_rng_state()},
                    history=[{"epoch": 1, "loss": 2.5}], data={"root": "/x"}, **kw)
    return net


def test_round_trip_rebuilds_the_same_network(tmp_path, tiny_spec):
    path = tmp_path / "run" / "last.pt"
    net = _save(path, tiny_spec)
    ckpt = load_checkpoint(path)
    assert ckpt.spec == tiny_spec and ckpt.class_names == NAMES
    assert (ckpt.epoch, ckpt.batch, ckpt.step, ckpt.total_epochs) == (2, 3, 9, 5)
    assert ckpt.recipe == {"lr": 0.1} and ckpt.history[0]["loss"] == 2.5
    assert ckpt.data == {"root": "/x"} and not ckpt.finished
    rebuilt = ckpt.build_model()
    assert not rebuilt.training
    x = torch.randn(2, 3, 96, 96)
    net.eval()
    for a, b in zip(net(x), rebuilt(x), strict=True):
        torch.testing.assert_close(a, b)
    # Only tensors and plain values: loadable without unpickling any class.
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["model"] == tiny_spec.to_dict()
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left


def test_baseline_spec_checkpoint(tmp_path):
    spec = ModelSpec(3, baseline="ssd-mbv1-0.25-192")
    _save(tmp_path / "b.pt", spec)
    assert load_checkpoint(tmp_path / "b.pt").build_model().arch.name == "ssd-mbv1-0.25-192"


def test_missing_corrupt_and_foreign_files_name_the_path(tmp_path, tiny_spec):
    with pytest.raises(CheckpointError, match=r"nope\.pt' not found"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"definitely not a zip")
    with pytest.raises(CheckpointError, match=r"bad\.pt' is not a readable checkpoint"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.pt' is not a tinynas checkpoint"):
        load_checkpoint(foreign)
    half = tmp_path / "half.pt"
    _save(half, tiny_spec)
    half.write_bytes(half.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"half\.pt"):
        load_checkpoint(half)


def test_weights_that_do_not_fit_the_spec(tmp_path, tiny_spec):
    path = tmp_path / "x.pt"
    _save(path, tiny_spec)
    data = torch.load(path, weights_only=True)
    data["model"] = ModelSpec(3, baseline="ssd-mbv1-0.25-192").to_dict()
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=r"weights do not fit the model ssd-mbv1-0\.25-192"):
        load_checkpoint(path).build_model()
    data["model"] = {"format": "tinynas-model/1", "num_classes": 3, "baseline": "nope"}
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="model spec is invalid"):
        load_checkpoint(path)


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, tiny_spec, monkeypatch):
    path = tmp_path / "last.pt"
    _save(path, tiny_spec)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        _save(path, tiny_spec)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_checkpoint_from_before_same_padding_rebuilds_with_symmetric_padding(tmp_path,
                                                                              tiny_spec):
    """A checkpoint written before SAME padding (model spec format 1) was trained with
    PyTorch's symmetric padding: it loads and computes with that padding, not today's."""
    path = tmp_path / "old.pt"
    net = _save(path, tiny_spec)
    raw = torch.load(path, weights_only=True)
    raw["model"] = {k: v for k, v in raw["model"].items() if k != "padding"}
    raw["model"]["format"] = "tinynas-model/1"
    torch.save(raw, path)
    ckpt = load_checkpoint(path)
    assert ckpt.spec.padding == "symmetric"
    rebuilt = ckpt.build_model()
    assert not any(op.same for op in rebuilt.arch.graph.ops)
    x = torch.randn(1, 3, 96, 96)
    net.eval()
    # same weights, other padding: the outputs differ from the SAME-padded network's
    assert not torch.allclose(net(x)[0], rebuilt(x)[0])
