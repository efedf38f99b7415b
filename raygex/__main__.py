"""`python -m raygex` is the same as the `raygex` command."""

from raygex.cli import main

main()
