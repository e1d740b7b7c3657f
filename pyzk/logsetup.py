"""Logging for the server process, in Apache ZooKeeper 3.8's line layout.

Rule 1: one layout, logback's `%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n`, so
        log scrapers written for ZooKeeper keep working:
        `2026-11-22 04:50:25,123 [myid:1] - INFO  [main:p.s.listener@42] - message`.
        `%C{1}` abbreviates every package to its first letter (logback's rule for length 1).
Rule 2: the root level and appender ("LEVEL,APPENDER") come, first match wins, from
        `-Dzookeeper.root.logger` (log4j's property, which zkServer.sh <= 3.7 and Debian's
        package fill from $ZOO_LOG4J_PROP), `-Dzookeeper.log.level` / `-Dzookeeper.log.appender`
        (the official Docker image's logback.xml), then $ZOO_LOG4J_PROP, then INFO,CONSOLE.
        CONSOLE writes to stderr, ROLLINGFILE to `<log dir>/zookeeper.log`, rotated at
        `log_bytes_max` with `log_backup_count` old files (ZooKeeper's 10MB x 10).
Rule 3: per-module levels: `-Dpyzk.log.level.<logger>=LEVEL` sets the level of one logger
        and everything below it (`-Dpyzk.log.level.pyzk.quorum=DEBUG`,
        `-Dpyzk.log.level.pyzk.server.connection=WARN`); level words are log4j's (TRACE is
        DEBUG, OFF silences) or Python's. An unknown word is reported once and ignored.
Rule 4: only entry points (`pyzk.cli`) call `configure_logging`; modules just use
        `logging.getLogger(__name__)`.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LOG_FILE_NAME = "zookeeper.log"
log_bytes_max = 10 * 1024 * 1024
log_backup_count = 10

_LEVEL_NAMES = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
                "WARN": logging.WARNING, "WARNING": logging.WARNING, "ERROR": logging.ERROR,
                "FATAL": logging.CRITICAL, "CRITICAL": logging.CRITICAL,
                "OFF": logging.CRITICAL + 10, "ALL": logging.NOTSET}
DEFAULT_LOG4J_PROP = "INFO,CONSOLE"
ROOT_LOGGER_PROPERTY = "zookeeper.root.logger"
LOG_LEVEL_PROPERTY = "zookeeper.log.level"
LOG_APPENDER_PROPERTY = "zookeeper.log.appender"
LOG_DIR_PROPERTY = "zookeeper.log.dir"
MODULE_LEVEL_PREFIX = "pyzk.log.level."


def abbreviate_logger_name(name: str) -> str:
    """`pyzk.server.listener` -> `p.s.listener`, as logback's `%C{1}` shortens class names."""
    *packages, last = name.split(".")
    return ".".join([package[:1] for package in packages] + [last])


def java_level_name(levelno: int) -> str:
    """Java's level words: WARNING is WARN, CRITICAL is FATAL (log4j) / ERROR (logback)."""
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARN"
    if levelno >= logging.INFO:
        return "INFO"
    return "DEBUG"


class ZooKeeperFormatter(logging.Formatter):
    """Formats records as ZooKeeper's logback pattern does (see the module docstring)."""

    def __init__(self, my_id: int | None) -> None:
        super().__init__(datefmt="%Y-%m-%d %H:%M:%S")
        self.my_id_text = "" if my_id is None else str(my_id)
        # A burst of lines (an addauth flood logs one per request) formats its second once
        # and each logger's name once.
        self._second = -1
        self._second_text = ""
        self._names: dict[str, str] = {}

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._second_text = second, self.formatTime(record, self.datefmt)
        name = self._names.get(record.name)
        if name is None:
            name = self._names[record.name] = abbreviate_logger_name(record.name)
        thread = "main" if record.threadName == "MainThread" else record.threadName
        line = (
            f"{self._second_text},{int(record.msecs):03d} [myid:{self.my_id_text}] - "
            f"{java_level_name(record.levelno):<5} [{thread}:{name}@{record.lineno}] - "
            f"{record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def parse_log4j_prop(value: str | None) -> tuple[int, str]:
    """`ZOO_LOG4J_PROP` ("INFO,ROLLINGFILE") -> (level, appender); default INFO,CONSOLE."""
    parts = [part.strip().upper() for part in (value or DEFAULT_LOG4J_PROP).split(",")]
    level = _LEVEL_NAMES.get(parts[0], logging.INFO)
    appender = parts[1] if len(parts) > 1 and parts[1] else "CONSOLE"
    return level, appender


@dataclass(frozen=True, slots=True)
class LogSettings:
    """What Rules 2 and 3 decide: the root "LEVEL,APPENDER", per-logger levels, and the
    settings that were not understood (reported once logging is up)."""

    log4j_prop: str = DEFAULT_LOG4J_PROP
    module_levels: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def log_settings(properties: Mapping[str, str], log4j_prop_env: str | None) -> LogSettings:
    """Rules 2 and 3 over the -D system properties and $ZOO_LOG4J_PROP."""
    root = properties.get(ROOT_LOGGER_PROPERTY)
    level_prop, appender_prop = properties.get(LOG_LEVEL_PROPERTY), properties.get(LOG_APPENDER_PROPERTY)
    if not root and (level_prop or appender_prop):
        env_parts = [part.strip() for part in (log4j_prop_env or DEFAULT_LOG4J_PROP).split(",")]
        env_appender = env_parts[1] if len(env_parts) > 1 and env_parts[1] else "CONSOLE"
        root = f"{level_prop or env_parts[0]},{appender_prop or env_appender}"
    root = root or log4j_prop_env or DEFAULT_LOG4J_PROP
    problems: list[str] = []
    root_level = root.split(",", 1)[0].strip().upper()
    if root_level not in _LEVEL_NAMES:
        problems.append(f"unknown log level {root_level!r} in {root!r}; using INFO")
    module_levels: dict[str, int] = {}
    for name, value in properties.items():
        if not name.startswith(MODULE_LEVEL_PREFIX):
            continue
        logger_name = name[len(MODULE_LEVEL_PREFIX):]
        level = _LEVEL_NAMES.get(value.strip().upper())
        if not logger_name or level is None:
            problems.append(f"-D{name}={value}: expected -D{MODULE_LEVEL_PREFIX}<logger>=LEVEL "
                            f"with LEVEL one of {', '.join(_LEVEL_NAMES)}; ignored")
            continue
        module_levels[logger_name] = level
    return LogSettings(root, module_levels, problems)


def configure_logging(
    *,
    my_id: int | None,
    log_dir: Path,
    log4j_prop: str | None = None,
    module_levels: Mapping[str, int] | None = None,
) -> logging.Handler:
    """Install the one root handler for this process and return it."""
    level, appender = parse_log4j_prop(log4j_prop)
    handler: logging.Handler
    if appender == "ROLLINGFILE":
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            log_dir / LOG_FILE_NAME, maxBytes=log_bytes_max, backupCount=log_backup_count,
            encoding="utf-8",
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ZooKeeperFormatter(my_id))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # The layout shows no process id or name: skip looking them up for every record.
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for logger_name, logger_level in (module_levels or {}).items():
        logging.getLogger(logger_name).setLevel(logger_level)
    return handler
