"""Four-letter words on the client port (FourLetterCommands + the *Command classes).

Rule 1: every known word is recognised; one not in 4lw.commands.whitelist gets
        "<cmd> is not executed because it is not in the whitelist.\n".
Rule 2: output layouts follow Apache ZooKeeper 3.8 line for line (PROTOCOL.md section 7),
        because monitoring scripts parse them; `ruok` and `isro` end without a newline.
"""

from __future__ import annotations

import os
import platform
import socket
import struct
import sys
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from pyzk.version import FULL_VERSION

if TYPE_CHECKING:
    from pyzk.server.zkserver import ClientSession, ZooKeeperServer

FOUR_LETTER_WORDS = frozenset(
    w.encode()
    for w in (
        "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr",
        "ruok", "srst", "srvr", "stat", "stmk", "wchc", "wchp", "wchs",
    )
) | {b"\xff\xf4\xff\xfd"}

NOT_SERVING = "This ZooKeeper instance is not currently serving requests\n"
START_MONOTONIC = time.monotonic()


def java_double(value: float) -> str:
    """A double as Java prints it after ZooKeeper's HALF_UP rounding to 4 places."""
    d = Decimal(repr(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    text = format(d.normalize(), "f")
    return text if "." in text else text + ".0"


def run_four_letter_word(server: ZooKeeperServer, word: str, rest: bytes) -> str:
    if word == "\xff\xf4\xff\xfd" or not word.isascii():
        return ""
    if word not in server.config.four_letter_words:
        return f"{word} is not executed because it is not in the whitelist.\n"
    handler = _COMMANDS.get(word)
    if handler is None:
        return ""
    if word == "stmk":
        return _stmk(server, rest)
    return handler(server)


def _latency_line(server: ZooKeeperServer) -> str:
    s = server.stats
    lo = s.latency_min_ms if s.latency_min_ms is not None else 0
    return f"Latency min/avg/max: {lo}/{java_double(s.latency_avg_ms)}/{s.latency_max_ms}\n"


def _srvr_body(server: ZooKeeperServer) -> str:
    s = server.stats
    return (
        _latency_line(server)
        + f"Received: {s.packets_received}\n"
        + f"Sent: {s.packets_sent}\n"
        + f"Connections: {len(server.all_connections)}\n"
        + f"Outstanding: {s.outstanding}\n"
        + f"Zxid: 0x{server.tree.last_processed_zxid:x}\n"
        + f"Mode: {server.mode}\n"
        + f"Node count: {server.tree.node_count}\n"
    )


def _srvr(server: ZooKeeperServer) -> str:
    return f"Zookeeper version: {FULL_VERSION}\n" + _srvr_body(server)


def _client_line(conn: ClientSession, full: bool) -> str:
    base = f" /{conn.remote_ip}:{conn.remote_port}[{1 if conn.established else 0}](queued={len(conn.pending)},recved={conn.packets_received},sent={conn.packets_sent}"
    if full and conn.session_id:
        avg = conn.latency_total_ms / conn.latency_count if conn.latency_count else 0.0
        base += (
            f",sid=0x{conn.session_id & 0xFFFFFFFFFFFFFFFF:x},lop={conn.last_op},est={conn.established_ms},"
            f"to={conn.timeout_ms}"
        )
        if conn.last_cxid >= 0:
            base += f",lcxid=0x{conn.last_cxid:x}"
        base += (
            f",lzxid=0x{conn.last_zxid & 0xFFFFFFFFFFFFFFFF:x},lresp={conn.last_response_ms},"
            f"llat={conn.last_latency_ms},minlat={conn.latency_min_ms or 0},"
            f"avglat={java_double(avg)},maxlat={conn.latency_max_ms}"
        )
    return base + ")\n"


def _stat(server: ZooKeeperServer) -> str:
    out = f"Zookeeper version: {FULL_VERSION}\nClients:\n"
    for conn in list(server.all_connections):
        out += _client_line(conn, False) + "\n"
    return out + "\n" + _srvr_body(server)


def _cons(server: ZooKeeperServer) -> str:
    return "".join(_client_line(c, True) for c in list(server.all_connections)) + "\n"


def _conf(server: ZooKeeperServer) -> str:
    c = server.config
    data_dir = os.path.join(str(c.data_dir), "version-2")
    log_dir = os.path.join(str(c.data_log_dir), "version-2")
    lines = [
        f"clientPort={c.client_port if c.client_port is not None else -1}",
        f"secureClientPort={c.secure_client_port if c.secure_client_port is not None else -1}",
        f"dataDir={data_dir}",
        f"dataDirSize={_dir_size(data_dir)}",
        f"dataLogDir={log_dir}",
        f"dataLogSize={_dir_size(log_dir)}",
        f"tickTime={c.tick_time_ms}",
        f"maxClientCnxns={c.max_client_cnxns}",
        f"minSessionTimeout={c.session_timeout_ms_min}",
        f"maxSessionTimeout={c.session_timeout_ms_max}",
        "clientPortListenBacklog=-1",
        f"serverId={0 if c.standalone else c.server_id}",
    ]
    return "\n".join(lines) + "\n"


def _dir_size(path: str) -> int:
    try:
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    except OSError:
        return 0


def _dirs(server: ZooKeeperServer) -> str:
    c = server.config
    return (
        f"datadir_size: {_dir_size(os.path.join(str(c.data_dir), 'version-2'))}\n"
        f"logdir_size: {_dir_size(os.path.join(str(c.data_log_dir), 'version-2'))}\n"
    )


def _envi(server: ZooKeeperServer) -> str:
    entries = [
        ("zookeeper.version", FULL_VERSION),
        ("host.name", socket.gethostname()),
        ("java.version", "(pyzk) Python " + platform.python_version()),
        ("java.vendor", platform.python_implementation()),
        ("java.home", sys.prefix),
        ("java.class.path", os.pathsep.join(sys.path)),
        ("java.library.path", ""),
        ("java.io.tmpdir", os.environ.get("TMPDIR", "/tmp")),
        ("java.compiler", "<NA>"),
        ("os.name", platform.system()),
        ("os.arch", platform.machine()),
        ("os.version", platform.release()),
        ("user.name", os.environ.get("USER", "")),
        ("user.home", os.path.expanduser("~")),
        ("user.dir", os.getcwd()),
        ("os.memory.free", "0MB"),
        ("os.memory.max", "0MB"),
        ("os.memory.total", f"{_rss_mb()}MB"),
    ]
    return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in entries)


def _rss_mb() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // (1 << 20)
    except OSError:
        return 0


def _ruok(server: ZooKeeperServer) -> str:
    return "imok"


def _isro(server: ZooKeeperServer) -> str:
    return "rw"


def _gtmk(server: ZooKeeperServer) -> str:
    return str(server.trace_mask)


def _stmk(server: ZooKeeperServer, rest: bytes) -> str:
    if len(rest) >= 8:
        server.trace_mask = struct.unpack(">q", rest[:8])[0]
    return str(server.trace_mask)


def _srst(server: ZooKeeperServer) -> str:
    server.stats.reset()
    return "Server stats reset.\n"


def _crst(server: ZooKeeperServer) -> str:
    for conn in list(server.all_connections):
        conn.reset_stats()
    return "Connection stats reset.\n"


def _wchs(server: ZooKeeperServer) -> str:
    table = server.watches.data
    total = sum(len(w) for w in table.by_path.values())
    return f"{len(table.by_watcher)} connections watching {len(table.by_path)} paths\nTotal watches:{total}\n"


def _wchc(server: ZooKeeperServer) -> str:
    out = ""
    for watcher, paths in server.watches.data.by_watcher.items():
        out += f"0x{watcher.session_id & 0xFFFFFFFFFFFFFFFF:x}\n" + "".join(f"\t{p}\n" for p in paths)
    return out + "\n"


def _wchp(server: ZooKeeperServer) -> str:
    out = ""
    for path, watchers in server.watches.data.by_path.items():
        out += f"{path}\n" + "".join(f"\t0x{w.session_id & 0xFFFFFFFFFFFFFFFF:x}\n" for w in watchers)
    return out + "\n"


def _dump(server: ZooKeeperServer) -> str:
    buckets = server.sessions.buckets()
    total = sum(len(v) for v in buckets.values())
    out = f"SessionTracker dump:\nSession Sets ({len(buckets)})/({total}):\n"
    for deadline, sids in buckets.items():
        when = time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(deadline / 1000))
        out += f"{len(sids)} expire at {when}:\n" + "".join(f"\t0x{s & 0xFFFFFFFFFFFFFFFF:x}\n" for s in sids)
    eph = server.tree.ephemerals
    out += f"ephemeral nodes dump:\nSessions with Ephemerals ({len(eph)}):\n"
    for sid, paths in eph.items():
        out += f"0x{sid & 0xFFFFFFFFFFFFFFFF:x}:\n" + "".join(f"\t{p}\n" for p in paths)
    return out


def _mntr(server: ZooKeeperServer) -> str:
    s = server.stats
    tree = server.tree
    watch_count = server.watches.watch_count
    values: list[tuple[str, object]] = [
        ("version", FULL_VERSION),
        ("server_state", server.mode),
        ("avg_latency", java_double(s.latency_avg_ms)),
        ("max_latency", s.latency_max_ms),
        ("min_latency", s.latency_min_ms if s.latency_min_ms is not None else 0),
        ("packets_received", s.packets_received),
        ("packets_sent", s.packets_sent),
        ("num_alive_connections", len(server.all_connections)),
        ("outstanding_requests", s.outstanding),
        ("znode_count", tree.node_count),
        ("watch_count", watch_count),
        ("ephemerals_count", sum(len(p) for p in tree.ephemerals.values())),
        ("approximate_data_size", tree.approximate_data_size()),
        ("open_file_descriptor_count", _open_fds()),
        ("max_file_descriptor_count", _max_fds()),
        ("global_sessions", len(server.sessions)),
        ("local_sessions", 0),
        ("uptime", int((time.monotonic() - START_MONOTONIC) * 1000)),
        ("last_client_response_size", -1),
        ("max_client_response_size", -1),
        ("min_client_response_size", -1),
        ("connection_drop_probability", "0.0"),
        ("outstanding_tls_handshake", 0),
        ("auth_failed_count", 0),
        ("digest_mismatches_count", 0),
    ]
    return "".join(f"zk_{k}\t{v}\n" for k, v in values)


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def _max_fds() -> int:
    try:
        import resource

        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError):
        return -1


def _hash(server: ZooKeeperServer) -> str:
    return ""


_COMMANDS = {
    "conf": _conf, "cons": _cons, "crst": _crst, "dirs": _dirs, "dump": _dump, "envi": _envi,
    "gtmk": _gtmk, "hash": _hash, "isro": _isro, "mntr": _mntr, "ruok": _ruok, "srst": _srst,
    "srvr": _srvr, "stat": _stat, "stmk": _gtmk, "wchc": _wchc, "wchp": _wchp, "wchs": _wchs,
}
