"""`raygex export` and `raygex predict`: model files out of a sweep, predictions out of a model file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from raygex.files.storage import check_scheme, is_uri
from raygex.report.wandb_report import build_wandb_report


@click.command()
@click.argument("experiment", type=click.Path(path_type=str))
@click.option("--task", help="Only this task (default: every task with a finished sweep).")
@click.option("--trial", "trial_id", help="Export this trial id instead of the winner (needs --task).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=str),
              help="Output folder, or an s3:// / gs:// URI (default: EXPERIMENT/models).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per task.")
def export(experiment, task, trial_id, out_dir, as_json):
    """Write each task's winner as DIR/<task>.pt (TorchScript) and .pt2 (torch.export) where possible.

    \b
    Examples:
      raygex export results/demo
      raygex export results/demo --task subtype --trial 3f2a1b7c -o models/
      raygex export s3://bucket/results/demo -o s3://bucket/models
    """
    from raygex.cli.data import check_output
    from raygex.pipeline import export_experiment

    if out_dir is not None and is_uri(out_dir):
        check_scheme(out_dir)  # before anything is read: an unsupported scheme is one line
    elif out_dir is not None:
        out_dir = Path(out_dir)
        check_output(out_dir, "-o/--out", kind="folder")
    for summary in export_experiment(experiment, task=task, trial_id=trial_id, out_dir=out_dir):
        if as_json:
            click.echo(json.dumps(summary, default=str))
            continue
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in summary["test"].items() if k in ("auc", "accuracy"))
        click.echo(f"{summary['task']}: trial {summary['trial_id']} → {summary['model']} ({summary['weights']}; "
                   f"test {metrics or 'n/a'})")
        click.echo(f"  .pt2: {summary['pt2'] or 'not written: ' + str(summary['pt2_error'])}")


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=str))
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=str))
@click.option("-o", "--out", "output", type=click.Path(path_type=str), required=True,
              help="Output CSV (a path, or an s3:// / gs:// URI).")
@click.option("--allow-missing", type=click.Choice(["mean", "zero"]),
              help="Fill genes the input lacks with their training mean or 0 (default: missing genes are an error).")
@click.option("--layout", type=click.Choice(["auto", "genes-by-samples", "samples-by-genes"]), default="auto",
              show_default=True, help="Orientation of a text matrix.")
@click.option("--batch-size", default=4096, show_default=True, help="Samples per batch (streaming).")
@click.option("--address", help="Read a Parquet dataset with Ray Data on this cluster ('auto' for RAY_ADDRESS).")
@click.option("--device", default="cpu", show_default=True,
              help="Where the model runs: cpu, cuda (cuda:N) or auto (CUDA when present).")
@click.option("--labels", "labels", metavar="COL",
              help="Also score the predictions against this label column (table column, .h5ad .obs column or "
                   "dataset label): AUC, accuracy, samples scored and left out.")
def predict(model_path, input_path, output, allow_missing, layout, batch_size, address, device, labels):
    """Predict every sample of INPUT (any format `raygex data import` reads) with MODEL; write a CSV.

    The CSV holds sample_id, the predicted class and one probability column per class. Columns that are not
    genes of the model (labels, clinical columns, other genes) are ignored and counted. An .h5ad is read from the
    matrix the model was trained on (.X, a layer or .raw).

    \b
    Examples:
      raygex predict results/demo/models/subtype.pt new_samples.tsv -o predictions.csv
      raygex predict model.pt held_out.tsv.gz -o held_out.csv --labels pam50
      raygex predict model.pt cells.h5ad -o cells.csv --allow-missing mean
      raygex predict s3://bucket/results/demo/models/subtype.pt new.tsv -o s3://bucket/predictions.csv
    """
    from raygex.cli.data import check_output
    from raygex.export.predict import predict_file
    from raygex.export.scoring import score_lines

    if not is_uri(output):
        output = Path(output)
        check_output(output, "-o/--out")
    report = predict_file(model_path, input_path, output, allow_missing=allow_missing, layout=layout,
                          batch_size=batch_size, address=address, device=device, labels=labels)
    click.echo(f"{report['samples']} samples → {output} (classes: {', '.join(report['classes'])})")
    if report["ignored_line"]:
        click.echo(report["ignored_line"])
    for line in score_lines(report["scores"], report["metric"]) if report["scores"] else []:
        click.echo(line)


@click.command()
@click.argument("experiment", type=click.Path(path_type=str))
@click.option("--wandb-report", is_flag=True, help="Also build a W&B Report (needs a reachable W&B server).")
def report(experiment, wandb_report):
    """Write EXPERIMENT/report.html: leaderboards, graphs vs baselines and controls, curves, models.

    \b
    Example:
      raygex report results/demo
    """
    from raygex.pipeline import report_experiment

    click.echo(f"report: {report_experiment(experiment)}")
    if wandb_report:
        click.echo(f"W&B report: {build_wandb_report(experiment)}")
