"""What the library and the command line agree on about failing.

The library (``nas.search``, ``nas.export``, ...) raises :class:`UsageError` for input the
user got wrong, and a search worker exits with :data:`EXIT_INTERRUPTED` on Ctrl-C; the
command line (``nas.cli``) turns the first into one line on stderr and exit code 2. They live
here, not in ``nas.cli``, because the library never imports the command layer.
"""

from __future__ import annotations

EXIT_INTERRUPTED = 130  # the shell's code for SIGINT


class UsageError(ValueError):
    """Bad input from the user: reported in one line, exit code 2."""
