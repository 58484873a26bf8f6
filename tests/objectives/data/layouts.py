"""Datasets written the way each tool writes them, tiny (images of a few dozen pixels).

Shared by the loader tests (through ``conftest.py``) and the command tests in
``tests/nas/cli/test_data.py`` (loaded by path). Each writer returns what to pass as
``--data``. File names, yaml text, json keys and xml elements follow the tools' own exports:
Roboflow's YOLOv8 export, an Ultralytics dataset yaml with ``path``, COCO 2017's
``annotations/instances_*2017.json`` (category ids not contiguous, crowd regions with RLE),
and a Pascal VOC 2012 tree (``difficult``, ``truncated``, ``part`` boxes, float corners).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def image(path: Path, width: int = 64, height: int = 48, shade: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), shade, np.uint8)).save(path)
    return path


ROBOFLOW_YAML = """train: ../train/images
val: ../valid/images
test: ../test/images

nc: 3
names: ['car', 'dog', 'person']

roboflow:
  workspace: acme
  project: street-objects
  version: 2
  license: CC BY 4.0
  url: https://universe.roboflow.com/acme/street-objects/dataset/2
"""

# (split folder, image stem, label text): ids index names = car, dog, person.
ROBOFLOW_IMAGES = (
    ("train", "street1_jpg.rf.0a1b2c", "2 0.5 0.5 0.25 0.5\n0 0.25 0.75 0.2 0.2\n"),
    ("train", "street2_jpg.rf.3d4e5f", "1 0.5 0.5 0.5 0.5\n"),
    ("train", "empty_jpg.rf.6a7b8c", ""),  # Roboflow writes an empty file for a null image
    ("valid", "street3_jpg.rf.9d0e1f", "2 0.4 0.4 0.2 0.4\n1 0.7 0.7 0.2 0.2\n"),
    ("valid", "street4_jpg.rf.2a3b4c", "0 0.5 0.5 0.3 0.3\n"),
    ("test", "street5_jpg.rf.5d6e7f", "2 0.5 0.5 0.2 0.2\n"),
)


def roboflow_yolo(root: Path) -> Path:
    """A Roboflow "YOLOv8" export: data.yaml + train/, valid/, test/ with images/ + labels/."""
    (root / "README.roboflow.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "README.roboflow.txt").write_text("Exported via roboflow.com\n")
    (root / "README.dataset.txt").write_text("# street-objects > 2\n")
    (root / "data.yaml").write_text(ROBOFLOW_YAML)
    for split, stem, label in ROBOFLOW_IMAGES:
        image(root / split / "images" / f"{stem}.jpg")
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        (root / split / "labels" / f"{stem}.txt").write_text(label)
    return root


ULTRALYTICS_YAML = """# Ultralytics YOLO, AGPL-3.0 license
# Example usage: yolo train data=coco8.yaml

# Train/val/test sets as 1) dir: path/to/imgs, 2) file: path/to/imgs.txt, or 3) list
path: coco8 # dataset root dir
train: images/train # train images (relative to 'path') 2 images
val: images/val # val images (relative to 'path') 2 images
test: # test images (optional)

# Classes
names:
  0: person
  1: bicycle
  2: car
"""


def ultralytics_yaml(root: Path) -> Path:
    """``root/coco8.yaml`` with ``path: coco8`` and the images/ + labels/ tree beside it;
    returns the yaml (Ultralytics users pass the yaml itself)."""
    data = root / "coco8"
    for split, stem, label in (("train", "000000000009", "0 0.5 0.5 0.3 0.6\n2 0.2 0.2 0.2 0.2\n"),
                               ("train", "000000000025", "1 0.6 0.6 0.4 0.4\n"),
                               ("val", "000000000030", "0 0.5 0.5 0.2 0.2\n"),
                               ("val", "000000000034", "2 0.3 0.3 0.2 0.2\n")):
        image(data / "images" / split / f"{stem}.jpg")
        (data / "labels" / split).mkdir(parents=True, exist_ok=True)
        (data / "labels" / split / f"{stem}.txt").write_text(label)
    (root / "coco8.yaml").write_text(ULTRALYTICS_YAML)
    return root / "coco8.yaml"


COCO_CATEGORIES = [{"supercategory": "person", "id": 1, "name": "person"},
                   {"supercategory": "vehicle", "id": 3, "name": "car"},
                   {"supercategory": "animal", "id": 18, "name": "dog"}]


def _coco_image(i: int, name: str) -> dict:
    return {"license": 3, "file_name": name, "coco_url": f"http://images.cocodataset.org/{name}",
            "height": 48, "width": 64, "date_captured": "2013-11-14 16:28:13",
            "flickr_url": "http://farm5.staticflickr.com/x.jpg", "id": i}


def _coco_ann(i: int, image_id: int, category: int, bbox: list[float], crowd: int = 0) -> dict:
    x, y, w, h = bbox
    segmentation = ({"counts": [0, 12, 36, 12, 3000], "size": [48, 64]} if crowd
                    else [[x, y, x + w, y, x + w, y + h, x, y + h]])
    return {"segmentation": segmentation, "area": w * h, "iscrowd": crowd,
            "image_id": image_id, "bbox": bbox, "category_id": category, "id": i}


def coco2017(root: Path) -> Path:
    """COCO 2017: annotations/instances_{train,val}2017.json, train2017/, val2017/."""
    splits = {
        "train": ([(9, "000000000009.jpg"), (25, "000000000025.jpg"), (30, "000000000030.jpg")],
                  [_coco_ann(1, 9, 1, [8.0, 6.5, 20.0, 30.0]),
                   _coco_ann(2, 9, 3, [34.0, 10.0, 24.0, 16.0]),
                   _coco_ann(3, 25, 18, [4.0, 4.0, 30.0, 30.0]),
                   _coco_ann(4, 25, 1, [30.0, 2.0, 30.0, 40.0], crowd=1),
                   _coco_ann(5, 30, 18, [10.0, 10.0, 12.0, 12.0])]),
        "val": ([(139, "000000000139.jpg"), (285, "000000000285.jpg")],
                [_coco_ann(6, 139, 1, [10.0, 8.0, 20.0, 30.0]),
                 _coco_ann(7, 139, 1, [36.0, 4.0, 24.0, 40.0], crowd=1),
                 _coco_ann(8, 285, 3, [5.0, 5.0, 30.0, 20.0])]),
    }
    for split, (images, anns) in splits.items():
        for _, name in images:
            image(root / f"{split}2017" / name)
        data = {"info": {"description": "COCO 2017 Dataset", "version": "1.0", "year": 2017},
                "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": 3,
                              "name": "Attribution License"}],
                "images": [_coco_image(i, n) for i, n in images],
                "annotations": anns, "categories": COCO_CATEGORIES}
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(data))
    return root


def _voc_object(name: str, corners: tuple, difficult: int = 0, truncated: int = 0,
                part: bool = False) -> str:
    xmin, ymin, xmax, ymax = corners
    parts = ("<part><name>head</name><bndbox><xmin>12</xmin><ymin>8</ymin><xmax>20</xmax>"
             "<ymax>16</ymax></bndbox></part>") if part else ""
    return (f"<object><name>{name}</name><pose>Frontal</pose><truncated>{truncated}</truncated>"
            f"<occluded>0</occluded><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox><difficult>{difficult}</difficult>"
            f"{parts}</object>")


def voc2012(root: Path) -> Path:
    """VOCdevkit/VOC2012 as unpacked: Annotations/, JPEGImages/, ImageSets/Main/ with the
    split lists and per-class lists; returns the VOC2012 folder."""
    voc = root / "VOCdevkit" / "VOC2012"
    objects = {
        "2008_000008": [_voc_object("person", (10.5, 4.5, 30.5, 40.5), truncated=1, part=True),
                        _voc_object("horse", (33, 10, 60, 44), difficult=1)],
        "2008_000015": [_voc_object("car", (5, 5, 40, 30))],
        "2008_000019": [_voc_object("horse", (2, 2, 20, 20))],
        "2008_000023": [_voc_object("person", (20, 10, 44, 46), difficult=1),
                        _voc_object("car", (1, 1, 64, 48), truncated=1)],
    }
    for stem, objs in objects.items():
        image(voc / "JPEGImages" / f"{stem}.jpg")
        (voc / "Annotations").mkdir(parents=True, exist_ok=True)
        (voc / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><folder>VOC2012</folder><filename>{stem}.jpg</filename><source>"
            "<database>The VOC2008 Database</database><annotation>PASCAL VOC2008</annotation>"
            "<image>flickr</image></source><size><width>64</width><height>48</height>"
            f"<depth>3</depth></size><segmented>0</segmented>{''.join(objs)}</annotation>")
    lists = voc / "ImageSets" / "Main"
    lists.mkdir(parents=True)
    stems = list(objects)
    (lists / "train.txt").write_text("\n".join(stems[:3]) + "\n")
    (lists / "val.txt").write_text(stems[3] + "\n")
    (lists / "trainval.txt").write_text("\n".join(stems) + "\n")
    (lists / "person_train.txt").write_text(f"{stems[0]}  1\n{stems[1]} -1\n{stems[2]} -1\n")
    return voc
