"""`raygex graph` commands."""

from __future__ import annotations

import click


@click.group()
def graph() -> None:
    """`raygex graph` commands."""
