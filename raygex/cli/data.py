"""`raygex data` commands."""

from __future__ import annotations

import click


@click.group()
def data() -> None:
    """`raygex data` commands."""
