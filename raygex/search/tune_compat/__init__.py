"""The one seam to Ray Tune's and Optuna's internals: every private name, saved-state file format or pickled
layout of Ray or Optuna that raygex reads or rewrites lives in this package, and nowhere else
(``tests/test_architecture.py`` fails on one elsewhere). ``tests/tune_compat/`` holds the contract tests that
check each assumption against the installed Ray and Optuna; :mod:`~raygex.search.tune_compat.versions` states the
versions they passed on.
"""
