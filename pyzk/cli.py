"""`zkServer.py` verbs, as zkServer.sh has them: start, start-foreground, stop, restart, status,
version, print-cmd.

Rule 1: the config is found as zkServer.sh finds it: an explicit argument (a bare file name is
        looked up in $ZOOCFGDIR), else $ZOOCFGDIR/$ZOOCFG, with $ZOOCFGDIR defaulting to the
        project's conf/ folder and $ZOOCFG to zoo.cfg. `-Dname=value` arguments are Java system
        properties (kazoo's harness passes them); `--config <dir>` before the verb sets $ZOOCFGDIR.
Rule 2: a bad config exits 2 with one `<file>:<line>: <key>: <reason>` line on stderr
        (QuorumPeerMain's exit code for an invalid config).
Rule 3: every wait is bounded: `start` waits up to `start_wait_s` for an answer to `srvr`,
        `stop` up to `stop_wait_s` for the process to exit, then kills it.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyzk.config import ConfigError, ServerConfig, load_config
from pyzk.logsetup import LOG_FILE_NAME, configure_logging

# Named explicitly: run as `python -m pyzk.cli`, __name__ would be "__main__".
logger = logging.getLogger("pyzk.cli")

ZOOKEEPER_COMPATIBLE_VERSION = "3.8.0"
PID_FILE_NAME = "zookeeper_server.pid"
start_wait_s = 30.0
stop_wait_s = 30.0
poll_interval_s = 0.1
srvr_timeout_s = 5.0
srvr_reply_bytes_max = 64 * 1024
log_tail_lines = 20

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID_CONFIG = 2

USAGE = ("Usage: zkServer.py [--config <conf-dir>] "
         "{start|start-foreground|stop|version|restart|status|print-cmd} [-Dname=value ...] [zoo.cfg]")

# The project root: bin/zkServer.py and conf/ live here in a checkout.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Invocation:
    """The parsed command line."""

    verb: str
    config_arg: str | None
    system_properties: dict[str, str] = field(default_factory=dict)
    config_dir: str | None = None


def parse_args(argv: Sequence[str]) -> Invocation | None:
    """zkServer.sh's argument shape; None when there is no verb."""
    args = list(argv)
    config_dir = None
    if len(args) > 1 and args[0] == "--config":
        config_dir = args[1]
        args = args[2:]
    properties: dict[str, str] = {}
    positional: list[str] = []
    for arg in args:
        if arg.startswith("-D") and len(arg) > 2:
            name, _, value = arg[2:].partition("=")
            properties[name] = value
        else:
            positional.append(arg)
    if not positional:
        return None
    return Invocation(positional[0], positional[1] if len(positional) > 1 else None,
                      properties, config_dir)


def find_config(invocation: Invocation, environ: Mapping[str, str]) -> Path:
    """Rule 1's lookup; a bare name missing from $ZOOCFGDIR but present here is used here."""
    config_dir = Path(invocation.config_dir or environ.get("ZOOCFGDIR") or PROJECT_ROOT / "conf")
    if invocation.config_arg is None:
        return config_dir / environ.get("ZOOCFG", "zoo.cfg")
    given = Path(invocation.config_arg)
    bare_name = len(given.parts) == 1 and not given.is_absolute()
    if bare_name and ((config_dir / given).exists() or not given.exists()):
        return config_dir / given
    return given


def log_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("ZOO_LOG_DIR") or PROJECT_ROOT / "logs")


def daemon_out_file(environ: Mapping[str, str]) -> Path:
    """zkServer.sh's `zookeeper-$USER-server-$HOSTNAME.out`: the daemon's stdout and stderr."""
    user = environ.get("USER", "pyzk")
    return log_dir(environ) / f"zookeeper-{user}-server-{socket.gethostname()}.out"


def pid_file(config: ServerConfig, environ: Mapping[str, str]) -> Path:
    return Path(environ["ZOOPIDFILE"]) if environ.get("ZOOPIDFILE") else (
        config.data_dir / PID_FILE_NAME)


def foreground_command(invocation: Invocation, config_path: Path) -> list[str]:
    """The command `start` runs detached: this CLI's start-foreground in a new interpreter."""
    properties = [f"-D{name}={value}" for name, value in invocation.system_properties.items()]
    return [sys.executable, "-m", "pyzk.cli", "start-foreground", *properties, str(config_path)]


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("pyzk-server")
    except metadata.PackageNotFoundError:
        import tomllib

        with open(PROJECT_ROOT / "pyproject.toml", "rb") as pyproject:
            return str(tomllib.load(pyproject)["project"]["version"])


# ---------------------------------------------------------------------------------------------
# Talking to a running server


def ask_srvr(host: str, port: int, timeout_s: float = srvr_timeout_s) -> str | None:
    """Send the `srvr` four-letter word; the reply text, or None if nobody answers."""
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "localhost", "") else host
    if connect_host == "::":
        connect_host = "::1"
    try:
        with socket.create_connection((connect_host, port), timeout=timeout_s) as sock:
            sock.sendall(b"srvr")
            chunks: list[bytes] = []
            received = 0
            deadline = time.monotonic() + timeout_s
            while received < srvr_reply_bytes_max and time.monotonic() < deadline:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
    except OSError:
        return None
    reply = b"".join(chunks).decode("utf-8", "replace")
    return reply or None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_pyzk_process(pid: int) -> bool:
    """Guards `stop` against a stale pid file whose pid now belongs to another program."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return process_alive(pid)  # no /proc: trust the pid file, as zkServer.sh does
    try:
        return b"start-foreground" in cmdline.read_bytes()
    except OSError:
        return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def tail(path: Path, lines: int = log_tail_lines) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


# ---------------------------------------------------------------------------------------------
# Verbs


def _load(invocation: Invocation, config_path: Path) -> ServerConfig | None:
    try:
        return load_config(config_path, invocation.system_properties)
    except ConfigError as error:
        print(f"Invalid config, exiting abnormally: {error}", file=sys.stderr)
        return None


def cmd_start_foreground(invocation: Invocation, config_path: Path,
                         environ: Mapping[str, str]) -> int:
    config = _load(invocation, config_path)
    if config is None:
        return EXIT_INVALID_CONFIG
    configure_logging(my_id=config.my_id, log_dir=log_dir(environ),
                      log4j_prop=environ.get("ZOO_LOG4J_PROP"))
    logger.info("Reading configuration from: %s", config_path)
    for warning in config.warnings:
        logger.warning("%s", warning)
    if config.unknown_keys:
        logger.warning("Configuration keys not implemented by pyzk (ignored): %s",
                       ", ".join(config.unknown_keys))
    try:
        from pyzk.server.main import run
    except ImportError as error:
        logger.error("Cannot start: the server module pyzk.server.main is not available (%s)",
                     error)
        return EXIT_FAILED
    return int(run(config))


def cmd_start(invocation: Invocation, config_path: Path, environ: Mapping[str, str]) -> int:
    config = _load(invocation, config_path)
    if config is None:
        return EXIT_INVALID_CONFIG
    print("Starting zookeeper ... ", end="", flush=True)
    pid_path = pid_file(config, environ)
    old_pid = read_pid(pid_path)
    if old_pid is not None and process_alive(old_pid) and is_pyzk_process(old_pid):
        print(f"already running as process {old_pid}.")
        return EXIT_FAILED
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    out_path = daemon_out_file(environ)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    child_env = dict(environ)
    child_env.setdefault("ZOO_LOG4J_PROP", "INFO,ROLLINGFILE")
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT), *filter(None, [environ.get("PYTHONPATH")])])
    with open(out_path, "ab") as out, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen(
            foreground_command(invocation, config_path), stdin=devnull, stdout=out,
            stderr=subprocess.STDOUT, env=child_env, start_new_session=True,
        )
    pid_path.write_text(str(child.pid))
    answered = _wait_until_serving(child, config)
    if answered:
        print("STARTED")
        return EXIT_OK
    if child.poll() is None:
        _terminate(child.pid)
        child.wait(timeout=stop_wait_s)
        reason = f"no answer to srvr within {start_wait_s:.0f} s; stopped it"
    else:
        reason = f"the server exited with code {child.returncode}"
    pid_path.unlink(missing_ok=True)
    print(f"FAILED TO START ({reason})")
    for path in (out_path, log_dir(environ) / LOG_FILE_NAME):
        lines = tail(path)
        if lines:
            print(f"--- last lines of {path}:", file=sys.stderr)
            print("\n".join(lines), file=sys.stderr)
    return EXIT_FAILED


def _wait_until_serving(child: subprocess.Popen[bytes], config: ServerConfig) -> bool:
    deadline = time.monotonic() + start_wait_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return False
        if config.client_port is None:
            # No plaintext port to ask (TLS only): alive after a second is what zkServer.sh checks.
            time.sleep(1.0)
            return child.poll() is None
        if ask_srvr(config.client_port_address, config.client_port, timeout_s=1.0) is not None:
            return True
        time.sleep(poll_interval_s)
    return False


def _terminate(pid: int) -> bool:
    """SIGTERM, wait up to stop_wait_s, then SIGKILL; True if it exited after SIGTERM."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + stop_wait_s
    while time.monotonic() < deadline:
        if not process_alive(pid) or _is_zombie(pid):
            return True
        time.sleep(poll_interval_s)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return False


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def cmd_stop(invocation: Invocation, config_path: Path, environ: Mapping[str, str]) -> int:
    config = _load(invocation, config_path)
    if config is None:
        return EXIT_INVALID_CONFIG
    print("Stopping zookeeper ... ", end="", flush=True)
    pid_path = pid_file(config, environ)
    if not pid_path.exists():
        print(f"no zookeeper to stop (could not find file {pid_path})")
        return EXIT_OK
    pid = read_pid(pid_path)
    running = pid is not None and process_alive(pid) and is_pyzk_process(pid)
    if running and pid is not None and not _terminate(pid):
        print(f"(did not exit within {stop_wait_s:.0f} s of SIGTERM; killed) ", end="")
    pid_path.unlink(missing_ok=True)
    print("STOPPED")
    return EXIT_OK


def cmd_status(invocation: Invocation, config_path: Path, environ: Mapping[str, str]) -> int:
    config = _load(invocation, config_path)
    if config is None:
        return EXIT_INVALID_CONFIG
    if config.client_port is None:
        print("Client port not found. Looking for secureClientPort in the static config.")
        print("Unable to find either secure or unsecure client port in any configs. Terminating.")
        return EXIT_FAILED
    shown_address = ("localhost" if config.client_port_address == "0.0.0.0"
                     else config.client_port_address)
    print(f"Client port found: {config.client_port}. Client address: {shown_address}."
          " Client SSL: false.")
    reply = ask_srvr(config.client_port_address, config.client_port)
    mode_lines = [line for line in (reply or "").splitlines() if "Mode" in line]
    if not mode_lines:
        print("Error contacting service. It is probably not running.")
        return EXIT_FAILED
    print(mode_lines[0])
    return EXIT_OK


def cmd_restart(invocation: Invocation, config_path: Path, environ: Mapping[str, str]) -> int:
    code = cmd_stop(invocation, config_path, environ)
    if code != EXIT_OK:
        return code
    return cmd_start(invocation, config_path, environ)


def cmd_version() -> int:
    print(f"pyzk, version {package_version()} "
          f"(Apache ZooKeeper {ZOOKEEPER_COMPATIBLE_VERSION} compatible)")
    return EXIT_OK


def cmd_print_cmd(invocation: Invocation, config_path: Path, environ: Mapping[str, str]) -> int:
    command = shlex.join(foreground_command(invocation, config_path))
    print(f"{command} > {shlex.quote(str(daemon_out_file(environ)))} 2>&1 < /dev/null")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of bin/zkServer.py and the `zkServer` console script; returns the exit code."""
    env = dict(os.environ) if environ is None else dict(environ)
    invocation = parse_args(sys.argv[1:] if argv is None else argv)
    if invocation is None:
        print(USAGE, file=sys.stderr)
        return EXIT_FAILED
    if invocation.verb == "version":
        return cmd_version()
    config_path = find_config(invocation, env)
    verbs = {
        "start": cmd_start,
        "start-foreground": cmd_start_foreground,
        "stop": cmd_stop,
        "restart": cmd_restart,
        "status": cmd_status,
        "print-cmd": cmd_print_cmd,
    }
    verb = verbs.get(invocation.verb)
    if verb is None:
        print(USAGE, file=sys.stderr)
        return EXIT_FAILED
    print(f"Using config: {config_path}", file=sys.stderr)
    return verb(invocation, config_path, env)


if __name__ == "__main__":
    sys.exit(main())
