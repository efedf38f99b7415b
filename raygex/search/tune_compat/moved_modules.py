"""Module paths that experiments saved by older raygex name: Ray Tune pickles the searcher (and with it the search
space's ``DefineByRun``), the concurrency limiter and the run's callbacks into a study's ``tuner.pkl`` and
``searcher-state-*.pkl`` by module path, so a folder saved before a module moved names its old path.

:func:`resolve_moved_modules` (run when ``raygex`` is imported) makes each old path import the module that lives at
the new one, so such folders still resume (``tests/search/test_saved_before_rooms.py`` resumes one).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

# old module path -> where it lives now (add a line whenever a module that Tune may pickle moves)
MOVED = {
    "raygex.space": "raygex.search.space",
    "raygex.layout": "raygex.experiment.layout",
    "raygex.schema": "raygex.files.names",
    "raygex.fileio": "raygex.files.fileio",
    "raygex.storage": "raygex.files.storage",
    "raygex.lock": "raygex.files.lock",
    "raygex.ray_session": "raygex.runtime.ray_session",
    "raygex.console": "raygex.runtime.console",
    "raygex.wandb_guard": "raygex.runtime.wandb_guard",
    "raygex.allocator": "raygex.runtime.allocator",
    "raygex.gpu_share": "raygex.runtime.gpu_share",
    "raygex.tune_state": "raygex.search.tune_compat.tune_files",
    "raygex.search.saved_state": "raygex.search.tune_compat.saved_state",
    "raygex.search.checkpoint_repair": "raygex.search.tune_compat.checkpoint_repair",
    "raygex.search.optuna_repair": "raygex.search.tune_compat.optuna_repair",
    "raygex.search.optuna_store": "raygex.search.tune_compat.optuna_store",
    "raygex.search.searcher": "raygex.search.tune_compat.optuna_searcher",
    "raygex.tasks": "raygex.data.tasks",
    "raygex.splits": "raygex.data.splits",
    "raygex.fetch": "raygex.data.fetch",
    "raygex.prepare": "raygex.data.prepare",
    "raygex.optimiser": "raygex.training.optimiser",
    "raygex.choices": "raygex.analysis.choices",
    "raygex.leaderboard": "raygex.analysis.leaderboard",
    "raygex.evaluation": "raygex.analysis.evaluation",
    "raygex.swap": "raygex.analysis.swap",
    "raygex.verdict": "raygex.analysis.verdict",
    "raygex.status": "raygex.analysis.status",
    "raygex.inference": "raygex.export.predict",
    "raygex.predict": "raygex.export.predict",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path and loads it as the module at its new path (one module object under two names)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):  # the module at the new path is already executed
        pass


def resolve_moved_modules() -> None:
    """Let every old path in :data:`MOVED` import its new module (once per process)."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
