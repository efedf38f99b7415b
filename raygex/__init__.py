"""raygex: distributed hyperparameter search for graph convolutional networks over gene expression."""

from raygex.errors import RaygexError

__version__ = "0.1.0"
__all__ = ["RaygexError", "__version__"]
