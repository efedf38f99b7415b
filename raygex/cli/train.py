"""`raygex train`: one trial from a config, in this process, for debugging a config before a sweep."""

from __future__ import annotations

import json

import click

from raygex.config import apply_overrides, load_config
from raygex.errors import ConfigError


def _hyperparameters(values: tuple[str, ...]) -> dict:
    hparams: dict = {}
    apply_overrides(hparams, list(values))
    if isinstance(hparams.get("graph"), bool):  # `-p graph=true`: YAML reads the name as a boolean
        hparams["graph"] = str(hparams["graph"]).lower()
    return hparams


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
    from raygex.experiment import load_dataset, load_graphs, trial_data
    from raygex.trial import run_trial

    config = load_config(config_path, list(overrides))
    task_name = task_name or config.tasks[0].name
    config.task(task_name)
    hparams = {"max_epochs": config.train.max_epochs, "patience": config.train.patience,
               "batch_size": config.train.batch_size, "metric": config.train.metric,
               **_hyperparameters(params)}
    family = hparams.setdefault("model", "gcn")
    graph = hparams.get("graph")
    if family == "gcn" and graph is None:
        if not config.graphs:
            raise ConfigError("a GCN trial needs a graph: add one under 'graphs' or pass -p model=mlp")
        graph = hparams["graph"] = next(iter(config.graphs))
    if family != "gcn":
        graph = hparams["graph"] = None
    seed = config.split.seeds[0] if split_seed is None else split_seed
    dataset = load_dataset(config)
    graphs = load_graphs(config, seed=seed)
    data = trial_data(config, task_name, dataset, graphs, seed=seed, graph=graph)

    def show(row, _state):
        if not as_json:
            click.echo(f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.4f}  valid loss "
                       f"{row['valid_loss']:.4f}  valid auc {row['valid_auc']:.4f}  valid acc "
                       f"{row['valid_accuracy']:.3f}")

    result = run_trial(hparams, data, show, device=device)
    summary = {"task": task_name, "config": result.config, "best_epoch": result.best_epoch,
               "epochs_run": result.epochs_run, "valid": result.best_valid, "test": result.test,
               "seconds": round(result.seconds, 2), "device": result.device,
               "samples": {"train": len(data.y_train), "valid": len(data.y_valid), "test": len(data.y_test)},
               "genes": len(data.genes), "graph_coverage": getattr(data.graph, "coverage", None)}
    if export_path:
        from raygex.export import write_model

        exported = write_model(config, task_name, result.model.cpu(), data, {**result.config, "graph": graph},
                               export_path, split_seed=seed)
        summary["model"], summary["pt2"] = exported["model"], exported["pt2"]
    if as_json:
        click.echo(json.dumps(summary, default=str))
        return
    click.echo(f"best epoch {result.best_epoch} of {result.epochs_run} ({result.seconds:.1f} s on {result.device})")
    click.echo("valid: " + "  ".join(f"{k} {v:.4f}" for k, v in result.best_valid.items()))
    click.echo("test:  " + "  ".join(f"{k} {v:.4f}" for k, v in result.test.items()))
    if export_path:
        click.echo(f"model: {summary['model']}" + (f" (and {summary['pt2']})" if summary["pt2"] else ""))
