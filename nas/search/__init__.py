"""The search (``tinynas search``): Optuna studies of detector genomes under hard budgets.

* :mod:`~nas.search.storage`: storage URLs -> Optuna storages; opening studies.
* :mod:`~nas.search.config`: :class:`~nas.search.config.SearchConfig`, a study's settings.
* :mod:`~nas.search.objective`: one trial (estimate, constraints, proxy).
* :mod:`~nas.search.queue`: exact trial counts (slots), heartbeats, stale trials, a lock.
* :mod:`~nas.search.driver`: studies, samplers, workers.
* :mod:`~nas.search.optuna_private`: the Optuna internals these rely on, each behind one
  function (a test names any an Optuna upgrade removes).
* :mod:`~nas.search.display`: what a running search shows (the live panel, the per-trial
  lines) and its tally of the studies.
* :mod:`~nas.search.trials`, ``plots``, ``finalize``: reading studies back, plots, top-k.

Layout in the storage (see ``.notes/search_design.md``): study ``NAME`` (the searched
genomes), ``NAME:baselines`` (the seed baselines that fit), ``NAME:prune`` (companion trials a
training proxy reports to), and ``NAME:lock`` while a driver tops up the queue.
"""
