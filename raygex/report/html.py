"""`raygex report`: one self-contained HTML page per experiment (figures inlined), readable without a server."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from pathlib import Path

import pandas as pd

from raygex.files.fileio import atomic_path
from raygex.experiment.layout import ExperimentLayout
from raygex.config import metric_name
from raygex.report.figures import gains_table, size_figure, stopped_by_scheduler, task_figures
from raygex.report.statistics import choice_means, size_table, winner_test

REPORT_FILE = "report.html"
TOP_ROWS = 15
CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#1a202c}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #cbd5e0;padding:2px 6px}
th{background:#edf2f7}tr.winner{background:#f0fff4}img{max-width:100%;border:1px solid #e2e8f0;margin:.3em 0}
section.task{border-top:3px solid #2b6cb0;margin-top:2em}code{background:#edf2f7;padding:0 3px}
.note{color:#4a5568;font-size:13px}
"""


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, winner_rows=()) -> str:
    def cell(value) -> str:
        if value is None or (isinstance(value, float) and value != value):
            return "–"
        if isinstance(value, float):
            return f"{value:.4g}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cls = ' class="winner"' if i in winner_rows else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _leaderboard_html(board: pd.DataFrame, config) -> str:
    """The top of the leaderboard, the winner's row marked; test metrics blanked except the winner's."""
    from raygex.analysis.leaderboard import WINNER_COLUMN, hide_test, selection_reason, top_rows
    from raygex.config import selection_column, selection_mode

    reason = selection_reason(board, selection_column(config), selection_mode(config), config.search.select)
    shown = top_rows(hide_test(board), TOP_ROWS).copy()
    winners = [i for i, w in enumerate(shown.get(WINNER_COLUMN, pd.Series(False, index=shown.index))) if bool(w)]
    shown["asha_stopped"] = [stopped_by_scheduler(row, config) for _, row in shown.iterrows()]
    columns = ["rank", "trial_id", *[c for c in shown.columns if c.startswith("config/")],
               *[c for c in shown.columns if c.startswith(("best_valid_", "best_test_"))],
               "epoch", "best_epoch", "asha_stopped", "n_params", "time_total_s"]
    shown = shown[[c for c in columns if c in shown]]
    shown.columns = [c.removeprefix("config/") for c in shown.columns]
    return (f'<p class="selection">{html.escape(reason)} (rule <code>{html.escape(config.search.select)}</code>; '
            "test metrics are shown for the winner only)</p>" + _table(shown, winner_rows=winners))


def _model_html(layout: ExperimentLayout, study: str) -> str:
    path = layout.model_path(study)
    if not path.exists():
        return '<p class="note">No exported model (run <code>raygex export</code>).</p>'
    from raygex.export.predict import load_model

    meta = load_model(path).metadata
    facts = {"file": str(path), "trial": meta.get("trial_id"), "model": meta["hyperparameters"].get("model"),
             "graph": (meta.get("graph") or {}).get("name", "none"), "genes": len(meta["genes"]),
             "classes": ", ".join(meta["classes"]), "weights": meta.get("weights"),
             "test metrics": json.dumps({k: round(v, 4) for k, v in meta["metrics"]["test"].items()}),
             "valid metrics": json.dumps({k: round(v, 4) for k, v in meta["metrics"]["valid"].items()}),
             "dataset sha256": meta["dataset"]["sha256"][:16] + "…", "exported": meta["exported_at"],
             "versions": json.dumps(meta["versions"])}
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    return f"<table>{rows}</table>"


def _headline_html(layout: ExperimentLayout, study: str) -> str:
    """The study's honest summary: the validation-chosen winner over seeds, and each graph vs its control."""
    config = layout.config
    parts = ['<div class="headline">']
    winner = winner_test(layout, study)
    if winner is not None:
        what = f"{winner['model']}" + (f" on graph {winner['graph']}" if winner["graph"] else "")
        spread = (f" ± {winner['test_sd']:.3f} (95% CI [{winner['test_low']:.3f}, {winner['test_high']:.3f}])"
                  if winner["seeds"] > 1 else " (one split seed)")
        parts.append(f"<p><b>Winner</b> (chosen on validation): {html.escape(what)}, trial {winner['trial_id']}; "
                     f"test {winner['metric']} re-evaluated over {winner['seeds']} split seed(s): "
                     f"{winner['test_mean']:.3f}{spread}.</p>")
    task_name = config.task(study).name
    if task_name in config.reference:
        ours = choice_means(layout, study)
        published = ", ".join(f"{family} {value:.3f}" + (f" (ours {ours[family]:.3f})" if family in ours else "")
                              for family, value in config.reference[task_name].items())
        parts.append(f"<p><b>Published reference</b> (test {winner['metric'] if winner else 'metric'}; ours: each "
                     f"family's validation-chosen configuration over split seeds): "
                     f"{html.escape(published)}.</p>")
    return "".join(parts) + "</div>"


def _verdicts_html(layout: ExperimentLayout, study: str) -> str:
    """The study's verdicts, first thing in its section: one sentence and one table row per graph and control."""
    from raygex.analysis.verdict import sentence

    table = layout.read_verdicts(study)
    if table is None:
        return '<p class="note">No graph verdict yet (the swap and verdict stages have not run).</p>'
    if table.empty:
        return '<p class="note">No graph verdict: no GCN trial finished, or no control is configured.</p>'
    size = layout.config.train_size(study)
    lines = "".join(f"<li>{html.escape(sentence(row, size if isinstance(size, int) else None))}</li>"
                    for _, row in table.iterrows())
    shown = table.drop(columns=["reason"]) if table["reason"].isna().all() else table
    return ('<div class="verdicts"><p><b>Does the graph help?</b> The best GCN configuration (chosen on validation) '
            'retrained with each graph and control swapped in, on every split seed, scored on the fixed test set; '
            'hierarchical paired bootstrap over seeds and test samples, Holm-adjusted across the study.</p>'
            f"<ul>{lines}</ul>{_table(shown)}</div>")


def _sizes_html(layout: ExperimentLayout, task) -> str:
    """For a task searched at several training-set sizes: metric against size, with intervals."""
    figure = size_figure(layout, task.name, layout.size_figure_path(task.name))
    if figure is None:
        return ""
    table = size_table(layout, task.name).sort_values(["choice", "train"])
    return (f'<section class="task sizes" id="sizes-{html.escape(task.name)}"><h2>Task {html.escape(task.name)}: '
            f'metric against training-set size</h2><h3 class="sizes">Low-data protocol</h3>'
            + _image(figure, f"{task.name}: test metric against training-set size") + _table(table) + "</section>")


def _figures(layout: ExperimentLayout, study: str) -> dict[str, Path]:
    """The study's figures as the summary stage recorded them (drawn now when that stage has not run)."""
    summary = layout.read_summary(study)
    if summary is not None and all(Path(p).is_file() for p in summary.get("figures", {}).values()):
        return {name: Path(p) for name, p in summary["figures"].items()}
    return task_figures(layout, study)


def _task_html(layout: ExperimentLayout, task: str) -> str:
    config = layout.config
    board = layout.read_leaderboard(task)
    if board is None or board.empty:
        return (f'<section class="task" id="task-{html.escape(task)}"><h2>Task {html.escape(task)}</h2>'
                '<p class="note">No finished sweep yet.</p></section>')
    figures = _figures(layout, task)
    metric = metric_name(config)
    gains = gains_table(layout, task)
    parts = [f'<section class="task" id="task-{html.escape(task)}"><h2>Task {html.escape(task)}</h2>',
             f'<p class="note">{len(board)} trials; winner (green) by best validation {metric}, ties to fewer '
             'parameters. Test metrics are those of each trial\'s best-validation epoch, never used to select.</p>',
             _verdicts_html(layout, task), _headline_html(layout, task),
             '<h3 class="leaderboard">Leaderboard</h3>', _leaderboard_html(board, config),
             '<h3 class="choices">Graphs, controls and baselines</h3>']
    if "choices" in figures:
        parts.append(_image(figures["choices"], f"{task}: {metric} per graph choice"))
    if len(gains):
        parts.append(f'<p class="note">Gain of each real graph over its controls on test {metric}, paired by '
                     'split seed:</p>' + _table(gains))
    parts.append('<h3 class="hyperparameters">Hyperparameters</h3>')
    for name in ("hyperparameters", "importances"):
        if name in figures:
            parts.append(_image(figures[name], f"{task}: {name}"))
    parts.append('<h3 class="curves">Learning curves</h3>')
    if "curves" in figures:
        parts.append(_image(figures["curves"], f"{task}: learning curves"))
    parts.append('<h3 class="model">Exported model</h3>' + _model_html(layout, task) + "</section>")
    return "\n".join(parts)


def write_report(layout: ExperimentLayout) -> Path:
    """Build ``report.html`` from the leaderboards, seed runs, figures, trial histories and models."""
    config = layout.config
    tasks = "".join(f'<li><a href="#task-{html.escape(s.name)}">{html.escape(s.name)}</a> ({s.task.kind}, '
                    f'train {s.train:g})</li>' for s in config.studies())
    body = "\n".join([_task_html(layout, s.name) for s in config.studies()]
                      + [_sizes_html(layout, t) for t in config.tasks])
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>raygex report: {html.escape(config.name)}"
            f"</title><style>{CSS}</style></head><body><h1>raygex report: {html.escape(config.name)}</h1>"
            f"<p class='note'>{html.escape(str(layout.root))} · generated "
            f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} · graphs: "
            f"{html.escape(', '.join(config.graph_choices()) or 'none')} · split seeds {config.split.seeds}</p>"
            f"<ul>{tasks}</ul>{body}</body></html>")
    path = layout.report_path
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return path
