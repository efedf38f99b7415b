"""The ``raygex`` command line: this file only wires command groups and maps errors to exit codes.

A :class:`~raygex.errors.RaygexError` becomes one line on stderr and exit code 2; ``--debug`` or
``RAYGEX_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import click

from raygex.cli.bench import bench
from raygex.cli.config_cmd import config
from raygex.cli.data import data
from raygex.cli.demo import demo
from raygex.cli.export import export, predict, report
from raygex.cli.fetch import fetch_graph, fetch_tcga
from raygex.cli.graph import graph
from raygex.cli.search import resume, search, status
from raygex.cli.train import train
from raygex.errors import RaygexError, SweepInterrupted
from raygex.runtime.console import show_messages
from raygex.search.tune_compat.versions import untested_versions
from raygex.version import __version__

EXIT_USER_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="raygex")
@click.option("--debug", is_flag=True, envvar="RAYGEX_DEBUG", help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Search graph convolutional networks over gene expression, on Ray."""
    ctx.obj = {"debug": debug}
    show_messages()  # raygex's progress, results and notes (logging records) on the console


data.add_command(demo)
data.add_command(fetch_tcga, name="fetch")
graph.add_command(fetch_graph, name="fetch")
cli.add_command(data)
cli.add_command(graph)
cli.add_command(bench)
cli.add_command(train)
cli.add_command(config)
for command in (search, resume, status, export, predict, report):
    cli.add_command(command)


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("RAYGEX_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, turning user errors into one line and exit code 2."""
    argv = sys.argv[1:] if argv is None else argv
    for line in untested_versions():
        click.echo(f"raygex: warning: {line}", err=True)
    try:
        cli.main(args=argv, prog_name="raygex", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except SweepInterrupted as err:
        click.echo(f"raygex: interrupted: {err}", err=True)
        sys.exit(err.exit_code)
    except RaygexError as err:
        if _debug_requested(argv):
            raise
        click.echo(f"raygex: error: {err}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
