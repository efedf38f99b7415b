"""One error root for everything a user can get wrong.

The CLI turns a :class:`RaygexError` into a one-line message and exit code 2; anything else is a bug and keeps
its traceback. Messages follow one shape: "<file or field>: <what is wrong>, but got <value>".
"""

from __future__ import annotations


class RaygexError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    def __init__(self, message: str, *, path: object | None = None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputFormatError(RaygexError):
    """A file exists but its contents are not what the reader needs."""


class ConfigError(RaygexError):
    """A configuration value (config file key, CLI option, task field) is invalid."""


class DownloadError(RaygexError):
    """A fetch failed: network, HTTP status, or checksum."""


class SweepInterrupted(RaygexError):
    """The user stopped a sweep (Ctrl-C); its state is saved and ``raygex resume`` continues it."""

    exit_code = 130
