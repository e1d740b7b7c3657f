"""`zkServer.py` verbs, as zkServer.sh has them: start, start-foreground, stop, restart, status,
version, print-cmd; plus init-config (zoo.cfg and myid from ZOO_* variables, pyzk.envconfig).

Rule 1: the config is found as zkServer.sh finds it: an explicit argument (a bare file name is
        looked up in $ZOOCFGDIR), else $ZOOCFGDIR/$ZOOCFG, with $ZOOCFG defaulting to zoo.cfg
        and $ZOOCFGDIR to `<home>/conf`. `--config <dir>` before the verb sets $ZOOCFGDIR.
        <home> is zkEnv.sh's ZOOKEEPER_PREFIX: the source checkout when pyzk runs from one
        (bin/zkServer.py, an editable install), else the working directory (an installed
        wheel: never site-packages).
Rule 2: `-Dname=value` arguments are Java system properties (kazoo's harness passes them);
        -D words in $SERVER_JVMFLAGS and $JVMFLAGS count too (zkServer.sh puts them on the
        java command line), the command line's own -D arguments winning.
Rule 3: logs go to -Dzookeeper.log.dir, else $ZOO_LOG_DIR, else `<home>/logs`; their level
        and appender follow pyzk.logsetup's rules.
Rule 4: a bad config exits 2 with one `<file>:<line>: <key>: <reason>` line on stderr
        (QuorumPeerMain's exit code for an invalid config).
Rule 5: `start` waits for an answer to `srvr` as long as the server process lives and makes
        progress (its CPU time or its log files grow), at most $ZOO_START_TIMEOUT seconds when
        that is set; when it gives up it says why and leaves the process running (a server
        that is merely slow, e.g. loading a big snapshot, is never signalled). `stop` waits up
        to `stop_wait_s` for the process to exit, then kills it.
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
from dataclasses import dataclass, field, replace
from pathlib import Path

from pyzk import envconfig
from pyzk.config import ConfigError, ServerConfig, load_config
from pyzk.logsetup import LOG_DIR_PROPERTY, LOG_FILE_NAME, configure_logging, log_settings

# Named explicitly: run as `python -m pyzk.cli`, __name__ would be "__main__".
logger = logging.getLogger("pyzk.cli")

ZOOKEEPER_COMPATIBLE_VERSION = "3.8.0"
PID_FILE_NAME = "zookeeper_server.pid"
# `start` gives up when the server made no progress (CPU time, log growth) for this long.
start_stall_s = 60.0
START_TIMEOUT_ENV = "ZOO_START_TIMEOUT"
stop_wait_s = 30.0
poll_interval_s = 0.1
srvr_timeout_s = 5.0
srvr_reply_bytes_max = 64 * 1024
log_tail_lines = 20

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID_CONFIG = 2

USAGE = ("Usage: zkServer.py [--config <conf-dir>] "
         "{start|start-foreground|stop|version|restart|status|print-cmd|init-config} "
         "[-Dname=value ...] [zoo.cfg]")

# The project root in a checkout (bin/zkServer.py and conf/ live here); in an installed wheel
# this is site-packages, which is never used for configs or logs (Rule 1).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def checkout_root() -> Path | None:
    """PROJECT_ROOT when pyzk runs from a source checkout, None in an installed wheel."""
    is_checkout = (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "bin" / "zkServer.py").is_file()
    return PROJECT_ROOT if is_checkout else None


def home_dir() -> Path:
    """Rule 1's <home>: zkEnv.sh's ZOOKEEPER_PREFIX for pyzk."""
    return checkout_root() or Path.cwd()


@dataclass(frozen=True, slots=True)
class Invocation:
    """The parsed command line."""

    verb: str
    config_arg: str | None
    system_properties: dict[str, str] = field(default_factory=dict)
    config_dir: str | None = None


def jvmflags_properties(environ: Mapping[str, str]) -> dict[str, str]:
    """Rule 2: the -D words of $SERVER_JVMFLAGS then $JVMFLAGS (other JVM flags are ignored)."""
    properties: dict[str, str] = {}
    for variable in ("SERVER_JVMFLAGS", "JVMFLAGS"):
        try:
            words = shlex.split(environ.get(variable, ""))
        except ValueError:
            words = environ.get(variable, "").split()
        for word in words:
            if word.startswith("-D") and len(word) > 2:
                name, _, value = word[2:].partition("=")
                properties[name] = value
    return properties


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
    config_dir = Path(invocation.config_dir or environ.get("ZOOCFGDIR") or home_dir() / "conf")
    if invocation.config_arg is None:
        return config_dir / environ.get("ZOOCFG", "zoo.cfg")
    given = Path(invocation.config_arg)
    bare_name = len(given.parts) == 1 and not given.is_absolute()
    if bare_name and ((config_dir / given).exists() or not given.exists()):
        return config_dir / given
    return given


def log_dir(environ: Mapping[str, str], properties: Mapping[str, str] | None = None) -> Path:
    """Rule 3: -Dzookeeper.log.dir, else $ZOO_LOG_DIR, else <home>/logs."""
    given = (properties or {}).get(LOG_DIR_PROPERTY) or environ.get("ZOO_LOG_DIR")
    return Path(given) if given else home_dir() / "logs"


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
    settings = log_settings(invocation.system_properties, environ.get("ZOO_LOG4J_PROP"))
    configure_logging(my_id=config.my_id, log_dir=log_dir(environ, invocation.system_properties),
                      log4j_prop=settings.log4j_prop, module_levels=settings.module_levels)
    logger.info("Reading configuration from: %s", config_path)
    for problem in settings.problems:
        logger.warning("Logging settings: %s", problem)
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
    root = checkout_root()
    if root is not None:  # an installed wheel finds pyzk on its own sys.path
        child_env["PYTHONPATH"] = os.pathsep.join(
            [str(root), *filter(None, [environ.get("PYTHONPATH")])])
    with open(out_path, "ab") as out, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen(
            foreground_command(invocation, config_path), stdin=devnull, stdout=out,
            stderr=subprocess.STDOUT, env=child_env, start_new_session=True,
        )
    pid_path.write_text(str(child.pid))
    log_path = log_dir(environ, invocation.system_properties) / LOG_FILE_NAME
    try:
        timeout_s = start_timeout_s(environ)
    except ValueError as error:
        print(f"(bad {START_TIMEOUT_ENV}: {error}; waiting without a timeout) ", end="", flush=True)
        timeout_s = None
    outcome, waited_s = wait_until_serving(child, config, [out_path, log_path], timeout_s)
    if outcome == "serving":
        print("STARTED")
        return EXIT_OK
    if outcome == "exited":
        pid_path.unlink(missing_ok=True)
        print(f"FAILED TO START (the server exited with code {child.returncode})")
    else:
        why = (f"{START_TIMEOUT_ENV}={timeout_s:g} s passed" if outcome == "timeout"
               else f"it made no progress (CPU time, log output) for {start_stall_s:g} s")
        print(f"NOT SERVING YET: no answer to srvr after {waited_s:.0f} s and {why}; the server "
              f"is still running as process {child.pid} and was left running "
              f"(`zkServer.py status` to check again, `zkServer.py stop` to stop it)")
    for path in (out_path, log_path):
        lines = tail(path)
        if lines:
            print(f"--- last lines of {path}:", file=sys.stderr)
            print("\n".join(lines), file=sys.stderr)
    return EXIT_FAILED


def start_timeout_s(environ: Mapping[str, str]) -> float | None:
    """$ZOO_START_TIMEOUT in seconds; unset, empty or 0: no timeout (Rule 5)."""
    text = environ.get(START_TIMEOUT_ENV, "").strip()
    if not text:
        return None
    value = float(text)
    if value < 0 or value != value:
        raise ValueError(f"{text!r} is not a number of seconds >= 0")
    return value or None


def process_cpu_ticks(pid: int) -> int | None:
    """utime + stime of pid from /proc (None without /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def progress_signature(pid: int, watched: Sequence[Path]) -> tuple[int | None, ...]:
    """Changes whenever the server uses CPU or writes to one of its log files."""
    return (process_cpu_ticks(pid), *(_file_size(path) for path in watched))


def wait_until_serving(child: subprocess.Popen[bytes], config: ServerConfig,
                       watched: Sequence[Path], timeout_s: float | None) -> tuple[str, float]:
    """Rule 5's wait: ("serving" | "exited" | "stalled" | "timeout", seconds waited)."""
    started = last_progress = time.monotonic()
    last_signature = progress_signature(child.pid, watched)
    while True:
        if child.poll() is not None:
            return "exited", time.monotonic() - started
        if config.client_port is None:
            # No plaintext port to ask (TLS only): alive after a second is what zkServer.sh checks.
            time.sleep(1.0)
            return ("serving" if child.poll() is None else "exited"), time.monotonic() - started
        if ask_srvr(config.client_port_address, config.client_port, timeout_s=1.0) is not None:
            return "serving", time.monotonic() - started
        now = time.monotonic()
        signature = progress_signature(child.pid, watched)
        if signature != last_signature:
            last_signature, last_progress = signature, now
        if timeout_s is not None and now - started >= timeout_s:
            return "timeout", now - started
        if now - last_progress >= start_stall_s:
            return "stalled", now - started
        time.sleep(poll_interval_s)


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


def cmd_init_config(environ: Mapping[str, str]) -> int:
    """zoo.cfg and myid from ZOO_* variables where missing (pyzk.envconfig)."""
    try:
        written = envconfig.write_config(environ)
    except OSError as error:
        print(f"init-config: {error}", file=sys.stderr)
        return EXIT_FAILED
    for line in envconfig.describe(written):
        print(line)
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
    if invocation.verb == "init-config":
        return cmd_init_config(env)
    from_env = jvmflags_properties(env)
    if from_env:
        invocation = replace(invocation, system_properties={**from_env, **invocation.system_properties})
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
