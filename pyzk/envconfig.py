"""zoo.cfg and myid from the environment: the official ZooKeeper Docker image's convention.

Rule 1: the same files the image's docker-entrypoint.sh writes. Only when `<conf dir>/zoo.cfg`
        does not exist: dataDir, dataLogDir, tickTime, initLimit, syncLimit,
        autopurge.snapRetainCount, autopurge.purgeInterval, maxClientCnxns, standaloneEnabled,
        admin.enableServer (in that order, one `key=value` line each, from the ZOO_* variables
        of `IMAGE_DEFAULTS`), then every whitespace-separated word of ZOO_SERVERS (default
        `server.1=localhost:2888:3888;2181`), then `4lw.commands.whitelist=` when
        ZOO_4LW_COMMANDS_WHITELIST is non-empty, then every word of ZOO_CFG_EXTRA. An existing
        zoo.cfg is never read or changed (a mounted config wins, as in the image).
Rule 2: `$ZOO_DATA_DIR/myid` gets ZOO_MY_ID (default 1) only when it does not exist.
Rule 3: a variable that is unset takes the image's Dockerfile default (`IMAGE_DEFAULTS`), so
        the same environment writes the same files inside and outside a container; a variable
        set to "" stays empty, as the shell's `echo "tickTime=$ZOO_TICK_TIME"` would write it.
Rule 4: the conf dir is $ZOO_CONF_DIR (the image's name), else $ZOOCFGDIR (zkServer's), else
        /conf. The image's ZOO_LOG_LEVEL / ZOO_LOG_APPENDER become `-Dzookeeper.log.level` /
        `-Dzookeeper.log.appender` in SERVER_JVMFLAGS, which `zkServer` reads as -D arguments.
Rule 5: unlike the image's script this one does not chown and re-exec as another user when
        run as root: deploy/Dockerfile runs as an unprivileged user from the start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The official image's Dockerfile ENV (zookeeper:3.8).
IMAGE_DEFAULTS: dict[str, str] = {
    "ZOO_CONF_DIR": "/conf",
    "ZOO_DATA_DIR": "/data",
    "ZOO_DATA_LOG_DIR": "/datalog",
    "ZOO_LOG_DIR": "/logs",
    "ZOO_TICK_TIME": "2000",
    "ZOO_INIT_LIMIT": "5",
    "ZOO_SYNC_LIMIT": "2",
    "ZOO_AUTOPURGE_PURGEINTERVAL": "0",
    "ZOO_AUTOPURGE_SNAPRETAINCOUNT": "3",
    "ZOO_MAX_CLIENT_CNXNS": "60",
    "ZOO_STANDALONE_ENABLED": "true",
    "ZOO_ADMINSERVER_ENABLED": "true",
    "ZOO_LOG_APPENDER": "CONSOLE",
    "ZOO_LOG_LEVEL": "INFO",
}
DEFAULT_SERVERS = "server.1=localhost:2888:3888;2181"
DEFAULT_MY_ID = "1"

# (zoo.cfg key, variable) in the order docker-entrypoint.sh echoes them.
_FIXED_LINES: tuple[tuple[str, str], ...] = (
    ("dataDir", "ZOO_DATA_DIR"),
    ("dataLogDir", "ZOO_DATA_LOG_DIR"),
    ("tickTime", "ZOO_TICK_TIME"),
    ("initLimit", "ZOO_INIT_LIMIT"),
    ("syncLimit", "ZOO_SYNC_LIMIT"),
    ("autopurge.snapRetainCount", "ZOO_AUTOPURGE_SNAPRETAINCOUNT"),
    ("autopurge.purgeInterval", "ZOO_AUTOPURGE_PURGEINTERVAL"),
    ("maxClientCnxns", "ZOO_MAX_CLIENT_CNXNS"),
    ("standaloneEnabled", "ZOO_STANDALONE_ENABLED"),
    ("admin.enableServer", "ZOO_ADMINSERVER_ENABLED"),
)


def _get(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, IMAGE_DEFAULTS.get(name, ""))


def conf_dir(environ: Mapping[str, str]) -> Path:
    """Rule 4's conf dir."""
    return Path(environ.get("ZOO_CONF_DIR") or environ.get("ZOOCFGDIR") or IMAGE_DEFAULTS["ZOO_CONF_DIR"])


def render_zoo_cfg(environ: Mapping[str, str]) -> str:
    """Rule 1's zoo.cfg text."""
    lines = [f"{key}={_get(environ, name)}" for key, name in _FIXED_LINES]
    # `if [[ -z $ZOO_SERVERS ]]`: unset and empty both take the default.
    lines += (environ.get("ZOO_SERVERS") or DEFAULT_SERVERS).split()
    whitelist = environ.get("ZOO_4LW_COMMANDS_WHITELIST")
    if whitelist:
        lines.append(f"4lw.commands.whitelist={whitelist}")
    lines += environ.get("ZOO_CFG_EXTRA", "").split()
    return "".join(f"{line}\n" for line in lines)


def server_jvmflags(environ: Mapping[str, str]) -> str:
    """The image's `SERVER_JVMFLAGS="$SERVER_JVMFLAGS -Dzookeeper.log.appender=... -Dzookeeper.log.level=..."`."""
    return (f"{environ.get('SERVER_JVMFLAGS', '')} "
            f"-Dzookeeper.log.appender={_get(environ, 'ZOO_LOG_APPENDER')} "
            f"-Dzookeeper.log.level={_get(environ, 'ZOO_LOG_LEVEL')}")


@dataclass(frozen=True, slots=True)
class Written:
    """What `write_config` did: each path and whether it was written (False: it existed)."""

    zoo_cfg: Path
    zoo_cfg_written: bool
    myid: Path
    myid_written: bool


def write_config(environ: Mapping[str, str]) -> Written:
    """Rules 1 and 2: write zoo.cfg and myid where they are missing; never overwrite."""
    cfg_path = conf_dir(environ) / "zoo.cfg"
    cfg_written = False
    if not cfg_path.is_file():
        cfg_path.parent.mkdir(parents=True, exist_ok=True)
        with open(cfg_path, "a", encoding="utf-8") as cfg:  # `>> "$CONFIG"`
            cfg.write(render_zoo_cfg(environ))
        cfg_written = True
    myid_path = Path(_get(environ, "ZOO_DATA_DIR")) / "myid"
    myid_written = False
    if not myid_path.is_file():
        myid_path.parent.mkdir(parents=True, exist_ok=True)
        myid_path.write_text(f"{environ.get('ZOO_MY_ID') or DEFAULT_MY_ID}\n", encoding="utf-8")
        myid_written = True
    return Written(cfg_path, cfg_written, myid_path, myid_written)


def describe(written: Written) -> list[str]:
    return [f"{'Wrote' if was_written else 'Kept existing'} {path}"
            for path, was_written in ((written.zoo_cfg, written.zoo_cfg_written),
                                      (written.myid, written.myid_written))]


def entrypoint(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """`pyzk-docker-entrypoint [command ...]`: write what is missing, then exec the command
    with SERVER_JVMFLAGS (Rule 4) and ZOOCFGDIR pointing at the conf dir."""
    env = dict(os.environ if environ is None else environ)
    command = list(sys.argv[1:] if argv is None else argv)
    if command[:1] in (["-h"], ["--help"]):
        print(f"usage: pyzk-docker-entrypoint [command ...]\n\n{__doc__}")
        return 0
    try:
        written = write_config(env)
    except OSError as error:
        print(f"pyzk-docker-entrypoint: {error}", file=sys.stderr)
        return 1
    for line in describe(written):
        print(f"pyzk-docker-entrypoint: {line}", file=sys.stderr)
    if not command:
        return 0
    env["SERVER_JVMFLAGS"] = server_jvmflags(env).strip()
    env.setdefault("ZOOCFGDIR", str(conf_dir(env)))
    env.setdefault("ZOO_LOG_DIR", _get(env, "ZOO_LOG_DIR"))
    try:
        os.execvpe(command[0], command, env)
    except OSError as error:
        print(f"pyzk-docker-entrypoint: cannot run {command[0]}: {error}", file=sys.stderr)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(entrypoint())
