"""`raygex graph ...`: import gene graphs, describe them, build control graphs, check dataset coverage.

The heavy lifting lives in :mod:`raygex.graphs`; these commands only parse options and print reports.
Errors are :class:`~raygex.errors.RaygexError` and become one line and exit code 2 in :func:`raygex.cli.main`.
"""

from __future__ import annotations

import json

import click
import numpy as np

from raygex.graphs.controls import GRAPH_CONTROLS


def _echo_report(report: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    width = max(len(k) for k in report)
    for key, value in report.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        click.echo(f"{key:<{width}}  {value}")


def _weight_column(value: str | None):
    """A header name, or a 1-based column number like ``cut -f`` (turned into a 0-based index)."""
    if value is None or not value.isdigit():
        return value
    return int(value) - 1


@click.group()
def graph() -> None:
    """Import, describe and compare gene interaction graphs."""


@graph.command("import")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="Output graph .parquet path.")
@click.option("--name", required=True, help="Graph name used in results (e.g. genemania).")
@click.option("--id-type", type=click.Choice(["symbol", "entrez", "ensembl"]), default="symbol", show_default=True,
              help="What the node ids in INPUT are.")
@click.option("--map", "id_map", type=click.Path(dir_okay=False, path_type=str),
              help="Mapping table (symbol + Entrez/Ensembl id columns) for --id-type entrez/ensembl "
              "[default: raygex's shipped HGNC table].")
@click.option("--symbol-map", type=click.Path(dir_okay=False, path_type=str),
              help="HGNC table (Approved symbol, Previous symbols) to rename outdated symbols.")
@click.option("--weight-column", help="Edge-list weight column: header name or 1-based column number.")
@click.option("--format", "fmt", type=click.Choice(["auto", "adjlist", "edgelist", "tsv", "csv"]), default="auto",
              show_default=True, help="Input format; auto decides from the file name.")
@click.option("--header/--no-header", default=None, help="Edge list has a header row (default: detect).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_cmd(input_path, output, name, id_type, id_map, symbol_map, weight_column, fmt, header, as_json):
    """Convert an adjacency list or edge list to raygex's canonical graph (undirected, symbols).

    \b
    Examples:
      raygex graph import genemania.adjlist.gz --name genemania -o genemania.parquet
      raygex graph import string.tsv.gz --name string --id-type entrez --weight-column score -o string.parquet
    """
    from raygex.cli.data import check_output
    from raygex.graphs.io import import_graph
    from raygex.graphs.store import write_graph

    check_output(output)
    graph_obj, report = import_graph(input_path, name, id_type=id_type, id_map=id_map, symbol_map=symbol_map,
                                     weight_column=_weight_column(weight_column), fmt=fmt, header=header)
    write_graph(graph_obj, output)
    _echo_report({"graph": name, "output": output, **report}, as_json)


@graph.command("info")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info_cmd(path, as_json):
    """Describe a graph: name, nodes, edges, degree min/median/max, provenance.

    \b
    Example:
      raygex graph info genemania.parquet
    """
    from raygex.graphs.store import read_graph

    g = read_graph(path)
    degrees = g.degrees().to_numpy()
    summary = {"name": g.name, "nodes": g.n_nodes, "edges": g.n_edges, "isolated_nodes": int(len(g.isolated)),
               "weighted": g.weight is not None,
               "degree_min": int(degrees.min()) if len(degrees) else 0,
               "degree_median": float(np.median(degrees)) if len(degrees) else 0.0,
               "degree_max": int(degrees.max()) if len(degrees) else 0}
    if as_json:
        _echo_report({**summary, "provenance": g.provenance}, True)
        return
    for key, value in g.provenance.items():
        if key not in ("n_edges", "n_nodes"):
            summary[f"provenance.{key}"] = json.dumps(value, default=str) if isinstance(value, (dict, list)) else value
    _echo_report(summary, False)


@graph.command("control")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=str))
@click.option("--kind", required=True, type=click.Choice(GRAPH_CONTROLS),
              help="random: degree-preserving rewiring; empty: no edges, same nodes.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="Output graph .parquet path.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (random control).")
@click.option("--swaps-per-edge", type=float, default=10.0, show_default=True,
              help="Accepted double-edge swaps per edge (random control).")
def control_cmd(input_path, kind, output, seed, swaps_per_edge):
    """Build a control graph from an imported graph (named <name>:<kind>).

    The coexpression control is computed from a split's training rows, not from a graph: a config asks for it with
    `controls: [coexpression]` and the search builds it per split seed.

    \b
    Examples:
      raygex graph control genemania.parquet --kind random --seed 1 -o genemania-random1.parquet
      raygex graph control genemania.parquet --kind empty -o genemania-empty.parquet
    """
    from raygex.cli.data import check_output
    from raygex.graphs.controls import build_control
    from raygex.graphs.store import read_graph, write_graph

    check_output(output)
    control = build_control(kind, read_graph(input_path), seed=seed, swaps_per_edge=swaps_per_edge)
    write_graph(control, output)
    report = {"graph": control.name, "output": output, "nodes": control.n_nodes, "edges": control.n_edges}
    report.update({k: control.provenance[k] for k in ("swaps_accepted", "swaps_attempted")
                   if k in control.provenance})
    _echo_report(report, False)


@graph.command("coverage")
@click.argument("graph_path", metavar="GRAPH", type=click.Path(dir_okay=False, path_type=str))
@click.argument("dataset_path", metavar="DATASET", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the coverage as JSON.")
def coverage_cmd(graph_path, dataset_path, as_json):
    """How much of a graph a canonical expression dataset covers (genes in graph, edges kept).

    \b
    Example:
      raygex graph coverage genemania.parquet tissues.parquet
    """
    from raygex.data.canonical import read_genes
    from raygex.graphs.align import align_graph
    from raygex.graphs.store import read_graph

    g = read_graph(graph_path)
    aligned = align_graph(g, read_genes(dataset_path), dataset=dataset_path)
    _echo_report({"graph": g.name, "dataset": dataset_path, **aligned.coverage}, as_json)
