"""Logging for the server process, in Apache ZooKeeper 3.8's line layout.

Rule 1: one layout, logback's `%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n`, so
        log scrapers written for ZooKeeper keep working:
        `2026-11-22 04:50:25,123 [myid:1] - INFO  [main:p.s.listener@42] - message`.
        `%C{1}` abbreviates every package to its first letter (logback's rule for length 1).
Rule 2: the appender is chosen as zkEnv.sh chooses it, by `ZOO_LOG4J_PROP` ("LEVEL,APPENDER"):
        CONSOLE writes to stderr, ROLLINGFILE to `$ZOO_LOG_DIR/zookeeper.log`, rotated at
        `log_bytes_max` with `log_backup_count` old files (ZooKeeper's 10MB x 10).
Rule 3: only entry points (`pyzk.cli`) call `configure_logging`; modules just use
        `logging.getLogger(__name__)`.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

LOG_FILE_NAME = "zookeeper.log"
log_bytes_max = 10 * 1024 * 1024
log_backup_count = 10

_LEVEL_NAMES = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
                "WARN": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}


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

    def format(self, record: logging.LogRecord) -> str:
        timestamp = f"{self.formatTime(record, self.datefmt)},{int(record.msecs):03d}"
        thread = "main" if record.threadName == "MainThread" else record.threadName
        line = (
            f"{timestamp} [myid:{self.my_id_text}] - {java_level_name(record.levelno):<5} "
            f"[{thread}:{abbreviate_logger_name(record.name)}@{record.lineno}] - "
            f"{record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def parse_log4j_prop(value: str | None) -> tuple[int, str]:
    """`ZOO_LOG4J_PROP` ("INFO,ROLLINGFILE") -> (level, appender); default INFO,CONSOLE."""
    parts = [part.strip().upper() for part in (value or "INFO,CONSOLE").split(",")]
    level = _LEVEL_NAMES.get(parts[0], logging.INFO)
    appender = parts[1] if len(parts) > 1 and parts[1] else "CONSOLE"
    return level, appender


def configure_logging(
    *,
    my_id: int | None,
    log_dir: Path,
    log4j_prop: str | None = None,
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
    return handler
