"""`raygex data fetch` / `raygex graph fetch`: placeholder module, filled by the fetcher work."""

from __future__ import annotations

import click


@click.command()
def fetch_tcga() -> None:
    """Download a TCGA cohort."""
    raise click.UsageError("not implemented yet")


@click.command()
def fetch_graph() -> None:
    """Download a gene graph."""
    raise click.UsageError("not implemented yet")
