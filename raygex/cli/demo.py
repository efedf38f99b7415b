"""`raygex data demo`: placeholder module, filled by the demo generator work."""

from __future__ import annotations

import click


@click.command()
def demo() -> None:
    """Generate the embedded demo cohort."""
    raise click.UsageError("not implemented yet")
