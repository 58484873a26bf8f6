from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from objectives.data import BrokenEntryError, DatasetError, open_dataset


def _xml(filename: str, objects: list[tuple[str, tuple]], size: tuple[int, int] = (200, 100)
         ) -> str:
    body = "".join(
        f"<object><name>{name}</name><difficult>0</difficult><bndbox>"
        + "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box,
                                                      strict=True))
        + "</bndbox></object>" for name, box in objects)
    return (f"<annotation><filename>{filename}</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{body}</annotation>")


def _voc(root: Path, write_image, files: dict[str, str], split: list[str] | None = None) -> None:
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for image_id, xml in files.items():
        (root / "Annotations" / f"{image_id}.xml").write_text(xml)
        write_image(root / "JPEGImages" / f"{image_id}.jpg", 200, 100)
    (root / "ImageSets" / "Main" / "train.txt").write_text("\n".join(split or list(files)))


def test_every_object_of_every_image_is_kept(tmp_path, write_image):
    _voc(tmp_path, write_image, {
        "000001": _xml("000001.jpg", [("dog", (1, 1, 200, 100)), ("cat", (21, 11, 120, 60)),
                                       ("dog", (101, 51, 150, 100))]),
        "000002": _xml("000002.jpg", [("bird", (11, 11, 20, 20))]),
    })
    ds = open_dataset(tmp_path, "train")
    assert ds.class_names == ("bird", "cat", "dog")  # sorted: VOC's own order for VOC
    first, second = ds.records
    assert first.labels.tolist() == [2, 1, 2]
    # 1-based inclusive corners: xmin=1..xmax=200 is the whole 200-px row.
    np.testing.assert_allclose(first.boxes[0], [0, 0, 1, 1], atol=1e-6)
    np.testing.assert_allclose(first.boxes[1], [0.1, 0.1, 0.6, 0.6], atol=1e-6)
    assert second.labels.tolist() == [0]


def test_class_map_and_unknown_class(tmp_path, write_image):
    _voc(tmp_path, write_image, {"a": _xml("a.jpg", [("dog", (1, 1, 20, 20)),
                                                      ("horse", (1, 1, 20, 20))])})
    with pytest.raises(BrokenEntryError, match=r"a\.xml: object 1 \(horse\).*unknown class"):
        open_dataset(tmp_path, "train", class_names=["dog", "cat"])
    ds = open_dataset(tmp_path, "train", class_names=["cat", "dog"], on_error="skip")
    assert ds.records[0].labels.tolist() == [1]


@pytest.mark.parametrize(("box", "kind"), [
    ((150, 10, 260, 50), "box outside the image"),
    ((50, 10, 40, 50), "zero-area box"),
    ((50, "", 60, 50), "malformed entry"),
])
def test_broken_boxes(tmp_path, write_image, box, kind):
    _voc(tmp_path, write_image, {"a": _xml("a.jpg", [("dog", (1, 1, 20, 20)), ("dog", box)])})
    with pytest.raises(BrokenEntryError, match=rf"a\.xml: object 1 \(dog\).*{kind}"):
        open_dataset(tmp_path, "train")
    ds = open_dataset(tmp_path, "train", on_error="skip")
    assert ds.num_objects == 1 and ds.problems[0].kind == kind


def test_unreadable_xml_and_missing_image(tmp_path, write_image):
    _voc(tmp_path, write_image, {"a": _xml("a.jpg", [("dog", (1, 1, 20, 20))]),
                                 "b": "<annotation><object>", "c": _xml("c.jpg", [])})
    (tmp_path / "JPEGImages" / "c.jpg").unlink()
    with pytest.raises(DatasetError, match=r"b\.xml.*unreadable file"):
        open_dataset(tmp_path, "train")
    ds = open_dataset(tmp_path, "train", on_error="skip")
    assert len(ds) == 1
    assert sorted(p.kind for p in ds.problems) == ["missing image", "unreadable file"]
    assert any("c.jpg" in p.file for p in ds.problems)


def test_missing_split_list(tmp_path, write_image):
    _voc(tmp_path, write_image, {"a": _xml("a.jpg", [("dog", (1, 1, 20, 20))])})
    with pytest.raises(DatasetError, match=r"ImageSets/Main/val\.txt' not found"):
        open_dataset(tmp_path, "val")
