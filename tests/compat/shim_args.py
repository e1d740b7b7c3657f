"""Pure helpers of the `java` shim: read a java command line, find the real java.

Rule: a java argv is launcher options, then the main class, then its arguments.  Only
QuorumPeerMain with one zoo.cfg argument is a ZooKeeper server launch; -D options are kept in
order, the classpath and other JVM options are dropped (pyzk has no JVM).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tests.compat.targets import (
    APACHE_MAIN_CLASS,
    MIXED_TARGETS,
    TARGET_KINDS,
    mixed_server_kinds,
)

# Launcher options whose value is the next argument (java's own list, as far as it matters).
_OPTIONS_WITH_VALUE = frozenset(
    {"-cp", "-classpath", "--class-path", "-jar", "--module-path", "-p"}
)


@dataclass(frozen=True)
class ServerLaunch:
    config_path: Path
    sysprop_flags: list[str]


def parse_java_args(argv: list[str]) -> ServerLaunch | None:
    """The server launch in ``argv`` (without argv[0]), or None for any other java call."""
    sysprop_flags: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in _OPTIONS_WITH_VALUE:
            index += 2
            continue
        if arg.startswith("-D"):
            sysprop_flags.append(arg)
        elif not arg.startswith("-"):
            main_class, main_args = arg, argv[index + 1 :]
            if main_class == APACHE_MAIN_CLASS and len(main_args) == 1:
                return ServerLaunch(Path(main_args[0]), sysprop_flags)
            return None
        index += 1
    return None


def real_java(path_env: str, shim_dir: Path) -> str:
    """The first executable `java` on PATH that is not in the shim's directory."""
    for entry in path_env.split(os.pathsep):
        if not entry or Path(entry).resolve() == shim_dir.resolve():
            continue
        candidate = Path(entry) / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise FileNotFoundError("no java on PATH besides the pyzk shim")


def shim_server_kind(target: str, config_text: str, myid_text: str | None) -> str:
    """Which kind runs this launch: ``target`` itself, or for a mixed target the kind of
    this server's id (``myid``) among the ``server.N`` lines of its zoo.cfg."""
    if target in TARGET_KINDS:
        return target
    if target not in MIXED_TARGETS:
        raise ValueError(f"unknown target {target!r}")
    server_ids = sorted(
        int(line.split("=", 1)[0].strip()[len("server."):])
        for line in config_text.splitlines()
        if line.strip().startswith("server.") and "=" in line
    )
    if myid_text is None or not server_ids:
        raise ValueError(f"mixed target {target!r} needs an ensemble zoo.cfg and a myid")
    server_id = int(myid_text.strip())
    return mixed_server_kinds(target, len(server_ids))[server_ids.index(server_id)]


def config_data_dir(config_text: str) -> Path | None:
    """zoo.cfg's dataDir (the last one wins, as in java.util.Properties)."""
    data_dir = None
    for line in config_text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "dataDir":
            data_dir = Path(value.strip())
    return data_dir
