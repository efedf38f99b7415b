"""raygex: distributed hyperparameter search for graph convolutional networks over gene expression."""

from raygex.errors import RaygexError
from raygex.version import __version__

__all__ = ["RaygexError", "__version__", "load_model"]


def load_model(path, device: str | None = "cpu"):
    """Load an exported model (``<storage>/<name>/models/<task>.pt``) on ``device`` (``cpu``, ``cuda``, ``auto``);
    see :class:`raygex.inference.LoadedModel`."""
    from raygex.inference import load_model as _load_model

    return _load_model(path, device)
