"""`raygex train`: one trial from a config, in this process, for debugging a config before a sweep."""

from __future__ import annotations

import json

import click

from raygex.config import apply_overrides, load_config
from raygex.errors import ConfigError
from raygex.metrics import MODE as METRICS

TRAIN_SETTINGS = ("max_epochs", "patience", "batch_size", "metric", "seed")
POSITIVE = ("lr", "batch_size", "max_epochs", "patience")  # numbers that must be > 0 (weight_decay: >= 0)
INTEGERS = ("depth", "channels", "embedding", "hidden", "mlp_layers", "batch_size", "max_epochs", "patience", "seed")


def _hyperparameters(values: tuple[str, ...]) -> dict:
    hparams: dict = {}
    for value in values:
        if "=" not in value:
            raise ConfigError(f"-p needs name=value, but got {value!r}")
    apply_overrides(hparams, list(values))
    if isinstance(hparams.get("graph"), bool):  # `-p graph=true`: YAML reads the name as a boolean
        hparams["graph"] = str(hparams["graph"]).lower()
    return hparams


def _check_hyperparameters(hparams: dict) -> None:
    """-p names and values a trial can use: one line naming the bad one, before any data is read."""
    from raygex.models.registry import family_names, known_hyperparameters

    MODEL_FAMILIES = family_names()
    known = sorted(known_hyperparameters() | set(TRAIN_SETTINGS))
    unknown = sorted(set(hparams) - set(known))
    if unknown:
        raise ConfigError(f"-p {unknown[0]}: not a known hyperparameter (known: {known})")
    if hparams["model"] not in MODEL_FAMILIES:
        raise ConfigError(f"-p model must be one of {list(MODEL_FAMILIES)}, but got {hparams['model']!r}")

    if hparams["metric"] not in METRICS:
        raise ConfigError(f"-p metric must be one of {list(METRICS)}, but got {hparams['metric']!r}")
    for name in INTEGERS:
        value = hparams.get(name)
        values = value if name == "hidden" and isinstance(value, list) else [value]  # hidden: a width or widths
        if value is not None and not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ConfigError(f"-p {name} must be an integer, but got {value!r}")
    for name in (*POSITIVE, "weight_decay"):
        value = hparams.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"-p {name} must be a number, but got {value!r}")
        if value < 0 or (value == 0 and name in POSITIVE):
            raise ConfigError(f"-p {name} must be {'>= 0' if name == 'weight_decay' else '> 0'}, but got {value}")


def _check_model_builds(hparams: dict, data) -> None:
    """Build the network once so that a bad -p value (depth=0, channels=abc) is one line, not a traceback."""
    from raygex.training.loop import build_model

    try:
        build_model(hparams, len(data.genes), len(data.classes), data.graph)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"-p: {hparams['model']} model cannot be built from these hyperparameters: "
                          f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


@click.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=str))
@click.option("--task", "task_name", help="Task to train (default: the config's first task).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set data.expression=/data/x.parquet (repeatable).")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Trial hyperparameter: model, graph, depth, channels, embedding, dropout, lr, weight_decay, "
                   "batch_size, max_epochs, seed ... (repeatable).")
@click.option("--split-seed", type=int, help="Split seed (default: the config's first).")
@click.option("--device", help="torch device (default: cuda if torch sees a GPU, else cpu).")
@click.option("--export", "export_path", type=click.Path(path_type=str),
              help="Also write the trained model here (TorchScript .pt, plus .pt2 where torch.export allows).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def train(config_path, task_name, overrides, params, split_seed, device, as_json, export_path):
    """Train one model on one task of CONFIG and print its per-epoch and final metrics.

    \b
    Examples:
      raygex train configs/demo.yaml --task subtype -p model=gcn -p graph=true -p depth=2
      raygex train configs/demo.yaml -p model=lr --set split.train=50
    """
    from raygex.data.prepare import load_dataset, load_graphs, trial_data
    from raygex.training.loop import run_trial

    config = load_config(config_path, list(overrides))
    if export_path:
        from raygex.cli.data import check_output

        check_output(export_path, "--export")
    task_name = task_name or config.tasks[0].name
    config.task(task_name)
    hparams = {"max_epochs": config.train.max_epochs, "patience": config.train.patience,
               "batch_size": config.train.batch_size, "metric": config.train.metric,
               **_hyperparameters(params)}
    family = hparams.setdefault("model", "gcn")
    _check_hyperparameters(hparams)
    if device is not None:
        import torch

        try:
            kind = torch.device(device).type
        except RuntimeError:
            raise ConfigError(f"--device must be a torch device such as cpu, cuda or cuda:1, but got {device!r}") \
                from None
        if kind == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: torch sees no CUDA GPU on this machine (use --device cpu)")
    graph = hparams.get("graph")
    if family == "gcn" and graph is None:
        if not config.graphs:
            raise ConfigError("a GCN trial needs a graph: add one under 'graphs' or pass -p model=mlp")
        graph = hparams["graph"] = next(iter(config.graphs))
    if family != "gcn":
        graph = hparams["graph"] = None
    seed = config.split.seeds[0] if split_seed is None else split_seed
    dataset = load_dataset(config)
    graphs = load_graphs(config)
    data = trial_data(config, task_name, dataset, graphs, seed=seed, graph=graph)
    _check_model_builds(hparams, data)

    folds = len(data.folds) if data.folds else None

    def show(row, _state):
        if not as_json:
            se = f" ± {row['valid_auc_se']:.4f}" if "valid_auc_se" in row else ""
            click.echo(f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.4f}  valid loss "
                       f"{row['valid_loss']:.4f}  valid auc {row['valid_auc']:.4f}{se}  valid acc "
                       f"{row['valid_accuracy']:.3f}")

    result = run_trial(hparams, data, show, device=device)
    summary = {"task": task_name, "config": result.config, "best_epoch": result.best_epoch,
               "epochs_run": result.epochs_run, "valid": result.best_valid, "test": result.test,
               "seconds": round(result.seconds, 2), "device": result.device,
               "samples": {"train": len(data.y_train), "valid": len(data.y_valid), "test": len(data.y_test)},
               "folds": folds,
               "genes": len(data.genes), "graph_coverage": getattr(data.graph, "coverage", None)}
    if export_path:
        from raygex.export.winner import fold_ensemble, write_model

        # cross-validated: the fold networks at their best epoch, as one ensemble (as `raygex export` does)
        network = fold_ensemble(result.models, data.standardised()) if folds else result.model.cpu()
        exported = write_model(config, task_name, network, data, {**result.config, "graph": graph},
                               export_path, split_seed=seed,
                               selection={"folds": folds, "validation": result.best_valid, "epochs": result.best_epoch},
                               valid_metrics=result.best_valid if result.history and
                               result.history[-1].get("refitted_on_valid") else None)
        summary["model"], summary["pt2"] = exported["model"], exported["pt2"]
    if as_json:
        click.echo(json.dumps(summary, default=str))
        return
    on = f", mean over {folds} cross-validation folds" if folds else ""
    click.echo(f"best epoch {result.best_epoch} of {result.epochs_run} ({result.seconds:.1f} s on {result.device}"
               f"{on})")
    click.echo("valid: " + "  ".join(f"{k} {v:.4f}" for k, v in result.best_valid.items() if not k.endswith("_se"))
               + ("  (standard errors: " + "  ".join(f"{k[:-3]} {v:.4f}" for k, v in result.best_valid.items()
                                                      if k.endswith("_se")) + ")" if folds else ""))
    click.echo("test:  " + "  ".join(f"{k} {v:.4f}" for k, v in result.test.items()))
    if export_path:
        click.echo(f"model: {summary['model']}" + (f" (and {summary['pt2']})" if summary["pt2"] else ""))
