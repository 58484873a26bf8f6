"""What every tinynas file shares, whichever layer writes it: atomic writes, so that every
file and directory appears whole or not at all (``atomic``), and the format tag a JSON file or
checkpoint carries with its one check (``tags``).

A neutral package: it imports no other tinynas package, so ``search_space``, ``estimators``,
``objectives``, ``nas`` and the scripts may all use it.
"""
