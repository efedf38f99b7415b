"""raygex: distributed hyperparameter search for graph convolutional networks over gene expression.

The Python API (the ``raygex`` command line is a thin layer over it):

* :func:`run` searches every study of a config and returns an :class:`Experiment`;
* :func:`resume` finishes an interrupted one; :func:`open` reads one's results;
* :func:`load_model` loads an exported winner to predict on new samples.

Progress is logged to the ``raygex`` logger (``logging.basicConfig(level="INFO")`` shows it).
"""

from raygex.errors import RaygexError
from raygex.search.tune_compat.moved_modules import resolve_moved_modules
from raygex.version import __version__

resolve_moved_modules()  # experiments saved before a module moved still resume

__all__ = ["Experiment", "RaygexError", "__version__", "load_model", "open", "resume", "run"]


def run(config, *, storage=None, name=None, overrides=None, address=None, resume=False, verbose=False):
    """Search every study of ``config`` (a YAML path, a dict or an ``ExperimentConfig``) and return the
    :class:`Experiment`: the sweep, the evaluation over split seeds, the graph swap, the verdicts, the exported
    winners and the report. ``overrides`` take dotted keys (``{"search.num_samples": 8}``); ``storage`` is a
    folder or an ``s3://`` / ``gs://`` URI; ``address`` a Ray cluster (default: a local Ray).

    Examples:
        >>> exp = raygex.run("configs/demo.yaml", overrides={"search.num_samples": 8})  # doctest: +SKIP
        >>> exp.winner("subtype")["hyperparameters"]["model"]  # doctest: +SKIP
        'gcn'
    """
    from raygex.api import run_experiment

    return run_experiment(config, storage=storage, name=name, overrides=overrides, address=address,
                          resume=resume, verbose=verbose)


def resume(experiment, *, address=None, verbose=False):
    """Finish an interrupted experiment (its folder or URI); returns its :class:`Experiment`.

    Examples:
        >>> exp = raygex.resume("results/demo")  # doctest: +SKIP
    """
    from raygex.api import resume_experiment

    return resume_experiment(experiment, address=address, verbose=verbose)


def open(experiment):  # noqa: A001 - raygex.open, as zarr.open / xarray.open_dataset: the package's reader
    """An experiment's results (its folder or URI) as an :class:`Experiment`.

    Examples:
        >>> exp = raygex.open("results/demo")  # doctest: +SKIP
        >>> exp.leaderboard("subtype").head(3)  # doctest: +SKIP
        >>> exp.verdicts("subtype")  # doctest: +SKIP
    """
    from raygex.api import open_experiment

    return open_experiment(experiment)


def load_model(path, device: str | None = "cpu"):
    """Load an exported model (``<storage>/<name>/models/<task>.pt``) on ``device`` (``cpu``, ``cuda``, ``auto``);
    see :class:`raygex.export.predict.LoadedModel`.

    Examples:
        >>> model = raygex.load_model("results/demo/models/subtype.pt")  # doctest: +SKIP
        >>> model.predict(new_samples)  # doctest: +SKIP
    """
    from raygex.export.predict import load_model as _load_model

    return _load_model(path, device)


def __getattr__(name):
    if name == "Experiment":
        from raygex.api.experiment import Experiment

        return Experiment
    raise AttributeError(f"module 'raygex' has no attribute {name!r}")
