"""A sweep as a pipeline of stages per study over one experiment layout (see :mod:`raygex.pipeline.stages`)."""

from raygex.pipeline.run import export_experiment, plan, report_experiment, resume_experiment, run_search

__all__ = ["export_experiment", "plan", "report_experiment", "resume_experiment", "run_search"]
