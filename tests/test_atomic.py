"""Real interruptions of real tinynas writes: a checkpoint save, demo-data generation and an
export, each killed (SIGKILL), interrupted (SIGINT, as Ctrl-C) or refused by the kernel
(RLIMIT_FSIZE: the write fails mid-file, the same failure path as a full disk) while it
writes. Afterwards every artefact path is either absent or complete and loadable, and the
only other thing left is a hidden temporary (``artefacts.atomic.is_temporary``), which
tinynas ignores and the next write of that path deletes.

The subprocesses are small ``-c`` scripts that run the real write and pause it halfway
(printing a marker) so the signal lands mid-write; the random-kill loops need no pause.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artefacts.atomic import is_temporary

ROOT = Path(__file__).resolve().parents[1]


class Script:
    """A ``python -c`` subprocess whose stdout is read up to markers, with a deadline."""

    def __init__(self, code: str, *args: str | Path, tmp: Path, env: dict | None = None):
        self.log = tmp / f"stderr-{time.monotonic_ns()}.txt"
        with self.log.open("wb") as err:  # a file, not a pipe: TensorFlow logs a lot
            self.proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, cwd=ROOT, env={**os.environ, **(env or {})})
        self.out = b""

    def wait_for(self, marker: str, timeout: float = 600) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while marker.encode() not in self.out:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.proc.kill()
                pytest.fail(f"no {marker!r} within {timeout} s; stderr:\n{self.stderr()}")
            chunk = os.read(fd, 4096)
            if not chunk:
                pytest.fail(f"exited {self.proc.wait()} before {marker!r}; "
                            f"stdout {self.out!r}; stderr:\n{self.stderr()}")
            self.out += chunk

    def signal(self, signum: int) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=120)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _hidden_leftovers(folder: Path, *keep: str) -> list[Path]:
    """Everything in ``folder`` except ``keep``; fails unless all of it is our temporaries."""
    rest = [p for p in folder.iterdir() if p.name not in keep and not p.name.startswith("stderr")]
    assert all(is_temporary(p) for p in rest), [p.name for p in rest]
    return rest


def _age(path: Path) -> None:
    past = time.time() - 3600  # older than artefacts.atomic.STALE_AFTER_S
    os.utime(path, (past, past))


# ---- checkpoint ----------------------------------------------------------------------------

CHECKPOINT = """
import io, resource, signal, sys, time
import torch
from objectives import checkpoint
from objectives.models import genome_at_resolution
from search_space.baselines import seed_genome
from search_space.spec import ModelSpec

path, mode = sys.argv[1], sys.argv[2]
spec = ModelSpec(3, genome=genome_at_resolution(seed_genome(0.35), 96), name="tiny")
torch.manual_seed(0)
net = spec.build()

def save(epoch):
    checkpoint.save_checkpoint(path, spec=spec, class_names=("a", "b", "c"), model=net,
                               epoch=epoch)

if mode == "loop":  # rewrite the checkpoint until killed
    print("ready", flush=True)
    for epoch in range(1, 10**9):
        save(epoch)
save(1)
real = torch.save
if mode == "pause":  # write half of epoch 2's file, then wait to be signalled
    def half_then_wait(obj, handle):
        buffer = io.BytesIO()
        real(obj, buffer)
        handle.write(buffer.getvalue()[: buffer.tell() // 2])
        handle.flush()
        print("half", flush=True)
        while True:
            time.sleep(0.05)
    torch.save = half_then_wait
elif mode == "full":  # the kernel refuses to grow any file past a third of the checkpoint
    size = len(open(path, "rb").read())
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size // 3, resource.RLIM_INFINITY))
try:
    save(2)
except Exception as exc:  # torch.save turns the write's OSError into a RuntimeError
    print("refused", repr(exc), repr(exc.__context__), flush=True)
"""


def _epoch(path: Path) -> int:
    from objectives.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    ckpt.build_model()  # the weights load into the network
    return ckpt.epoch


def test_checkpoint_killed_mid_write_keeps_the_previous_one(tmp_path):
    from objectives.train import TrainError, check_run_dir

    run = tmp_path / "run"
    script = Script(CHECKPOINT, run / "last.pt", "pause", tmp=tmp_path)
    script.wait_for("half")
    assert script.signal(signal.SIGKILL) == -signal.SIGKILL
    assert _epoch(run / "last.pt") == 1
    [left] = _hidden_leftovers(run, "last.pt")
    assert 0 < left.stat().st_size < (run / "last.pt").stat().st_size  # killed mid-write
    # Tinynas ignores it: the run resumes from last.pt; without last.pt the directory
    # counts as empty for a new run.
    (run / "last.pt").unlink()
    check_run_dir(run, resume=False)
    with pytest.raises(TrainError, match="nothing to resume"):
        check_run_dir(run, resume=True)
    # The next save deletes it once its writer is known dead (unlocked and not brand new).
    _age(left)
    _save_again(run / "last.pt")
    assert [p.name for p in run.iterdir()] == ["last.pt"] and _epoch(run / "last.pt") == 7


def _save_again(path: Path) -> None:
    from objectives.checkpoint import save_checkpoint
    from objectives.models import genome_at_resolution
    from search_space.baselines import seed_genome
    from search_space.spec import ModelSpec

    spec = ModelSpec(3, genome=genome_at_resolution(seed_genome(0.35), 96), name="tiny")
    save_checkpoint(path, spec=spec, class_names=("a", "b", "c"), model=spec.build(), epoch=7)


@pytest.mark.slow
def test_checkpoint_ctrl_c_mid_write_leaves_the_previous_one_and_nothing_else(tmp_path):
    run = tmp_path / "run"
    script = Script(CHECKPOINT, run / "last.pt", "pause", tmp=tmp_path)
    script.wait_for("half")
    assert script.signal(signal.SIGINT) != 0
    assert "KeyboardInterrupt" in script.stderr()
    assert [p.name for p in run.iterdir()] == ["last.pt"] and _epoch(run / "last.pt") == 1


@pytest.mark.slow
def test_checkpoint_write_refused_by_the_kernel_keeps_the_previous_one(tmp_path):
    run = tmp_path / "run"
    script = Script(CHECKPOINT, run / "last.pt", "full", tmp=tmp_path)
    assert script.proc.wait(timeout=300) == 0, script.stderr()
    assert script.proc.stdout is not None
    said = script.proc.stdout.read().decode()
    assert said.startswith("refused") and "File too large" in said  # EFBIG from the kernel
    assert [p.name for p in run.iterdir()] == ["last.pt"] and _epoch(run / "last.pt") == 1


@pytest.mark.slow
def test_checkpoint_killed_at_random_points_is_always_loadable(tmp_path):
    run = tmp_path / "run"
    rng = random.Random(7)
    mid_write = 0
    for _ in range(6):
        script = Script(CHECKPOINT, run / "last.pt", "loop", tmp=tmp_path)
        script.wait_for("ready")
        time.sleep(rng.uniform(0.05, 1.0))
        script.signal(signal.SIGKILL)
        if (run / "last.pt").exists():
            assert _epoch(run / "last.pt") >= 1
        left = _hidden_leftovers(run, "last.pt")
        mid_write += bool(left)
        for p in left:
            p.unlink()  # so the next round's leftover is its own
    assert mid_write >= 1, "no kill landed during a write: the test proved nothing"


# ---- demo data -----------------------------------------------------------------------------

DEMO = """
import sys, time
from objectives.data import demo

out, mode = sys.argv[1], sys.argv[2]
if mode == "pause":  # the train split drawn, then wait to be killed
    real = demo._split
    def split_then_wait(root, split, count, config):
        real(root, split, count, config)
        print("drawn", split, flush=True)
        while True:
            time.sleep(0.05)
    demo._split = split_then_wait
print("ready", flush=True)
demo.write_demo(out, demo.DEMO_SIZES["small"])
print("done", flush=True)
"""


def _check_demo(root: Path) -> None:
    """The whole small demo set: both splits, every image decodes, every annotation parses."""
    from objectives.data import open_dataset

    for split, count in (("train", 48), ("val", 16)):
        data = open_dataset(root, split)
        assert len(data) == count and data.num_objects >= 2 * count
        for i in range(count):
            assert data.sample(i).image.shape == (160, 160, 3)


def test_demo_data_killed_mid_write_is_absent_then_made_whole(tmp_path):
    from objectives.data.demo import DEMO_SIZES, write_demo

    out = tmp_path / "demo"
    script = Script(DEMO, out, "pause", tmp=tmp_path)
    script.wait_for("drawn train")
    script.signal(signal.SIGKILL)
    assert not out.exists()
    [stage] = _hidden_leftovers(tmp_path)
    assert (stage / "train.json").is_file() and not (stage / "val.json").exists()
    _age(stage)
    write_demo(out, DEMO_SIZES["small"])
    _check_demo(out)
    assert _hidden_leftovers(tmp_path, "demo") == []  # the dead stage was removed


def test_demo_data_ctrl_c_mid_write_leaves_nothing(tmp_path):
    script = Script(DEMO, tmp_path / "demo", "pause", tmp=tmp_path)
    script.wait_for("drawn train")
    assert script.signal(signal.SIGINT) != 0 and "KeyboardInterrupt" in script.stderr()
    assert _hidden_leftovers(tmp_path) == []


@pytest.mark.slow
def test_demo_data_killed_at_random_points_is_absent_or_complete(tmp_path):
    rng = random.Random(3)
    outcomes = set()
    for i in range(8):
        out = tmp_path / f"demo{i}"
        script = Script(DEMO, out, "go", tmp=tmp_path)
        script.wait_for("ready")
        time.sleep(rng.uniform(0.0, 1.5))
        script.signal(signal.SIGKILL)
        if out.exists():
            _check_demo(out)
            outcomes.add("complete")
        else:
            outcomes.add("absent")
        for p in _hidden_leftovers(tmp_path, *(f"demo{k}" for k in range(i + 1))):
            outcomes.add("leftover")
            _age(p)  # removed by the next write to that name (checked in the test above)
    assert "absent" in outcomes, "no kill landed before the rename: the test proved nothing"


# ---- export --------------------------------------------------------------------------------

# `tinynas export`, with the C array writer (the last file written into the stage) pausing
# until signalled. With "twice", the export runs again after the first one is interrupted,
# the conversion memoised (a pure function of the network, which the seed makes the same).
EXPORT = """
import sys, time
import torch
from nas import cli
from nas.export import carray, pipeline

mode, argv = sys.argv[1], sys.argv[2:]
real_write, real_convert, memo = carray.write_c_array, pipeline.convert, {}
pause = [True]

def write_then_wait(*args, **kwargs):
    real_write(*args, **kwargs)
    if pause[0]:
        print("staged", flush=True)
        while True:
            time.sleep(0.05)

def convert_once(net, images, work, offline_plan=True):
    if "done" not in memo:
        memo["done"] = real_convert(net, images, work, offline_plan)
    return memo["done"]

carray.write_c_array = write_then_wait
pipeline.convert = convert_once
torch.manual_seed(0)
print("rc", cli.main(argv), flush=True)
if mode == "twice":
    sys.stdin.readline()
    pause[0] = False
    torch.manual_seed(0)
    print("rc", cli.main(argv), flush=True)
"""


@pytest.mark.slow
def test_export_killed_or_interrupted_mid_write_leaves_no_partial_directory(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "nas" / "export"))
    from test_export_cli import tiny_genome

    from nas.detector import load_detector
    from nas.export.carray import read_c_array
    from nas.export.files import LAYOUT
    from nas.export.representative import synthetic

    genome = tmp_path / "tiny.json"
    genome.write_text(tiny_genome().to_json())
    parent = tmp_path / "exports"
    parent.mkdir()
    out = parent / "tiny"
    args = ["export", "--genome", str(genome), "--num-classes", "2", "--out", str(out),
            "--target", "stm32h7", "--flash", "4MiB", "--ram", "4MiB", "--json"]
    systmp = tmp_path / "systmp"  # the converter's scratch space, to see it go
    systmp.mkdir()
    env = {"TMPDIR": str(systmp)}

    # SIGKILL while the files are being written: no directory, a hidden stage beside it.
    killed = Script(EXPORT, "once", *args, tmp=tmp_path, env=env)
    killed.wait_for("staged")
    assert not out.exists()
    killed.signal(signal.SIGKILL)
    assert not out.exists()
    [stage] = _hidden_leftovers(parent)
    assert (stage / LAYOUT.c_source).is_file()

    # Ctrl-C at the same point: exit 130, nothing of this run left (TensorFlow's own
    # autograph files in TMPDIR are not ours).
    twice = Script(EXPORT, "twice", *args, tmp=tmp_path, env=env)
    twice.wait_for("staged")
    twice.proc.send_signal(signal.SIGINT)
    twice.wait_for("rc 130")
    assert "interrupted" in twice.stderr()
    assert _hidden_leftovers(parent) == [stage] and not list(systmp.glob("tinynas-*"))

    # The same export again, to the end: the directory appears whole and loads; the stage
    # of the killed run, now old enough to judge, is removed.
    _age(stage)
    twice.send("go")
    twice.wait_for("rc 0")
    assert twice.proc.wait(timeout=120) == 0, twice.stderr()
    assert sorted(p.name for p in parent.iterdir()) == ["tiny"]
    assert sorted(p.name for p in out.iterdir()) == sorted(LAYOUT.files)
    card = json.loads((out / LAYOUT.card_json).read_text())
    assert card["tflite_bytes"] == (out / LAYOUT.model).stat().st_size
    assert read_c_array(out / LAYOUT.c_source) == (out / LAYOUT.model).read_bytes()
    detections = load_detector(out).detect(synthetic(96, 2, seed=1))  # LiteRT runs it
    assert len(detections) == 2
