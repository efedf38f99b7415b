"""`raygex data fetch` / `raygex graph fetch`: download public inputs into the cache (see :mod:`raygex.data.fetch`).

Failures are :class:`~raygex.errors.DownloadError` / :class:`~raygex.errors.ConfigError`, which the top-level CLI
prints as one line with exit code 2; only a resumable ``.part`` file is ever left behind.
"""

from __future__ import annotations

import shlex
import sys
import time

import click

from raygex.data import fetch
from raygex.errors import ConfigError, RaygexError

_CACHE_HELP = "Cache directory [default: $RAYGEX_CACHE or ~/.cache/raygex]."


def _progress(label: str):
    """A throttled one-line stderr progress meter, only on a terminal (logs and tests stay clean)."""
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and done != total:
            return
        last[0] = now
        size = f"{done / 2**20:.1f}" + (f"/{total / 2**20:.1f} MiB ({100 * done // total}%)" if total else " MiB")
        click.echo(f"\r{label}: {size}", err=True, nl=done == total)

    return show


def _parse_sha256(values: tuple[str, ...]) -> dict[str, str]:
    """``HEX`` pins the expression matrix; ``expression=HEX`` / ``clinical=HEX`` name the file explicitly."""
    pins: dict[str, str] = {}
    for value in values:
        kind, sep, digest = value.rpartition("=")
        kind = kind.strip().lower() if sep else "expression"
        if kind not in ("expression", "clinical"):
            raise ConfigError(f"--sha256 must be HEX, expression=HEX or clinical=HEX, but got {value!r}")
        pins[kind] = digest
    return pins


def _network_options(func):
    func = click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
                        help="Retries after a connection failure, timeout or HTTP 5xx (resuming the file).")(func)
    func = click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
                        help="Seconds to wait for the server on each connect/read.")(func)
    return func


@click.command()
@click.argument("source", type=click.Choice(["tcga"]))
@click.option("--cohort", required=True, help="Xena TCGA cohort code, e.g. BRCA, LGG, or PANCAN for pan-cancer.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=str), help=_CACHE_HELP)
@click.option("--base-url", help=f"Xena hub download root [env RAYGEX_XENA_URL; default {fetch.XENA_DEFAULT_URL}].")
@click.option("--sha256", multiple=True, metavar="[KIND=]HEX",
              help="Expected SHA-256: HEX for the expression matrix, or expression=HEX / clinical=HEX. Repeatable.")
@click.option("--import", "import_to", type=click.Path(dir_okay=False, path_type=str), metavar="OUT.parquet",
              help="Also import the downloaded cohort into a canonical dataset at OUT.parquet.")
@_network_options
def fetch_tcga(source, cohort, cache, base_url, sha256, import_to, timeout, retries):
    """Download a TCGA cohort's expression (HiSeqV2) and clinical matrices from UCSC Xena.

    Files already in the cache with a matching checksum are not downloaded again; an interrupted download
    resumes where it stopped.

    \b
    Examples:
      raygex data fetch tcga --cohort BRCA
      raygex data fetch tcga --cohort LGG --import lgg.parquet
      raygex data fetch tcga --cohort PANCAN --cache /data/raygex-cache
    """
    paths = fetch.fetch_xena(cohort, cache=cache, base_url=base_url, sha256=_parse_sha256(sha256),
                             progress_for=lambda kind: _progress(f"{cohort} {kind}"), timeout=timeout,
                             retries=retries)
    expr, clinical = paths["expression"], paths["clinical"]
    click.echo(f"expression: {expr}")
    click.echo(f"clinical:   {clinical}")
    if import_to is None:
        out = f"{cohort.lower()}.parquet"
        click.echo(f"next: raygex data import {shlex.quote(str(expr))} --clinical {shlex.quote(str(clinical))} "
                   f"-o {out}")
        return
    try:
        from raygex.data.importer import import_expression  # heavy (numpy, pyarrow): only when asked
    except ImportError as err:
        raise RaygexError(f"--import needs raygex.data.importer, which cannot be imported ({err})") from None
    report = import_expression(expr, import_to, layout="xena", clinical=clinical)
    click.echo("\n".join(report.lines()))


@click.command()
@click.argument("source", type=click.Choice(["genemania"]))
@click.option("--url", help=f"Network file URL [env RAYGEX_GENEMANIA_URL; default {fetch.GENEMANIA_DEFAULT_URL}].")
@click.option("--cache", type=click.Path(file_okay=False, path_type=str), help=_CACHE_HELP)
@click.option("--sha256", metavar="HEX", help="Expected SHA-256 (none is published; the observed one is recorded).")
@click.option("--import", "import_to", type=click.Path(path_type=str), metavar="OUT.parquet",
              help="Also import the graph into a canonical graph at OUT.parquet (GeneMANIA's Ensembl ids mapped to "
              "approved symbols through raygex's shipped HGNC table).")
@_network_options
def fetch_graph(source, url, cache, sha256, import_to, timeout, retries):
    """Download a gene interaction graph (GeneMANIA) into the cache, and optionally import it.

    GeneMANIA publishes no checksum, so the digest of the first download is recorded beside the file
    (FILE.sha256) and in the cache's manifest.json; later runs check the file against it. Its network names genes
    by Ensembl id: the import maps them to approved HGNC symbols with the table raygex ships (no mapping file to
    find), keeping GeneMANIA's edge weights.

    \b
    Examples:
      raygex graph fetch genemania --import genemania.parquet
      raygex graph fetch genemania --url https://example.org/genemania.adjlist.gz --cache /data/raygex-cache
    """
    if import_to is not None:
        from raygex.cli.data import check_output  # heavy (click's data group pulls the importer): only when asked

        check_output(import_to, "--import")
    path = fetch.fetch_genemania(url=url, cache=cache, sha256=sha256, progress=_progress(source),
                                 timeout=timeout, retries=retries)
    click.echo(f"graph:  {path}")
    click.echo(f"sha256: {fetch.read_sidecar(path)}")
    options = fetch.graph_import_options(path)
    if import_to is None:
        command = f"raygex graph import {shlex.quote(str(path))} --name {source} -o {source}.parquet"
        if options["id_type"] != "symbol":
            command += f" --id-type {options['id_type']}"  # mapped through raygex's shipped HGNC table
        if options["weight_column"]:
            command += f" --weight-column {shlex.quote(options['weight_column'])}"
        click.echo(f"next: {command}")
        return
    from raygex.graphs.io import import_graph  # heavy (numpy, pandas, pyarrow): only when asked
    from raygex.graphs.store import write_graph

    graph, report = import_graph(path, source, **options)
    write_graph(graph, import_to)
    mapped = "" if options["id_type"] == "symbol" else (
        f"; {report['nodes_mapped']} of {report['nodes_read']} {options['id_type']} ids mapped to approved symbols "
        "through raygex's shipped HGNC table")
    click.echo(f"imported: {import_to} ({report['nodes']} nodes, {report['edges_kept']} edges{mapped})")
    click.echo(f"use it in a config as  graphs: {{{source}: {import_to}}}")
