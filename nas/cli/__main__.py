"""``python -m nas.cli``: the same as the ``tinynas`` console script."""

from __future__ import annotations

import sys

from nas.cli.app import main

sys.exit(main())
