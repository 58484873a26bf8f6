"""Estimators: what a layer graph costs on a board, at search speed, without running it.

The IR (``ir``) is lowered to the deployed int8 graph (``deploy``) that flash, RAM, X-CUBE-AI
memory and latency are read from; ``estimate`` combines them against a target's budgets.
``tflite`` reads real ``.tflite`` files, so the same estimators can run on a converted model.
This package never imports ``search_space`` or ``nas``.
"""
