"""Bad input, command by command (issue 7, item 1).

One parametrised test over every command: each case is a command line with one bad value.
Whatever the command, the answer must be the same contract: exit code 2, exactly one line on
stderr (``tinynas CMD: error: ...``) that names the bad value and says what would be valid,
no traceback (only ``--debug`` shows one), nothing on stdout (a ``--json`` reader gets no
half answer), no warning Python would print, and nothing created or changed: no file or
directory appears or changes under the test's directory (the working directory, the config
and cache directories included) and no study of the storage gains or changes a trial or an
attribute. Notes on stderr ("note: --flash 512KB read as SI ...") may precede the error only
where a case says so.

The inputs are built on demand under ``tmp_path`` (``World``): an argv template names them as
``{placeholders}``, so a case pays only for the fixtures it uses.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from PIL import Image

from nas.cli import COMMANDS, main
from nas.export.files import EXPORT_FORMAT, LAYOUT
from nas.search.config import SearchConfig
from search_space.baselines import seed_genome
from search_space.spec import ModelSpec

CLASSES = ("circle", "square", "triangle")
BASELINE = "etn-w0.35-ssdlite"
# Warnings Python shows by default (DeprecationWarning and kin are hidden outside __main__):
# any of them would be extra lines on a user's stderr.
HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


# -- the inputs ------------------------------------------------------------------------------

def _image(path: Path, size: tuple[int, int] = (64, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 120, np.uint8)).save(path)


def _coco_json(images: list[dict[str, Any]], annotations: list[dict[str, Any]]) -> str:
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    return json.dumps({"images": images, "annotations": annotations,
                       "categories": categories})


def _coco(root: Path, json_text: str | None = None, image_bytes: bytes | None = None) -> Path:
    """A COCO train split of two 64x48 images with one object each (or the given json text,
    or with a.png replaced by ``image_bytes``)."""
    for name in ("a.png", "b.png"):
        _image(root / "train" / name)
    if image_bytes is not None:
        (root / "train" / "a.png").write_bytes(image_bytes)
    images = [{"id": i, "file_name": n, "width": 64, "height": 48}
              for i, n in enumerate(("a.png", "b.png"), start=1)]
    annotations = [{"id": i, "image_id": i, "category_id": i, "bbox": [8, 8, 20, 16]}
                   for i in (1, 2)]
    (root / "train.json").write_text(json_text or _coco_json(images, annotations))
    return root


def _voc(root: Path, xml: str) -> Path:
    _image(root / "JPEGImages" / "1.jpg")
    (root / "Annotations").mkdir(parents=True)
    (root / "Annotations" / "1.xml").write_text(xml)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("1\n")
    return root


VOC_CAT = ("<annotation><filename>1.jpg</filename><size><width>64</width><height>48</height>"
           "</size><object><name>cat</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>30</xmax>"
           "<ymax>30</ymax></bndbox></object></annotation>")


def _yolo(root: Path, label: str) -> Path:
    _image(root / "images" / "train" / "a.png")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text(label)
    (root / "classes.txt").write_text("cat\ndog\n")
    return root


def _yolo_yaml(root: Path, yaml_text: str) -> Path:
    """A YOLO tree (images/train, labels/train) with ``yaml_text`` as its data.yaml."""
    _image(root / "images" / "train" / "a.png")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(yaml_text)
    return root


def _genome(**changes: Any) -> str:
    data = seed_genome(0.35).to_dict()
    data.update(changes)
    return json.dumps(data)


def _bad_ratio_genome() -> str:
    data = seed_genome(0.35).to_dict()
    data["head"]["anchors"][0]["ratios"] = ["wide"]
    return json.dumps(data)


def _csv(rows: str) -> str:
    """A measurements CSV: a comment line, the header (line 2), then ``rows`` from line 3."""
    return "# board runs\nmodel,latency_ms,note\n" + rows


class World:
    """The test's directory, with every input a case may name built on first use.
    ``argv`` templates are formatted with it: ``{coco}`` builds the valid COCO dataset."""

    def __init__(self, root: Path, study_template: Callable[[], Path]) -> None:
        self.root = root
        self.study_template = study_template
        self.built: dict[str, str] = {}
        self.storage_url: str | None = None

    def __getitem__(self, key: str) -> str:
        if key not in self.built:
            self.built[key] = str(getattr(self, f"make_{key}")())
        return self.built[key]

    def path(self, name: str) -> Path:
        return self.root / name

    def text(self, name: str, text: str) -> Path:
        path = self.path(name)
        path.write_text(text)
        return path

    def binary(self, name: str, data: bytes) -> Path:
        path = self.path(name)
        path.write_bytes(data)
        return path

    # plain paths
    def make_tmp(self) -> Path:
        return self.root

    def make_missing(self) -> Path:
        return self.path("missing")

    def make_file(self) -> Path:
        return self.text("file.txt", "a regular file, not a directory\n")

    def make_empty_dir(self) -> Path:
        self.path("empty").mkdir()
        return self.path("empty")

    def make_read_only_dir(self) -> Path:
        path = self.path("read_only")
        path.mkdir()
        path.chmod(0o500)
        return path

    def make_full_dir(self) -> Path:
        self.path("full").mkdir()
        (self.path("full") / "keep.txt").write_text("mine\n")
        return self.path("full")

    # datasets
    def make_coco(self) -> Path:
        return _coco(self.path("coco"))

    def make_coco_not_json(self) -> Path:
        return _coco(self.path("coco_not_json"), json_text="{'images': [")

    def make_coco_no_annotations(self) -> Path:
        return _coco(self.path("coco_no_ann"), json_text=json.dumps(
            {"images": [], "categories": [{"id": 1, "name": "circle"}]}))

    def make_coco_no_images(self) -> Path:
        return _coco(self.path("coco_no_images"), json_text=_coco_json([], []))

    def make_coco_unknown_class(self) -> Path:
        images = [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}]
        annotations = [{"id": 5, "image_id": 1, "category_id": 7, "bbox": [8, 8, 20, 16]}]
        return _coco(self.path("coco_unknown"), json_text=_coco_json(images, annotations))

    def make_coco_zero_box(self) -> Path:
        images = [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}]
        annotations = [{"id": 17, "image_id": 1, "category_id": 1, "bbox": [20, 10, 0, 40]}]
        return _coco(self.path("coco_zero"), json_text=_coco_json(images, annotations))

    def make_coco_bad_image(self) -> Path:
        return _coco(self.path("coco_bad_image"), image_bytes=b"this is not a png\n")

    def make_coco_missing_image(self) -> Path:
        images = [{"id": 1, "file_name": "gone.png"}, {"id": 2, "file_name": "b.png"}]
        return _coco(self.path("coco_missing_image"), json_text=_coco_json(images, []))

    def make_voc_broken(self) -> Path:
        return _voc(self.path("voc_broken"), "<annotation><object><name>cat</name>")

    def make_voc(self) -> Path:
        return _voc(self.path("voc"), VOC_CAT)

    def make_yolo_bad_line(self) -> Path:
        return _yolo(self.path("yolo_line"), "0 0.5 0.5 0.2\n")

    def make_yolo_class_range(self) -> Path:
        return _yolo(self.path("yolo_range"), "5 0.5 0.5 0.2 0.2\n")

    def make_yolo_bad_yaml(self) -> Path:
        return _yolo_yaml(self.path("yolo_bad_yaml"), "train: [images/train\nnames: [cat]\n")

    def make_yolo_nc_mismatch(self) -> Path:
        return _yolo_yaml(self.path("yolo_nc"), "train: images/train\nnc: 3\nnames: [cat, dog]\n")

    def make_yolo_no_train(self) -> Path:
        return _yolo_yaml(self.path("yolo_no_train"), "val: images/train\nnames: [cat, dog]\n")

    def make_roboflow_moved(self) -> Path:
        # Roboflow's paths, with its train/ folder gone: neither '../train/images' nor
        # 'train/images' exists.
        return _yolo_yaml(self.path("roboflow_moved"), "train: ../train/images\n"
                          "val: ../valid/images\nnc: 2\nnames: ['cat', 'dog']\n")

    def make_classes_dog(self) -> Path:
        return self.text("dog.txt", "dog\n")

    def make_classes_twice(self) -> Path:
        return self.text("twice.txt", "circle\nsquare\ncircle\n")

    # genomes
    def make_genome_ok(self) -> Path:
        return self.text("g_ok.json", _genome())

    def make_genome_not_json(self) -> Path:
        return self.text("g_not_json.json", "{resolution: 96,")

    def make_genome_list(self) -> Path:
        return self.text("g_list.json", "[96, 128]")

    def make_genome_no_keys(self) -> Path:
        return self.text("g_no_keys.json", '{"resolution": 96}')

    def make_genome_resolution(self) -> Path:
        return self.text("g_res.json", _genome(resolution=100))

    def make_genome_tap(self) -> Path:
        return self.text("g_tap.json", _genome(taps=[[4]]))

    def make_genome_ratio(self) -> Path:
        return self.text("g_ratio.json", _bad_ratio_genome())

    def make_genome_binary(self) -> Path:
        return self.binary("g_binary.json", b"\xff\xfe\x00\x81genome")

    # model files
    def make_garbage_pt(self) -> Path:
        return self.binary("garbage.pt", b"not a checkpoint at all")

    def make_garbage_tflite(self) -> Path:
        return self.binary("garbage.tflite", b"TFL3 but not really a flatbuffer")

    def make_garbage_export(self) -> Path:
        """An export directory whose genome.json is fine but whose .tflite is not."""
        path = self.path("exported")
        path.mkdir()
        (path / LAYOUT.model).write_bytes(b"TFL3 but not really a flatbuffer")
        (path / LAYOUT.genome).write_text(json.dumps({
            "format": EXPORT_FORMAT, "model": ModelSpec(3, baseline=BASELINE).to_dict(),
            "class_names": list(CLASSES), "outputs": {"boxes": "boxes", "logits": "logits"}}))
        return path / LAYOUT.model

    # the study (built once per session, see study_template): copied in
    def make_runs(self) -> Path:
        runs = self.path("runs")
        shutil.copytree(self.study_template(), runs)
        self.storage_url = f"sqlite:///{runs / 'tinynas.db'}"
        return runs

    def make_storage(self) -> str:
        self["runs"]
        assert self.storage_url is not None
        return self.storage_url

    # calibration CSVs
    def make_csv_negative(self) -> Path:
        return self.text("neg.csv", _csv("m.tflite,-3\n"))

    def make_csv_word(self) -> Path:
        return self.text("word.csv", _csv("m.tflite,fast\n"))

    def make_csv_no_latency(self) -> Path:
        return self.text("no_latency.csv", "model,ms\nm.tflite,3\n")  # header: line 1

    def make_csv_unknown_column(self) -> Path:
        return self.text("column.csv", "model,latency_ms,board\nm.tflite,3,h7\n")

    def make_csv_extra_value(self) -> Path:
        return self.text("extra.csv", _csv("m.tflite,3,note,more\n"))

    def make_csv_model_missing(self) -> Path:
        return self.text("gone.csv", _csv("exports/gone.tflite,3\n"))

    def make_csv_garbage_model(self) -> Path:
        self["garbage_tflite"]
        return self.text("garbage.csv", _csv("garbage.tflite,3\n"))

    def make_csv_trial(self) -> Path:
        return self.text("trial.csv", _csv("study:search/trial:0,12.5\n"))

    def make_csv_empty(self) -> Path:
        return self.text("empty.csv", "# nothing measured yet\n")


def _build_study(runs: Path) -> Path:
    """``runs/tinynas.db``: study 'search' with trials 0 feasible, 1 rejected (flash), 2 failed,
    3 pruned, and 'search:baselines' with one baseline, as the search objective records them."""
    runs.mkdir()
    url = f"sqlite:///{runs / 'tinynas.db'}"
    config = SearchConfig(
        target="stm32h7", runtime="xcubeai", clock_mhz=400, flash_budget=512 * 1024,
        ram_budget=256 * 1024, latency_budget_ms=None, proxy="params",
        objectives=("proxy", "latency"), data="demo", data_format=None, on_error="fail",
        num_classes=3, class_names=CLASSES, seed=0, sampler="nsga2", population=4)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = ModelSpec(3, baseline=BASELINE)
    study = _create_study(url, "search", config)
    _add_trial(study, spec, 300_000)
    _add_trial(study, spec, 600_000)
    _add_trial(study, spec, 300_000, state="FAIL", fail_reason="RuntimeError: boom")
    _add_trial(study, spec, 300_000, state="PRUNED", fail_reason="pruned: AP50 0.03")
    _add_trial(_create_study(url, "search:baselines", config), spec, 300_000)
    return runs


def _create_study(url: str, name: str, config: SearchConfig) -> optuna.Study:
    study = optuna.create_study(storage=url, study_name=name, directions=config.directions)
    study.set_user_attr("tinynas", config.to_dict())
    return study


def _add_trial(study: optuna.Study, spec: ModelSpec, flash: int, state: str = "COMPLETE",
               **attrs: Any) -> None:
    """One trial as the search objective records it (budget 512 KiB flash, 256 KiB RAM)."""
    trial = study.ask()
    trial.set_user_attr("spec", spec.to_dict())
    trial.set_user_attr("baseline", spec.baseline)
    over = flash > 512 * 1024
    trial.set_user_attr("estimate", {"flash_bytes": flash, "ram_bytes": 100_000,
                                     "latency_ms": 20.0, "fits": not over,
                                     "violations": [f"flash {flash} > budget 524288"] * over})
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if state != "COMPLETE":
        study.tell(trial, state=getattr(optuna.trial.TrialState, state))
        return
    trial.set_constraint("flash", flash - 512 * 1024)
    trial.set_constraint("ram", 100_000 - 256 * 1024)
    if over:
        trial.set_user_attr("rejected", f"flash {flash / 1024:.1f} KiB > budget 512.0 KiB")
    else:
        trial.set_user_attr("proxy", 0.5)
    study.tell(trial, [float("-inf") if over else 0.5, 20.0])


# -- the cases -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    argv: str  # split on spaces after formatting; "''" is an empty argument
    expect: tuple[str, ...]  # substrings of the error line (formatted like argv)
    notes: bool = False  # "note:" lines may come first (how a valid value was read)
    # Run as an ordinary user meets file permissions (root writes into a read-only directory
    # anyway): in a child process, see the `as_ordinary_user` fixture.
    as_user: bool = False


def case(id: str, argv: str, *expect: str, notes: bool = False, as_user: bool = False) -> Any:
    return pytest.param(Case(id, argv, expect, notes, as_user), id=id)


EST = f"estimate {BASELINE} --target stm32h7"
STUDY = "--study search --storage {storage}"
SEARCH = "search --target stm32h7 --trials 1 --proxy params --quiet --data {coco}"
TRAIN = f"train {BASELINE} --epochs 1 --out {{tmp}}/run"
EXPORT = f"export {STUDY} --out {{tmp}}/exported"
CALIB = "calibrate --target stm32h7 --profile lab --measurements"
SIZE_FORMS = "512KiB, 0.5MiB, 524288"

CASES = [
    # the command line itself
    case("command-unknown", "serach --target stm32h7", "'serach'", "search"),
    case("option-unknown", f"{EST} --flsh 512KiB", "--flsh", "did you mean --flash?"),
    # budget strings
    case("budget-thousands-separator", f"{EST} --flash 524,288", "'524,288'",
         "no thousands separators"),
    case("budget-bytes-no-genome-fits", f"{SEARCH} --flash 512",
         "flash 512 B", "smallest need about flash"),
    case("budget-si-noted-ram-too-small", f"{SEARCH} --flash 512KB --ram 16KiB",
         "flash 500.0 KiB", "RAM 16.0 KiB", "smallest need about", notes=True),
    case("budget-negative", f"{EST} --flash -1KiB", "'-1KiB'", "cannot be negative", SIZE_FORMS),
    case("budget-negative-equals", f"{EST} --ram=-1KiB", "'-1KiB'", "cannot be negative"),
    case("budget-exponent", f"{EST} --flash 1e3MiB", "'1e3MiB'", "write 1000MiB", SIZE_FORMS),
    case("budget-word", f"{EST} --ram abc", "'abc'", SIZE_FORMS),
    case("budget-empty", f"{EST} --flash ''", "''", "empty", SIZE_FORMS),
    case("budget-single-letter", f"{EST} --flash 512K", "'512K'", "512KiB", "512kB"),
    case("budget-zero", f"{EST} --ram 0", "'0'", "at least 1 byte"),
    # targets, runtimes, baselines
    case("target-unknown", f"estimate {BASELINE} --target stm32h8", "'stm32h8'", "stm32h7",
         "esp32s3"),
    case("runtime-unknown", "baselines --target esp32 --runtime xcubeai", "'xcubeai'",
         "tflm-esp-nn"),
    case("clock-zero", f"{EST} --clock 0", "clock 0", "positive whole number"),
    case("profile-unknown", f"estimate {BASELINE} --target stm32h7@nolab", "nolab",
         "calibrate"),
    case("baseline-unknown", "estimate etn-w9.9 --target stm32h7", "'etn-w9.9'", BASELINE),
    case("two-models", f"{EST} --genome {{genome_ok}}", "name exactly one model",
         "BASELINE", "--genome"),
    case("num-classes-zero", f"{EST} --num-classes 0", "--num-classes 0", "positive"),
    # estimate --proxy: refused before the data is read (or the demo data drawn)
    case("estimate-data-without-proxy", f"{EST} --data {{coco}}", "--data", "--proxy [NAME]"),
    case("estimate-seed-without-proxy", f"{EST} --seed 3", "--seed goes with --proxy"),
    case("estimate-proxy-unknown", f"{EST} --proxy magic", "'magic'", "prior-iou"),
    case("estimate-proxy-bad-option", f"{EST} --proxy short-train:stepz=3", "'stepz=3'",
         "steps (an integer)"),
    case("estimate-proxy-model-as-name", f"estimate --target stm32h7 --proxy {BASELINE}",
         f"'{BASELINE}'", "name the model first"),
    case("estimate-proxy-tflite", "estimate {garbage_tflite} --target stm32h7 --proxy",
         "--proxy scores a model spec", "{garbage_tflite}"),
    case("estimate-proxy-classifier", "estimate mbv1-0.25-224-c5 --target stm32h7 --proxy",
         "mbv1-0.25-224-c5 is a classifier", BASELINE),
    case("estimate-proxy-num-classes-demo", f"{EST} --proxy short-train --num-classes 5",
         "--num-classes 5", "data's 3 classes", "circle, square, triangle"),
    case("estimate-proxy-num-classes", f"{EST} --proxy short-train --num-classes 2 "
         "--data {coco}", "--num-classes 2", "data's 3 classes"),
    case("estimate-proxy-no-val", f"{EST} --proxy short-train --data {{coco}}",
         "--proxy short-train on '{coco}'", "validation split", "no 'val' split"),
    case("estimate-proxy-classes-unknown", f"{EST} --proxy --data {{coco}} --classes dog",
         "no class 'dog'", "'circle', 'square', 'triangle'"),
    # a .tflite file to estimate
    case("tflite-missing", "estimate {missing}/m.tflite --target stm32h7", "{missing}/m.tflite",
         "not found"),
    case("tflite-garbage", "estimate {garbage_tflite} --target stm32h7", "garbage.tflite",
         "not a usable TFLite model"),
    case("tflite-with-genome", "estimate {garbage_tflite} --genome {genome_ok} --target stm32h7",
         ".tflite file is estimated as it is", "--genome"),
    # genome files
    case("genome-missing", "estimate --genome {missing}/g.json --target stm32h7",
         "{missing}/g.json", "not found"),
    case("genome-not-json", "estimate --genome {genome_not_json} --target stm32h7",
         "{genome_not_json}", "not valid JSON"),
    case("genome-not-object", "estimate --genome {genome_list} --target stm32h7",
         "{genome_list}", "object with keys resolution, stages, taps, head"),
    case("genome-missing-keys", "estimate --genome {genome_no_keys} --target stm32h7",
         "{genome_no_keys}", "lacks stages, taps, head", "expected keys resolution"),
    case("genome-bad-resolution", "estimate --genome {genome_resolution} --target stm32h7",
         "resolution=100", "multiple of 16"),
    case("genome-short-tap", "estimate --genome {genome_tap} --target stm32h7",
         "{genome_tap}", "[4]", "(stage, block)"),
    case("genome-bad-ratio", "estimate --genome {genome_ratio} --target stm32h7",
         "{genome_ratio}", "'wide'", "ratios"),
    case("genome-not-text", "estimate --genome {genome_binary} --target stm32h7",
         "{genome_binary}", "UTF-8"),
    case("genome-resolution-flag", "train --genome {genome_ok} --resolution 100 --data {coco} "
         "--out {tmp}/run", "--resolution 100", "multiple of 16"),
    # search: flags, storage, data, an existing study
    case("search-unknown-proxy", "search --target stm32h7 --proxy magic --data {coco}",
         "'magic'", "prior-iou"),
    case("search-trials-zero", f"{SEARCH} --trials 0", "--trials 0", "at least 1"),
    case("search-timeout-no-unit", f"{SEARCH} --timeout 10", "'10'", "10m"),
    case("search-latency-negative", f"{SEARCH} --latency-ms -5", "--latency-ms -5",
         "positive"),
    case("search-objectives", f"{SEARCH} --objectives proxy,speed", "'proxy,speed'",
         "proxy,latency"),
    case("search-storage-scheme", f"{SEARCH} --storage foo://x", "'foo://x'", "sqlite:///PATH"),
    case("search-storage-two-slashes", f"{SEARCH} --storage sqlite://runs.db",
         "'sqlite://runs.db'", "three slashes"),
    case("search-storage-not-sqlite", f"{SEARCH} --storage sqlite:///{{file}}", "{file}",
         "not a SQLite database"),
    case("search-storage-no-dir", f"{SEARCH} --storage sqlite:///{{missing}}/s.db",
         "{missing}", "does not exist"),
    case("search-other-config", f"search --target esp32 --trials 1 --proxy params --quiet "
         f"--data {{coco}} {STUDY}", "target 'stm32h7'", "'esp32'", "--study NEW_NAME"),
    case("search-unknown-space", f"{SEARCH} --space narrow", "'narrow'", "fitted", "full"),
    case("search-runs-dir-is-a-file", "search --target stm32h7 --runs-dir {file}", "{file}",
         "is a file, not a directory"),
    case("search-no-genome-fits-demo", "search --target stm32h7 --flash 512", "flash 512 B",
         "the smallest need about flash"),
    case("search-proxy-option", f"{SEARCH} --proxy short-train:stpes=5", "'stpes=5'",
         "settable options are steps"),
    case("search-trial-budget-free-proxy", f"{SEARCH} --trial-budget 30s", "'30s'",
         "trains nothing"),
    case("search-trial-budget-no-unit", f"{SEARCH} --proxy short-train --trial-budget 30",
         "--trial-budget '30'", "90s"),
    case("search-data-missing", "search --target stm32h7 --data {missing}", "{missing}",
         "not found"),
    case("search-data-is-a-file", "search --target stm32h7 --data {file}", "{file}",
         "is not a directory"),
    case("search-data-empty", "search --target stm32h7 --data {empty_dir}", "{empty_dir}",
         "train.json", "VOC", "YOLO"),
    case("search-coco-not-json", "search --target stm32h7 --data {coco_not_json}",
         "{coco_not_json}/train.json", "not a readable COCO json"),
    # datasets and annotations (through train, which reads them first)
    case("data-coco-no-annotations", f"{TRAIN} --data {{coco_no_annotations}}",
         "{coco_no_annotations}/train.json", "'annotations'"),
    case("data-coco-no-images", f"{TRAIN} --data {{coco_no_images}}",
         "{coco_no_images}/train.json", "no usable images in split 'train'"),
    case("data-coco-unknown-class", f"{TRAIN} --data {{coco_unknown_class}}",
         "annotation id 5", "category_id 7", "circle, square, triangle"),
    case("data-coco-zero-box", f"{TRAIN} --data {{coco_zero_box}}", "annotation id 17",
         "zero-area", "--bad-annotations skip"),
    case("data-coco-unreadable-image", f"{TRAIN} --data {{coco_bad_image}}",
         "{coco_bad_image}/train/a.png", "not a readable image"),
    case("data-coco-missing-image", f"{TRAIN} --data {{coco_missing_image}}",
         "{coco_missing_image}/train/gone.png", "not found"),
    case("data-voc-broken-xml", f"{TRAIN} --data {{voc_broken}}",
         "{voc_broken}/Annotations/1.xml", "not readable xml"),
    case("data-voc-unknown-class", f"{TRAIN} --data {{voc}} --classes {{classes_dog}}",
         "'cat'", "dog"),
    case("data-yolo-bad-line", f"{TRAIN} --data {{yolo_bad_line}}",
         "{yolo_bad_line}/labels/train/a.txt", "line 1", "class cx cy w h"),
    case("data-yolo-class-out-of-range", f"{TRAIN} --data {{yolo_class_range}}",
         "class id 5", "0..1", "cat, dog"),
    case("data-yolo-bad-yaml", f"{TRAIN} --data {{yolo_bad_yaml}}",
         "{yolo_bad_yaml}/data.yaml", "not valid yaml at line"),
    case("data-yolo-nc-mismatch", f"{TRAIN} --data {{yolo_nc_mismatch}}", "nc is 3",
         "'names' lists 2"),
    case("data-yolo-missing-split", f"{TRAIN} --data {{yolo_no_train}}", "no 'train' split",
         "it defines val"),
    case("data-yolo-path-not-found", f"{TRAIN} --data {{roboflow_moved}}",
         "train '../train/images' not found", "{roboflow_moved}/train/images"),
    case("data-classes-unknown", f"{TRAIN} --data {{coco}} --classes dog,circle",
         "no class 'dog'", "'circle', 'square', 'triangle'"),
    case("search-classes-unknown", f"{SEARCH} --classes dog", "no class 'dog'",
         "'circle', 'square', 'triangle'"),
    # no --data: the class map is read before the demo data would be drawn (and noted)
    case("data-classes-missing", f"{TRAIN} --classes {{missing}}/c.txt", "{missing}/c.txt",
         "not found"),
    case("data-classes-twice", f"{TRAIN} --data {{coco}} --classes {{classes_twice}}",
         "'circle'", "twice"),
    case("data-format-mismatch", f"{TRAIN} --data {{coco}} --format voc",
         "{coco}/ImageSets/Main/train.txt", "not found"),
    # train
    case("train-time-budget-no-unit", f"{TRAIN} --data {{coco}} --time-budget 10", "'10'",
         "90s"),
    case("train-epochs-zero", f"train {BASELINE} --epochs 0 --data {{coco}} --out {{tmp}}/run",
         "epochs=0", "at least 1"),
    case("train-out-under-file", f"train {BASELINE} --epochs 1 --data {{coco}} "
         "--out {file}/run", "--out '{file}/run'", "not a directory"),
    case("train-out-read-only", f"train {BASELINE} --epochs 1 --data {{coco}} "
         "--out {read_only_dir}/run", "--out '{read_only_dir}/run'", "not writable",
         as_user=True),
    case("train-out-not-empty", f"train {BASELINE} --epochs 1 --data {{coco}} "
         "--out {full_dir}", "{full_dir}", "not empty"),
    case("train-resume-nothing", "train --resume --out {empty_dir}", "{empty_dir}/last.pt",
         "no checkpoint"),
    case("train-failed-trial", f"train {STUDY} --trial 2 --data {{coco}} --out {{tmp}}/run",
         "trial 2", "fail", "RuntimeError: boom"),
    # evaluate
    case("evaluate-missing-checkpoint", "evaluate {missing}/last.pt --data {coco}",
         "{missing}/last.pt", "not found"),
    case("evaluate-garbage-checkpoint", "evaluate {garbage_pt} --data {coco}", "{garbage_pt}",
         "not a readable checkpoint"),
    case("evaluate-tflite-alone", "evaluate {garbage_tflite} --data {coco}",
         "{garbage_tflite}", "genome.json", "side by side"),
    case("evaluate-tflite-not-a-model", "evaluate {garbage_export} --data {coco}",
         "{garbage_export}", "not a usable TFLite file"),
    case("evaluate-untrained-trial", f"evaluate {STUDY} --trial 0", "trial 0",
         "never trained"),
    case("evaluate-batch-size-zero", "evaluate {garbage_pt} --batch-size 0", "--batch-size 0",
         "at least 1"),
    # export: trials that hold no usable model, and bad output directories
    case("export-failed-trial", f"{EXPORT} --trial 2", "trial 2", "fail",
         "RuntimeError: boom"),
    case("export-pruned-trial", f"{EXPORT} --trial 3", "trial 3", "pruned", "AP50 0.03"),
    case("export-rejected-trial", f"{EXPORT} --trial 1", "trial 1", "rejected",
         "flash 585.9 KiB > budget 512.0 KiB"),
    case("export-unknown-trial", f"{EXPORT} --trial 99", "--trial 99", "0-3"),
    case("export-unknown-study", "export --study nope --trial 0 --storage {storage} "
         "--out {tmp}/exported", "'nope'", "studies there: search"),
    case("export-study-without-trial", "export --study search --storage {storage} "
         "--out {tmp}/exported", "--study and --trial go together"),
    case("export-out-under-file", f"export {BASELINE} --out {{file}}/exported",
         "--out '{file}/exported'", "not a directory"),
    case("export-trial-out-under-file", f"export {STUDY} --trial 0 --out {{file}}/exported",
         "--out '{file}/exported'", "not a directory"),
    case("export-out-read-only", f"export {BASELINE} --out {{read_only_dir}}/exported",
         "--out '{read_only_dir}/exported'", "not writable", as_user=True),
    case("export-out-not-empty", f"export {BASELINE} --out {{full_dir}}", "{full_dir}",
         "not an empty directory"),
    case("export-num-classes-zero", f"export {BASELINE} --num-classes 0 "
         "--out {tmp}/exported", "--num-classes 0", "positive"),
    case("export-calib-missing", f"export {BASELINE} --out {{tmp}}/exported "
         "--calib {missing}", "--calib '{missing}'", "directory of images"),
    case("export-garbage-checkpoint", f"export {BASELINE} --checkpoint {{garbage_pt}} "
         "--out {tmp}/exported", "{garbage_pt}", "not a readable checkpoint"),
    # show and pareto
    case("show-unknown-trial", f"show --trial 99 {STUDY}", "--trial 99", "0-3"),
    case("show-unknown-trial-json", f"show --trial 99 --json {STUDY}", "--trial 99", "0-3"),
    case("show-unknown-study", "show --trial 0 --study nope --storage {storage}", "'nope'",
         "studies there: search"),
    case("show-unknown-baseline", f"show --baseline ssd-nope {STUDY}", "ssd-nope", BASELINE),
    case("show-no-search", "show --trial 0 --runs-dir {empty_dir}", "{empty_dir}",
         "--storage URL"),
    case("show-journal-missing", "show --trial 0 --storage journal:{missing}/s.log",
         "journal:{missing}/s.log", "does not exist"),
    case("show-server-unreachable", "show --trial 0 --storage "
         "postgresql://tiny:secret@127.0.0.1:9/db", "postgresql://tiny:***@127.0.0.1:9/db",
         "cannot open it"),
    case("pareto-unknown-study", "pareto --study nope --storage {storage}", "'nope'",
         "studies there: search"),
    case("pareto-out-under-file", "pareto --storage {storage} --out {file}/plots",
         "--out '{file}/plots'", "cannot write"),
    # calibrate: bad rows of the measurements CSV, profile names
    case("calibrate-negative-latency", f"{CALIB} {{csv_negative}}", "{csv_negative} line 3",
         "'-3'", "positive number"),
    case("calibrate-latency-word", f"{CALIB} {{csv_word}}", "line 3", "'fast'",
         "positive number"),
    case("calibrate-header-lacks-latency", f"{CALIB} {{csv_no_latency}}", "line 1",
         "lacks latency_ms", "model,latency_ms"),
    case("calibrate-unknown-column", f"{CALIB} {{csv_unknown_column}}", "'board'",
         "valid columns are model, latency_ms"),
    case("calibrate-extra-value", f"{CALIB} {{csv_extra_value}}", "line 3", "4 values",
         "quote"),
    case("calibrate-model-missing", f"{CALIB} {{csv_model_missing}}",
         "'exports/gone.tflite' not found", "CSV's folder"),
    case("calibrate-model-not-tflite", f"{CALIB} {{csv_garbage_model}}", "line 3",
         "'garbage.tflite'", "int8 .tflite"),
    case("calibrate-trial-not-exported", f"{CALIB} {{csv_trial}} --storage {{storage}}",
         "line 3", "study:search/trial:0", "never exported"),
    case("calibrate-empty-csv", f"{CALIB} {{csv_empty}}", "{csv_empty}", "empty",
         "model,latency_ms"),
    case("calibrate-csv-missing", f"{CALIB} {{missing}}/runs.csv", "{missing}/runs.csv",
         "no such file"),
    case("calibrate-no-profile", "calibrate --target stm32h7 --measurements {csv_negative}",
         "--profile NAME"),
    case("calibrate-profile-name", "calibrate --target stm32h7 --profile Lab/1 "
         "--measurements {csv_negative}", "'Lab/1'", "lower-case letters"),
    # data demo
    case("data-demo-out-under-file", "data demo --size small --out {file}/demo",
         "--out '{file}/demo'", "not a directory"),
    case("data-demo-out-not-empty", "data demo --size small --out {full_dir}",
         "--out '{full_dir}'", "not an empty directory"),
    # data inspect
    case("data-inspect-missing", "data inspect {missing}", "'{missing}'", "not found"),
    case("data-inspect-missing-split", "data inspect {coco} --split val", "no split 'val'",
         "it has train"),
    case("data-inspect-unknown-class", "data inspect {coco} --classes dog", "no class 'dog'",
         "'circle'"),
    case("data-inspect-resolution", "data inspect {coco} --resolution 0", "--resolution 0",
         "16..4096"),
    case("data-inspect-plot-not-png", "data inspect {coco} --plot {tmp}/sizes.jpg",
         "--plot '{tmp}/sizes.jpg'", ".png"),
    case("data-inspect-plot-under-file", "data inspect {coco} --plot {file}/sizes.png",
         "--plot", "is a file"),
    case("data-inspect-bad-yaml", "data inspect {yolo_bad_yaml}", "not valid yaml"),
    case("data-demo-num-train-zero", "data demo --size small --num-train 0 --out {tmp}/demo",
         "--num-train 0", "at least 1"),
]


# -- running a case --------------------------------------------------------------------------

def _snapshot_files(root: Path) -> dict[str, str]:
    """Every path under ``root``: directories as 'dir', files by content hash."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _snapshot_studies(url: str | None) -> dict[str, Any]:
    """Each study of the storage: its attributes and every trial's state, values and attrs."""
    if url is None:
        return {}
    storage = optuna.storages.RDBStorage(url)
    try:
        studies = {}
        for summary in storage.get_all_studies():
            study_id = storage.get_study_id_from_name(summary.study_name)
            trials = [(t.number, t.state.name, t.values, t.user_attrs, t.system_attrs)
                      for t in storage.get_all_trials(study_id, deepcopy=False)]
            studies[summary.study_name] = (storage.get_study_user_attrs(study_id), trials)
        return studies
    finally:
        storage.remove_session()
        storage.engine.dispose()


@pytest.fixture(scope="module")
def study_template(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """The study's runs directory, built on first use (about 2 s) and then only copied."""
    built: list[Path] = []

    def get() -> Path:
        if not built:
            built.append(_build_study(tmp_path_factory.mktemp("study") / "runs"))
        return built[0]

    return get


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          study_template: Callable[[], Path]) -> World:
    """A fresh directory as cwd, holding the config and cache dirs too (not created: a command
    that wrote a profile or drew the demo data would show up in the snapshot)."""
    root = tmp_path / "w"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("TINYNAS_CONFIG", str(root / "config"))
    monkeypatch.setenv("TINYNAS_CACHE", str(root / "cache"))
    return World(root, study_template)


def _argv(world: World, template: str) -> list[str]:
    words = template.format_map(world).split(" ")
    return ["" if w == "''" else w for w in words]


def _run(argv: list[str], capfd: pytest.CaptureFixture[str]
         ) -> tuple[int, str, str, list[Any]]:
    """``tinynas ARGV`` in this process: (exit code, stdout, stderr, warnings a user would
    see)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
    shown = [w for w in caught if not issubclass(w.category, HIDDEN_WARNINGS)]
    captured = capfd.readouterr()
    return code, captured.out, captured.err, shown


def _run_as_user(argv: list[str], cwd: Path, preexec: Callable[[], None] | None
                 ) -> tuple[int, str, str, list[Any]]:
    """``tinynas ARGV`` in a child process that meets file permissions as an ordinary user
    does; a warning it shows is one more line on its stderr."""
    done = subprocess.run([sys.executable, "-m", "nas.cli", *argv], capture_output=True,
                          text=True, cwd=cwd, timeout=300, check=False, preexec_fn=preexec)
    return done.returncode, done.stdout, done.stderr, []


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
        bad: Case, world: World, capfd: pytest.CaptureFixture[str],
        as_ordinary_user: Callable[[], None] | None) -> None:
    argv = _argv(world, bad.argv)
    expect = [e.format_map(world) for e in bad.expect]
    files, studies = _snapshot_files(world.root), _snapshot_studies(world.storage_url)
    assert world.storage_url is None or {"search", "search:baselines"} <= set(studies)
    capfd.readouterr()

    code, out, err, shown = (_run_as_user(argv, world.root, as_ordinary_user) if bad.as_user
                             else _run(argv, capfd))

    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if not (bad.notes and line.startswith("note:"))]
    assert "Traceback" not in err, err
    assert code == 2, f"exit {code}, stderr:\n{err}"
    assert len(errors) == 1 and len(lines) == len(errors) + bad.notes, err
    line = errors[0]
    command = f"tinynas {argv[0]}" if argv[0] in COMMANDS else "tinynas"
    assert line.startswith(f"{command}: error: "), line
    for text in expect:
        assert text in line, f"{text!r} not in {line!r}"
    assert not out, f"stdout should be empty (--json readers get nothing), got {out!r}"
    assert not shown, [str(w.message) for w in shown]
    assert _snapshot_files(world.root) == files, "the command created or changed files"
    assert _snapshot_studies(world.storage_url) == studies, "the command changed a study"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    """The same bad budget with --debug: the exception propagates with its traceback."""
    env = {**os.environ, "TINYNAS_CONFIG": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-m", "nas.cli", *EST.split(), "--flash", "abc",
                           "--debug"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120, check=False)
    assert done.returncode != 0
    assert "Traceback (most recent call last)" in done.stderr
    assert "BudgetError: invalid size 'abc'" in done.stderr


def test_every_command_has_a_case() -> None:
    covered = {p.values[0].argv.split(" ")[0] for p in CASES}
    assert covered >= set(COMMANDS) - {"targets"}, set(COMMANDS) - covered

