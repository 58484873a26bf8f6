"""tinynas's search, export and command line.

``cli/`` is the command layer (the ``tinynas`` commands); everything else here is library and
never imports it: ``search/`` (the multi-objective search), ``export/`` (int8 TFLite export and
reading a ``.tflite`` back), ``calibrate/`` (latency measurement and fitting), ``detector.py``
(host post-processing of an int8 detector) and ``errors.py`` (``UsageError``, the user's
mistake, raised by both).
"""
