"""Four-letter words on the client port (FourLetterCommands + the *Command classes).

Rule 1: every known word is recognised; one not in 4lw.commands.whitelist gets
        "<cmd> is not executed because it is not in the whitelist.\n".
Rule 2: output layouts follow Apache ZooKeeper 3.8 line for line (PROTOCOL.md section 7),
        because monitoring scripts parse them; `ruok`, `isro` and `gtmk` end without a newline.
Rule 3: mntr (and the AdminServer's `monitor`, and Prometheus) report only what pyzk really
        measures, under Apache's key names and in Apache's key order (`monitor_values`).
        A key pyzk has no measurement for is left out rather than faked.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import struct
import sys
import time
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from pyzk.config.errors import ConfigError
from pyzk.config.servers import QuorumServer, parse_server
from pyzk.metrics import COUNTER_NAMES, SUMMARY_NAMES
from pyzk.version import FULL_VERSION

if TYPE_CHECKING:
    from pyzk.pipeline.clientsession import ClientSession
    from pyzk.pipeline.zkserver import ZooKeeperServer
    from pyzk.quorum.verifier import QuorumMaj

FOUR_LETTER_WORDS = frozenset(
    w.encode()
    for w in (
        "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr",
        "ruok", "srst", "srvr", "stat", "stmk", "wchc", "wchp", "wchs",
    )
) | {b"\xff\xf4\xff\xfd"}

TELNET_CLOSE = "\xff\xf4\xff\xfd"
NOT_SERVING = "This ZooKeeper instance is not currently serving requests\n"
START_MONOTONIC = time.monotonic()
_U64 = 0xFFFFFFFFFFFFFFFF

MonitorValue = int | float | str


def java_double(value: float) -> str:
    """A double as Java prints it after ZooKeeper's HALF_UP rounding to 4 places."""
    d = Decimal(repr(float(value))).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    text = format(d.normalize(), "f")
    return text if "." in text else text + ".0"


def rounded_avg_ms(total_ms: int, count: int) -> float:
    """ServerStats.getAvgLatency: the mean rounded HALF_UP to 4 decimals."""
    return float(java_double(total_ms / count)) if count else 0.0


def run_four_letter_word(server: ZooKeeperServer, word: str, rest: bytes) -> str:
    """The reply text for `word`; `rest` is what followed it in the first packet (stmk's mask)."""
    if word == TELNET_CLOSE or not word.isascii():
        return ""
    if word not in server.config.four_letter_words:
        return f"{word} is not executed because it is not in the whitelist.\n"
    if word == "stmk":
        return _stmk(server, rest)
    handler = _COMMANDS.get(word)
    if handler is None:
        return ""
    if word not in _ANSWER_WHEN_NOT_SERVING and not server.serving:
        return NOT_SERVING
    return handler(server)


# ---- srvr / stat / cons ------------------------------------------------------------------


def _latency_line(server: ZooKeeperServer) -> str:
    s = server.stats
    lo = s.latency_min_ms if s.latency_min_ms is not None else 0
    avg = rounded_avg_ms(s.latency_total_ms, s.latency_count)
    return f"Latency min/avg/max: {lo}/{java_double(avg)}/{s.latency_max_ms}\n"


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
        + _proposal_sizes_line(server)
    )


def _proposal_sizes_line(server: ZooKeeperServer) -> str:
    """The leader's "Proposal sizes last/min/max" line (srvr and stat)."""
    if server.mode != "leader" or server.quorum_monitor is None:
        return ""
    values = server.quorum_monitor()
    return (f"Proposal sizes last/min/max: {values['last_proposal_size']}/"
            f"{values['min_proposal_size']}/{values['max_proposal_size']}\n")


def _srvr(server: ZooKeeperServer) -> str:
    return f"Zookeeper version: {FULL_VERSION}\n" + _srvr_body(server)


def interest_ops(conn: ClientSession) -> int:
    """NIO's interest set as cons prints it: OP_READ (1) once a session is established."""
    return 1 if conn.established and not conn.closed else 0


def connection_avg_latency_ms(conn: ClientSession) -> int:
    # ServerCnxn.getAvgLatency is a long division in 3.8.
    return conn.latency_total_ms // conn.latency_count if conn.latency_count else 0


def _client_line(conn: ClientSession, full: bool) -> str:
    line = (f" /{conn.remote_ip}:{conn.remote_port}[{interest_ops(conn)}]"
            f"(queued={len(conn.pending)},recved={conn.packets_received},sent={conn.packets_sent}")
    if full and conn.session_id:
        line += (f",sid=0x{conn.session_id & _U64:x},lop={conn.last_op},est={conn.established_ms},"
                 f"to={conn.timeout_ms}")
        if conn.last_cxid >= 0:
            line += f",lcxid=0x{conn.last_cxid:x}"
        line += (f",lzxid=0x{conn.last_zxid & _U64:x},lresp={conn.last_response_ms},"
                 f"llat={conn.last_latency_ms},minlat={conn.latency_min_ms or 0},"
                 f"avglat={connection_avg_latency_ms(conn)},maxlat={conn.latency_max_ms}")
    return line + ")\n"


def _stat(server: ZooKeeperServer) -> str:
    clients = "".join(_client_line(c, False) for c in list(server.all_connections))
    return f"Zookeeper version: {FULL_VERSION}\nClients:\n{clients}\n" + _srvr_body(server)


def _cons(server: ZooKeeperServer) -> str:
    return "".join(_client_line(c, True) for c in list(server.all_connections)) + "\n"


# ---- conf / dirs / envi ------------------------------------------------------------------


def data_dir_path(server: ZooKeeperServer) -> str:
    return os.path.join(str(server.config.data_dir), "version-2")


def data_log_dir_path(server: ZooKeeperServer) -> str:
    return os.path.join(str(server.config.data_log_dir), "version-2")


def dir_size(path: str) -> int:
    """FileTxnSnapLog.getDataDirSize: the summed size of the files directly in `path`."""
    try:
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    except OSError:
        return 0


def conf_values(server: ZooKeeperServer) -> list[tuple[str, int | str]]:
    """ZooKeeperServerConf.toMap, standalone form: (admin key, value) in its order."""
    c = server.config
    return [
        ("client_port", c.client_port if c.client_port is not None else -1),
        ("data_dir", data_dir_path(server)),
        ("data_log_dir", data_log_dir_path(server)),
        ("tick_time", c.tick_time_ms),
        ("max_client_cnxns", c.max_client_cnxns),
        ("min_session_timeout", c.session_timeout_ms_min),
        ("max_session_timeout", c.session_timeout_ms_max),
        ("server_id", 0 if c.standalone else c.server_id),
        ("client_port_listen_backlog", c.client_port_listen_backlog),
    ]


def _conf(server: ZooKeeperServer) -> str:
    c = server.config
    v = dict(conf_values(server))
    lines = [
        f"clientPort={v['client_port']}",
        f"secureClientPort={c.secure_client_port if c.secure_client_port is not None else -1}",
        f"dataDir={v['data_dir']}",
        f"dataDirSize={dir_size(data_dir_path(server))}",
        f"dataLogDir={v['data_log_dir']}",
        f"dataLogSize={dir_size(data_log_dir_path(server))}",
        f"tickTime={v['tick_time']}",
        f"maxClientCnxns={v['max_client_cnxns']}",
        f"minSessionTimeout={v['min_session_timeout']}",
        f"maxSessionTimeout={v['max_session_timeout']}",
        f"clientPortListenBacklog={v['client_port_listen_backlog']}",
        f"serverId={v['server_id']}",
    ]
    view = server.quorum_view() if server.quorum_view is not None else None
    if view is not None:
        # QuorumPeerConfig's part of ZooKeeperServerConf (an ensemble member): its own
        # ports, its learner type's ordinal and the active membership (QuorumVerifier.toString).
        active = view["active"]
        me = member(active, view["my_id"])
        lines += [
            f"initLimit={c.init_limit_ticks}",
            f"syncLimit={c.sync_limit_ticks}",
            f"electionAlg={c.election_alg}",
            f"electionPort={me.election_port if me else -1}",
            f"quorumPort={me.quorum_port if me else -1}",
            f"peerType={1 if view['my_id'] in active.observers else 0}",
            "membership: ",
            active.config_text(),
        ]
    return "\n".join(lines) + "\n"


def member(active: QuorumMaj, sid: int) -> QuorumServer | None:
    """Member `sid` of an active config, parsed back from its `server.N` text (None when
    it is not a member)."""
    text = {**active.voters, **active.observers}.get(sid)
    if text is None:
        return None
    try:
        return parse_server(sid, text, True, "active config", 0, f"server.{sid}")
    except ConfigError:
        return None


def _dirs(server: ZooKeeperServer) -> str:
    return (f"datadir_size: {dir_size(data_dir_path(server))}\n"
            f"logdir_size: {dir_size(data_log_dir_path(server))}\n")


def environment() -> list[tuple[str, str]]:
    """Environment.list(): the Java property names, filled with this interpreter's facts."""
    return [
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
        ("user.name", getpass.getuser()),
        ("user.home", os.path.expanduser("~")),
        ("user.dir", os.getcwd()),
        ("os.memory.free", "0MB"),
        ("os.memory.max", "0MB"),
        ("os.memory.total", f"{_rss_mb()}MB"),
    ]


def _envi(server: ZooKeeperServer) -> str:
    return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in environment())


def _rss_mb() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // (1 << 20)
    except OSError:
        return 0


# ---- small ones --------------------------------------------------------------------------


def _ruok(server: ZooKeeperServer) -> str:
    return "imok"


def _isro(server: ZooKeeperServer) -> str:
    if not server.serving:
        return "null"
    return "ro" if server.mode == "read-only" else "rw"


def _gtmk(server: ZooKeeperServer) -> str:
    return str(server.trace_mask)


def _stmk(server: ZooKeeperServer, rest: bytes) -> str:
    # NIOServerCnxn reads the 8-byte mask right after the word; without it the read
    # underflows and the connection closes with no output.
    if len(rest) < 8:
        return ""
    server.trace_mask = struct.unpack(">q", rest[:8])[0]
    return str(server.trace_mask)


def _srst(server: ZooKeeperServer) -> str:
    server.stats.reset()
    return "Server stats reset.\n"


def _crst(server: ZooKeeperServer) -> str:
    for conn in list(server.all_connections):
        conn.reset_stats()
    return "Connection stats reset.\n"


# ---- watches -----------------------------------------------------------------------------


def watches_by_session(server: ZooKeeperServer) -> dict[int, list[str]]:
    """DataTree.getWatches: the data-watch table only (as 3.8 reports it)."""
    return {w.session_id & _U64: list(paths) for w, paths in server.watches.data.by_watcher.items()}


def watches_by_path(server: ZooKeeperServer) -> dict[str, list[int]]:
    return {path: [w.session_id & _U64 for w in watchers]
            for path, watchers in server.watches.data.by_path.items()}


def watch_summary(server: ZooKeeperServer) -> tuple[int, int, int]:
    """(connections, paths, total watches) of the data-watch table."""
    table = server.watches.data
    total = sum(len(w) for w in table.by_path.values())
    return len(table.by_watcher), len(table.by_path), total


def _wchs(server: ZooKeeperServer) -> str:
    connections, paths, total = watch_summary(server)
    return f"{connections} connections watching {paths} paths\nTotal watches:{total}\n"


def _wchc(server: ZooKeeperServer) -> str:
    out = "".join(f"0x{sid:x}\n" + "".join(f"\t{p}\n" for p in paths)
                  for sid, paths in watches_by_session(server).items())
    return out + "\n"


def _wchp(server: ZooKeeperServer) -> str:
    out = "".join(f"{path}\n" + "".join(f"\t0x{sid:x}\n" for sid in sids)
                  for path, sids in watches_by_path(server).items())
    return out + "\n"


# ---- dump --------------------------------------------------------------------------------


def _java_date(epoch_ms: float) -> str:
    """java.util.Date.toString()."""
    return time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(epoch_ms / 1000))


def _dump(server: ZooKeeperServer) -> str:
    # Bucket deadlines are on the monotonic clock; shown as wall time, as
    # Time.elapsedTimeToDate does. Connection expiry sets exist only in the NIO factory;
    # pyzk has none, so it prints what the Netty factory prints: the heading alone.
    buckets = server.sessions.buckets()
    total = sum(len(v) for v in buckets.values())
    offset_ms = server.wall_ms() - server.now_ms()
    out = f"SessionTracker dump:\nSession Sets ({len(buckets)})/({total}):\n"
    for deadline, sids in buckets.items():
        out += (f"{len(sids)} expire at {_java_date(deadline + offset_ms)}:\n"
                + "".join(f"\t0x{s & _U64:x}\n" for s in sids))
    eph = server.tree.ephemerals
    out += f"ephemeral nodes dump:\nSessions with Ephemerals ({len(eph)}):\n"
    for sid, paths in eph.items():
        out += f"0x{sid & _U64:x}:\n" + "".join(f"\t{p}\n" for p in paths)
    return out + "Connections dump:\n"


def _hash(server: ZooKeeperServer) -> str:
    # pyzk keeps no digest history yet (ZooKeeper records one every 128 txns); an empty
    # history prints nothing, as Apache does before its first entry.
    return ""


# ---- mntr --------------------------------------------------------------------------------


def monitor_values(server: ZooKeeperServer) -> list[tuple[str, MonitorValue]]:
    """ZooKeeperServer.dumpMonitorValues + the registered metrics, for what pyzk measures.

    The order is the one Apache 3.8 prints (its metrics map's hash order), restricted to
    these keys, so that line-by-line comparisons and scripts keyed on position agree.
    """
    s = server.stats
    tree = server.tree
    measured: dict[str, MonitorValue] = {
        "version": FULL_VERSION,
        "server_state": server.mode,
        "ephemerals_count": sum(len(p) for p in tree.ephemerals.values()),
        "num_alive_connections": len(server.all_connections),
        "avg_latency": rounded_avg_ms(s.latency_total_ms, s.latency_count),
        "outstanding_requests": s.outstanding,
        "znode_count": tree.node_count,
        "global_sessions": len(server.sessions),
        "non_mtls_remote_conn_count": 0,  # counted only for TLS clients without a cert
        "packets_sent": s.packets_sent,
        "packets_received": s.packets_received,
        # pyzk never drops connections at random (no connection throttling).
        "connection_drop_probability": 0.0,
        "watch_count": server.watches.watch_count,
        "auth_failed_count": s.auth_failed_count,
        "min_latency": s.latency_min_ms if s.latency_min_ms is not None else 0,
        "max_file_descriptor_count": _max_fds(),
        "approximate_data_size": tree.approximate_data_size(),
        "open_file_descriptor_count": _open_fds(),
        "local_sessions": len(server.local_sessions) if server.local_sessions is not None else 0,
        "uptime": int((time.monotonic() - START_MONOTONIC) * 1000),
        "max_latency": s.latency_max_ms,
        "outstanding_tls_handshake": 0,  # no TLS client port
        "non_mtls_local_conn_count": 0,
        # Structural zeros: no throttling, no digest checks, no TLS handshake limit; and, of a
        # standalone server only, no quorum authentication and no voters.
        "throttled_ops": 0,
        "connection_drop_count": 0,
        "digest_mismatches_count": 0,
        "ensemble_auth_success": 0,
        "ensemble_auth_fail": 0,
        "quit_leading_due_to_disloyal_voter": 0,
        "ensemble_auth_skip": 0,
        "tls_handshake_exceeded": 0,
    }
    if server.mode != "standalone":
        measured = {k: v for k, v in measured.items() if k not in _STANDALONE_ONLY_ZEROS}
    # ServerMetrics: the Zab counters (zeros in standalone) and the summaries, every role.
    metrics = s.metrics
    measured.update(metrics.counter_values())
    measured.update(metrics.summary_values())
    if server.quorum_monitor is not None:
        measured.update(server.quorum_monitor())
    return [(key, measured[key]) for key in MNTR_KEY_ORDER if key in measured]


# Apache 3.8.0's mntr order (captured), for the keys pyzk reports.
MNTR_KEY_ORDER = (
    "version", "server_state", "peer_state", "ephemerals_count", "num_alive_connections", "avg_latency",
    "min_proposal_size", "outstanding_requests", "znode_count", "global_sessions", "non_mtls_remote_conn_count",
    "packets_sent",
    "packets_received", "max_proposal_size", "synced_followers", "connection_drop_probability", "watch_count",
    "synced_non_voting_followers", "synced_observers", "auth_failed_count", "min_latency",
    "max_file_descriptor_count", "approximate_data_size", "open_file_descriptor_count", "last_proposal_size",
    "pending_syncs", "leader_uptime", "local_sessions", "uptime", "max_latency", "outstanding_tls_handshake",
    "learners", "non_mtls_local_conn_count", "quorum_size", "proposal_count",
    "throttled_ops", "looking_count", "connection_drop_count", "learner_proposal_received_count",
    "digest_mismatches_count", "ensemble_auth_success", "learner_commit_received_count",
    "ensemble_auth_fail", "diff_count", "quit_leading_due_to_disloyal_voter", "snap_count",
    "commit_count", "ensemble_auth_skip", "tls_handshake_exceeded",
    # the summaries come after every scalar, each as avg_/min_/max_/cnt_/sum_
    *(f"{part}_{name}" for name in SUMMARY_NAMES for part in ("avg", "min", "max", "cnt", "sum")),
)

# Reported by ensemble roles only (QuorumZooKeeperServer, LeaderZooKeeperServer gauges).
QUORUM_ONLY_KEYS = frozenset({
    "peer_state", "quorum_size", "learners", "synced_followers", "synced_non_voting_followers",
    "synced_observers", "pending_syncs", "leader_uptime", "last_proposal_size", "min_proposal_size",
    "max_proposal_size",
})

# Zeros that hold only for a standalone server; an ensemble would have to measure them
# (quorum SASL outcomes, Leader.quitLeading), and does not yet.
_STANDALONE_ONLY_ZEROS = frozenset({
    "ensemble_auth_success", "ensemble_auth_fail", "ensemble_auth_skip",
    "quit_leading_due_to_disloyal_voter",
})

# Counters (Apache's getCounter names) among the mntr keys: Prometheus exports them as
# counters; the other numeric keys are ZooKeeperServer's gauges.
COUNTER_KEYS = frozenset({
    *COUNTER_NAMES, "throttled_ops", "connection_drop_count", "digest_mismatches_count",
    "ensemble_auth_success", "ensemble_auth_fail", "quit_leading_due_to_disloyal_voter",
    "ensemble_auth_skip", "tls_handshake_exceeded",
})


def _mntr(server: ZooKeeperServer) -> str:
    return "".join(f"zk_{k}\t{java_double(v) if isinstance(v, float) else v}\n"
                   for k, v in monitor_values(server))


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


_COMMANDS: dict[str, Callable[[ZooKeeperServer], str]] = {
    "conf": _conf, "cons": _cons, "crst": _crst, "dirs": _dirs, "dump": _dump, "envi": _envi,
    "gtmk": _gtmk, "hash": _hash, "isro": _isro, "mntr": _mntr, "ruok": _ruok, "srst": _srst,
    "srvr": _srvr, "stat": _stat, "wchc": _wchc, "wchp": _wchp, "wchs": _wchs,
}
# Commands that do not need a serving ZooKeeperServer (isro prints "null" itself).
_ANSWER_WHEN_NOT_SERVING = frozenset({"ruok", "envi", "gtmk", "isro"})
