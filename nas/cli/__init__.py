"""The ``tinynas`` command line: a table of commands, each thin over the library.

Every command takes ``--json`` (machine-readable output on stdout) and ``--debug`` (show
tracebacks). Bad input is one line on stderr and exit code 2.

This package is the command layer only: the library (``nas.search``, ``nas.export``,
``nas.calibrate``, ``nas.detector``, ``estimators``, ``objectives``, ``search_space``) never
imports it (``tests/nas/cli/test_layering.py``), and raises :class:`nas.errors.UsageError` for
the user's mistakes.

* ``app.py``: the command table (:data:`COMMANDS`) and :func:`main`; ``parser.py``: the
  argparse subclass (one-line errors, dash-digit values such as ``--flash -1KiB``);
  ``__main__.py``: ``python -m nas.cli``.
* ``command.py``: what every command shares (:class:`~nas.cli.command.Command`,
  :class:`~nas.cli.command.Output` with its one JSON-or-table choice ``show``, exit codes,
  the target/budget, study, model and ``--proxy`` flags); ``data_args.py``: the data flags
  and opening a split; ``specs.py``: the model a user names (baseline or genome file);
  ``formatting.py``: how tables write AP, sizes, latency bands and verdicts.
* One module per command: ``targets``, ``baselines``, ``estimate`` (with ``estimate_row``,
  ``estimate_tflite`` for ``estimate MODEL.tflite`` and ``estimate_proxy`` for ``--proxy``),
  ``data`` (with ``data_inspect``), ``train``, ``evaluate``, ``export``, ``calibrate``,
  ``search``, and ``views`` (``pareto`` and ``show``, the two read-only views of a study).
"""

from __future__ import annotations

from nas.cli.app import COMMANDS, main, make_parser

__all__ = ["COMMANDS", "main", "make_parser"]
