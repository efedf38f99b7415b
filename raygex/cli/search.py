"""`raygex search`, `raygex resume`, `raygex status`: run, continue and inspect sweeps."""

from __future__ import annotations

import json

import click

from raygex.config import load_config


@click.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=str))
@click.option("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray).")
@click.option("--storage", help="Where experiments live: a folder, or an s3:// or gs:// URI (default: the config's "
              "storage).")
@click.option("--num-samples", type=int, help="Trials per task (overrides search.num_samples).")
@click.option("--name", help="Experiment name (default: the config's name).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value (repeatable).")
@click.option("--resume", is_flag=True, help="Continue the experiment of the same name if it exists. CONFIG (with "
              "--set) may differ from the config the experiment was started with only in where and how fast it "
              "runs (storage, search.max_concurrent*, search.studies_at_once, resources, wandb, ...); any other "
              "change is refused.")
@click.option("-v", "--verbose", is_flag=True, help="Also show Ray's, Tune's and warnings' messages (always in "
              "<experiment>/logs/driver.log).")
def search(config_path, address, storage, num_samples, name, overrides, resume, verbose):
    """Search models and graphs for every task of CONFIG with Ray Tune + Optuna.

    \b
    Examples:
      raygex search configs/demo.yaml
      raygex search configs/demo.yaml --num-samples 8 --set train.max_epochs=10
      raygex search configs/brca-pam50-gpu.yaml --address auto --storage /mnt/raygex/results
      raygex search configs/demo.yaml --storage s3://bucket/results
      raygex search configs/demo.yaml --resume --set search.max_concurrent=4

    A new config for a dataset of your own: raygex config new DATASET --graph NAME=PATH -o CONFIG.
    """
    from raygex.api import run_experiment

    overrides = list(overrides) + ([f"search.num_samples={num_samples}"] if num_samples is not None else [])
    config = load_config(config_path, overrides)  # --set values are YAML, as in the file
    run_experiment(config, address=address, storage=storage, name=name, resume=resume, verbose=verbose)


@click.command()
@click.argument("experiment", type=click.Path(path_type=str))
@click.option("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray).")
@click.option("-v", "--verbose", is_flag=True, help="Also show Ray's, Tune's and warnings' messages.")
def resume(experiment, address, verbose):
    """Finish an interrupted sweep: finished trials kept, unfinished ones resumed, none run twice.

    \b
    Example:
      raygex resume results/demo
    """
    from raygex.api import resume_experiment

    resume_experiment(experiment, address=address, verbose=verbose)


@click.command()
@click.argument("experiment", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (per task: counts, winner, selection, trials, verdicts).")
@click.option("--show-test", is_flag=True,
              help="Show every trial's test metrics (by default only the winner's: never pick on test).")
def status(experiment, as_json, show_test):
    """Print the leaderboards of a finished or running sweep.

    \b
    Example:
      raygex status results/demo --json
    """
    from raygex.analysis.status import experiment_status, verdict_line

    summary, tables = experiment_status(experiment, show_test=show_test)
    if as_json:
        click.echo(json.dumps(summary, default=str))
        return
    for task, table in tables.items():
        counts = summary["tasks"][task]["counts"]
        click.echo(f"== {task}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " ==")
        click.echo(table)
        if summary["tasks"][task]["selection"]["reason"]:
            click.echo(f"  {summary['tasks'][task]['selection']['reason']} (rule {summary['tasks'][task]['selection']['rule']})")
        for verdict in summary["tasks"][task]["verdicts"]:
            click.echo(verdict_line(verdict))
