"""Objectives: detection datasets, the built-in demo data, SSD training and evaluation.

Data flows one way: a dataset on disk (COCO, Pascal VOC or YOLO) is parsed into
:class:`~objectives.data.dataset.DetectionDataset` (images decoded lazily, boxes normalised);
:mod:`objectives.train` matches boxes to a model's priors and trains it, writing
:mod:`objectives.checkpoint` files (reporting to :mod:`objectives.train_progress`);
:mod:`objectives.evaluate` scores any predictor with pycocotools. This package never imports
``nas``.
"""
