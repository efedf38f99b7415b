"""Model files from a sweep: `raygex export`, and the archive format `raygex.load_model` reads."""

from raygex.export.winner import export_experiment, export_trial, write_model

__all__ = ["export_experiment", "export_trial", "write_model"]
