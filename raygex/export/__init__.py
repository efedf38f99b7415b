"""Export: the winner (or any trial) as TorchScript with its gene order and provenance
(:mod:`~raygex.export.winner`, :mod:`~raygex.export.archive`), and running exported models on new samples
(:mod:`~raygex.export.predict`)."""
