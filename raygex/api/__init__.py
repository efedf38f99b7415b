"""raygex's Python API: run a search, resume it, open its results. The ``raygex`` CLI is a thin layer over it.

Progress and results are ``logging`` records of the ``raygex`` logger (``logging.basicConfig(level="INFO")``
shows them); Ray's, Tune's and warnings' messages go to the experiment's ``logs/driver.log``.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Mapping

from raygex.api.experiment import Experiment
from raygex.config import ExperimentConfig, load_config
from raygex.config.config_file import read_config_file
from raygex.config.mapping import config_from_mapping
from raygex.errors import ConfigError
from raygex.experiment.layout import ExperimentLayout

__all__ = ["Experiment", "as_config", "open_experiment", "resume_experiment", "run_experiment"]

ConfigLike = str | os.PathLike | Mapping[str, Any] | ExperimentConfig


def _set_key(raw: dict, key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"overrides: {key}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def as_config(config: ConfigLike, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """A validated :class:`~raygex.config.ExperimentConfig` from a YAML path, a mapping (the YAML's content as a
    dict) or a config, with ``overrides`` (``{"train.max_epochs": 10}``: dotted keys, Python values) applied.

    Examples:
        >>> cfg = as_config({"name": "x", "data": {"expression": "e.parquet"},
        ...                  "tasks": [{"name": "t", "kind": "classify", "label": "y"}]},
        ...                 overrides={"search.num_samples": 8})
        >>> cfg.search.num_samples
        8
    """
    overrides = dict(overrides or {})
    if isinstance(config, ExperimentConfig):
        raw, source = config.model_dump(mode="json", exclude_unset=True), "config"
    elif isinstance(config, Mapping):
        raw, source = copy.deepcopy(dict(config)), "config"
    elif isinstance(config, (str, os.PathLike)):
        if not overrides:
            return load_config(config)
        raw, source = read_config_file(config), str(config)
    else:
        raise ConfigError(f"a config is a YAML path, a dict or an ExperimentConfig, not {type(config).__name__}")
    if not isinstance(raw, dict):
        raise ConfigError("a config must be a mapping of keys to values", path=source)
    for key, value in overrides.items():
        _set_key(raw, key, value)
    return config_from_mapping(raw, source)


def run_experiment(config: ConfigLike, *, storage: str | os.PathLike | None = None, name: str | None = None,
                   overrides: Mapping[str, Any] | None = None, address: str | None = None,
                   resume: bool = False, verbose: bool = False) -> Experiment:
    """Search every study of ``config`` (a YAML path, a dict or an ExperimentConfig; ``overrides`` as in
    :func:`as_config`): sweep, evaluation over split seeds, graph swap, verdict, export and report. Returns the
    :class:`Experiment`. ``storage`` (a folder or an ``s3://`` / ``gs://`` URI) and ``name`` place it (default:
    the config's); ``address`` is a Ray cluster (default: ``RAY_ADDRESS``, else a local Ray); ``resume``
    continues an experiment of the same name. Exported as ``raygex.run``.

    Examples:
        >>> exp = raygex.run("configs/demo.yaml", storage="results")  # doctest: +SKIP
        >>> exp.verdicts("subtype")[["graph", "control", "verdict"]]  # doctest: +SKIP
    """
    from raygex.pipeline import run_search

    experiment = as_config(config, overrides)
    where = ExperimentLayout.for_config(experiment, None if storage is None else str(storage), name).where
    run_search(experiment, address=address, storage=None if storage is None else str(storage), name=name,
               resume=resume, verbose=verbose)
    return Experiment(where)


def resume_experiment(experiment: str | os.PathLike, *, address: str | None = None,
                      verbose: bool = False) -> Experiment:
    """Finish an interrupted experiment (its folder or URI): finished trials and stages kept, only what is
    missing runs. Exported as ``raygex.resume``."""
    from raygex.pipeline import resume_experiment as resume_stages

    layout = ExperimentLayout.open(experiment)
    resume_stages(experiment, address=address, verbose=verbose)
    return Experiment(layout.where)


def open_experiment(experiment: str | os.PathLike) -> Experiment:
    """An experiment's results, from its folder or URI (``<storage>/<name>``). Exported as ``raygex.open``.

    Examples:
        >>> exp = raygex.open("results/demo")  # doctest: +SKIP
        >>> exp.studies  # doctest: +SKIP
        ['subtype', 'sgi_G0001']
    """
    return Experiment(experiment)
