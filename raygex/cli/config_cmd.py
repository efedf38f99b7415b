"""`raygex config new`: a commented starter config for a dataset (decided and written by
:mod:`raygex.config.starter`, from what :mod:`raygex.data.survey` reads), checked as `raygex search` checks a config
before Ray starts, then written atomically (or printed)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path, PurePosixPath

import click

from raygex.cli.data import check_output
from raygex.errors import ConfigError
from raygex.files.fileio import atomic_path
from raygex.files.remote_files import localize_inputs
from raygex.version import __version__

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def parse_graphs(values: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """``--graph NAME=PATH`` values → {name: (path, the option as given)}; a bad form is one line naming it."""
    from raygex.graphs.controls import RESERVED_GRAPH_NAMES

    graphs: dict[str, tuple[str, str]] = {}
    for value in values:
        option = f"--graph {value}"
        name, sep, path = value.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ConfigError(f"{option}: must be NAME=PATH (a graph name, then its file), e.g. "
                              "--graph genemania=data/genemania.parquet")
        if not NAME.match(name):
            raise ConfigError(f"{option}: the name must be letters, digits, '_', '-' or '.' (it names the GCN's "
                              f"graph choice), but got {name!r}")
        if name in RESERVED_GRAPH_NAMES:
            raise ConfigError(f"{option}: the name {name!r} is reserved for a control (reserved: "
                              f"{', '.join(RESERVED_GRAPH_NAMES)})")
        if name in graphs:
            raise ConfigError(f"{option}: graph name {name!r} given twice")
        graphs[name] = (path, option)
    return graphs


def default_name(dataset: str) -> str:
    """The experiment name from the dataset's file or folder name (``data/pbmc.parquet`` → ``pbmc``)."""
    last = PurePosixPath(dataset.split("?", 1)[0].rstrip("/")).name
    last = last.removesuffix(".parquet")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", last).strip("_.-") or "experiment"


@click.group("config")
def config() -> None:
    """Write experiment configs."""


@config.command("new")
@click.argument("dataset", type=click.Path(path_type=str))
@click.option("--graph", "graphs", multiple=True, metavar="NAME=PATH",
              help="A gene graph the GCN may use (raygex Parquet from 'raygex graph import', or a graph file); "
                   "repeatable.")
@click.option("-o", "--output", type=click.Path(path_type=str), help="Write the config here (default: print it).")
@click.option("--name", help="Experiment name (default: the dataset's file name).")
@click.option("--force", is_flag=True, help="Replace --output if it exists.")
def new(dataset, graphs, output, name, force):
    """Write a commented starter config for DATASET (a canonical dataset from 'raygex data import').

    One classification task per label column with at least 2 classes of 10 samples (ids, measurements and
    near-unique columns are left out, and the config says why), the graphs with their controls (random, empty),
    a split sized from the sample count (cross-validated when small), and the standard search space. The config
    is checked as 'raygex search' checks it before Ray starts, so it runs as written.

    \b
    Examples:
      raygex config new data/demo/expression.parquet --graph true=data/demo/graph_true.parquet -o my-demo.yaml
      raygex config new data/pbmc.parquet --graph genemania=data/genemania.parquet -o my-pbmc.yaml
      raygex search my-demo.yaml
    """
    from raygex.config import load_config
    from raygex.config.starter import starter_yaml
    from raygex.data.canonical import read_genes
    from raygex.data.survey import survey_graph, survey_labels
    from raygex.pipeline.run import check_inputs

    wanted = parse_graphs(graphs)
    if name is not None and not NAME.match(name):
        raise ConfigError(f"--name: the experiment name names its folder: letters, digits, '_', '-' or '.', but got "
                          f"{name!r}")
    if output is not None:
        if Path(output).exists() and not Path(output).is_dir() and not force:
            raise ConfigError("-o: the file exists; pass --force to replace it", path=output)
        check_output(output, "-o", kind="file")
    summary = survey_labels(dataset)
    genes = read_genes(dataset)
    graph_summaries = [survey_graph(graph, path, genes, option) for graph, (path, option) in wanted.items()]
    text = starter_yaml(summary, graph_summaries, name=name or default_name(dataset), version=__version__)

    def checked(path: Path):  # as `raygex search` reads and checks it before Ray starts
        path.write_text(text)
        config = load_config(path)
        check_inputs(localize_inputs(config))
        return config

    if output is None:
        with tempfile.TemporaryDirectory(prefix="raygex-config-") as folder:
            checked(Path(folder) / "starter.yaml")
        click.echo(text, nl=False)
        return
    with atomic_path(output) as tmp:
        config = checked(Path(tmp))
    tasks = ", ".join(task.name for task in config.tasks)
    graphs_line = f"; graphs {', '.join(config.graphs)} with controls {', '.join(config.controls)}" \
        if config.graphs else "; no graphs (MLP and logistic regression only)"
    click.echo(f"wrote {output}: {len(config.tasks)} task(s) ({tasks}){graphs_line}")
    click.echo(f"  run it: raygex search {output}")
