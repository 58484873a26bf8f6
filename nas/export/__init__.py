"""Export: PyTorch -> ONNX -> int8 TFLite, its measurement, firmware C array and model card.

* :mod:`~nas.export.pipeline`: one export, from the request to the files, verified.
* :mod:`~nas.export.representative`: the images the int8 conversion calibrates on.
* :mod:`~nas.export.convert`, ``rewrite``, ``schedule``, ``memory_plan``: the conversion and
  what is fixed in the flatbuffer after it (read with :mod:`estimators.tflite`).
* :mod:`~nas.export.runtimes`: LiteRT and TFLite Micro on the file; ``inspect``: its kernels
  and graph read back for the estimators.
* :mod:`~nas.export.files`: what an export directory holds (``LAYOUT``) and its
  ``genome.json``; ``card``, ``carray``: the model card and the C array.

TensorFlow prints C++ info lines (CPU features, oneDNN) the moment it is imported, and some
modules here import it: quiet it first, unless the user asked for it.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
