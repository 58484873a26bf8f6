"""Export: PyTorch -> ONNX -> int8 TFLite, its measurement, firmware C array and model card.

TensorFlow prints C++ info lines (CPU features, oneDNN) the moment it is imported, and some
modules here import it: quiet it first, unless the user asked for it.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
