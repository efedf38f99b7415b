"""Experiment: the experiment folder (:mod:`~raygex.experiment.layout`), the only code that knows where each
artefact of a sweep lives and how it is read and written."""
