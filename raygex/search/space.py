"""Where the search space lived before it moved to :mod:`raygex.space` (it is config-level, not Ray Tune code).

Tune pickles the searcher, and with it the space's :class:`~raygex.space.DefineByRun`, into each study's
``searcher-state-*.pkl``; sweeps started before the move name this module there, so it stays importable for
their resume.
"""

from raygex.space import DefineByRun  # noqa: F401
