"""What every tinynas file shares, whichever layer writes it: the format tag a JSON file or
checkpoint carries and its one check (``tags``).

A neutral package: it imports no other tinynas package, so ``search_space``, ``estimators``,
``objectives``, ``nas`` and the scripts may all use it.
"""
