"""ConfigError: a configuration value that stops start-up, with its file and line."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration value that stops start-up; str() is `<file>:<line>: <key>: <reason>`."""

    def __init__(self, source: str, line: int | None, key: str, reason: str) -> None:
        self.source = source
        self.line = line
        self.key = key
        self.reason = reason
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {key}: {reason}")
