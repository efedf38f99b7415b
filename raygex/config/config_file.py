"""Reading a YAML config file into a mapping (validation is :func:`raygex.config.load_config`'s)."""

from __future__ import annotations

from pathlib import Path

import yaml

from raygex.errors import ConfigError


def read_config_file(path: str | Path) -> dict:
    """A YAML config's content; a missing file, bad YAML or a non-mapping is one ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path=path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML ({str(err).splitlines()[0]})", path=path) from None
    if not isinstance(raw, dict):
        raise ConfigError("a config must be a mapping of keys to values", path=path)
    return raw
