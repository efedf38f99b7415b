"""A config given as a mapping (the Python API's dict configs), validated as a YAML file is."""

from __future__ import annotations

from pydantic import ValidationError

from raygex.config import ExperimentConfig, _format_validation_error, _string_keys
from raygex.errors import ConfigError


def config_from_mapping(raw: dict, source: str = "config") -> ExperimentConfig:
    """Validate ``raw`` (the YAML's content as a dict); a bad key or value is one :class:`ConfigError` naming
    ``source``, as for a file."""
    try:
        return ExperimentConfig.model_validate(_string_keys(raw))
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None
