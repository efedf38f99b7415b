"""Model files from a sweep: the winner (or any trial) as TorchScript, and the archive `raygex.load_model` reads."""

from raygex.export.winner import export_trial, write_model

__all__ = ["export_trial", "write_model"]
