"""raygex: distributed hyperparameter search for graph convolutional networks over gene expression."""

from raygex.errors import RaygexError
from raygex.search.tune_compat.moved_modules import resolve_moved_modules
from raygex.version import __version__

resolve_moved_modules()  # experiments saved before a module moved still resume

__all__ = ["RaygexError", "__version__", "load_model"]


def load_model(path, device: str | None = "cpu"):
    """Load an exported model (``<storage>/<name>/models/<task>.pt``) on ``device`` (``cpu``, ``cuda``, ``auto``);
    see :class:`raygex.export.predict.LoadedModel`."""
    from raygex.export.predict import load_model as _load_model

    return _load_model(path, device)
