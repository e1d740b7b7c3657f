"""The AdminServer: ZooKeeper 3.8's JSON commands over a small asyncio HTTP/1.1 server.

Rule 1: names, aliases, field names and field order are those of Apache's Commands.java;
        a reply is the command's fields, then "command" (the primary name) and "error"
        (CommandResponse.toMap), printed the way Jackson's default pretty printer prints.
Rule 2: an unknown command answers HTTP 200 with {"command": <name>, "error": "Unknown
        command: <name>"}; GET <commandURL> lists the commands as Jetty's servlet does.
Rule 3: fields pyzk does not measure are left out rather than faked (see fourletter Rule 3).
Rule 4: the HTTP side is deliberately small: GET only, one request per connection
        (`Connection: close`), a bounded request head, an idle timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from pyzk.server import fourletter as fl
from pyzk.storage.files import last_snapshot
from pyzk.version import FULL_VERSION

if TYPE_CHECKING:
    from pyzk.pipeline.zkserver import ZooKeeperServer

logger = logging.getLogger(__name__)

request_head_bytes_max = 64 * 1024
_U64 = 0xFFFFFFFFFFFFFFFF
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request"}


# ---- JSON as Jackson's DefaultPrettyPrinter writes it ------------------------------------


def jackson_json(value: Any, depth: int = 0) -> str:
    """`{` + entries at 2 spaces per object level + `}`; arrays inline as `[ a, b ]`."""
    if isinstance(value, dict):
        if not value:
            return "{ }"
        pad = "  " * (depth + 1)
        entries = ",\n".join(f"{pad}{json.dumps(str(k), ensure_ascii=False)} : "
                             f"{jackson_json(v, depth + 1)}" for k, v in value.items())
        return "{\n" + entries + "\n" + "  " * depth + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(jackson_json(v, depth) for v in value) + " ]"
    if isinstance(value, float):
        return fl.java_double(value)
    return json.dumps(value, ensure_ascii=False)


# ---- commands -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdminContext:
    """What the commands read besides the ZooKeeperServer."""

    initial_configuration: str | None = ""


CommandRun = Callable[["ZooKeeperServer", dict[str, str], AdminContext], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Command:
    names: tuple[str, ...]
    run: CommandRun
    server_required: bool = True

    @property
    def primary_name(self) -> str:
        return self.names[0]


def _connection_info(conn: Any, brief: bool) -> dict[str, Any]:
    """ServerCnxn.getConnectionInfo."""
    info: dict[str, Any] = {
        "remote_socket_address": f"{conn.remote_ip}:{conn.remote_port}",
        "interest_ops": fl.interest_ops(conn),
        "outstanding_requests": len(conn.pending),
        "packets_received": conn.packets_received,
        "packets_sent": conn.packets_sent,
    }
    if not brief:
        info.update({
            "session_id": conn.session_id,
            "last_operation": conn.last_op,
            "established": conn.established_ms,
            "session_timeout": conn.timeout_ms,
            "last_cxid": conn.last_cxid,
            "last_zxid": conn.last_zxid,
            "last_response_time": conn.last_response_ms,
            "last_latency": conn.last_latency_ms,
            "min_latency": conn.latency_min_ms or 0,
            "avg_latency": fl.connection_avg_latency_ms(conn),
            "max_latency": conn.latency_max_ms,
        })
    return info


def _connections(server: ZooKeeperServer, brief: bool) -> dict[str, Any]:
    return {"connections": [_connection_info(c, brief) for c in list(server.all_connections)],
            "secure_connections": []}


def _server_stats(server: ZooKeeperServer) -> dict[str, Any]:
    """SrvrCommand: ServerStats as Jackson serialises it, minus what pyzk does not measure
    (client_response_stats)."""
    s = server.stats
    values = dict(fl.monitor_values(server))
    stats = {
        "packets_sent": s.packets_sent,
        "packets_received": s.packets_received,
        "uptime": values["uptime"],
        "data_dir_size": fl.dir_size(fl.data_dir_path(server)),
        "log_dir_size": fl.dir_size(fl.data_log_dir_path(server)),
        "provider_null": False,
        "server_state": server.mode,
        "last_processed_zxid": server.tree.last_processed_zxid,
        "outstanding_requests": s.outstanding,
        "avg_latency": values["avg_latency"],
        "max_latency": s.latency_max_ms,
        "min_latency": values["min_latency"],
        "num_alive_client_connections": len(server.all_connections),
        "non_mtlsremote_conn_count": 0,
        "non_mtlslocal_conn_count": 0,
        "fsync_threshold_exceed_count": s.metrics.fsync_threshold_exceed_count,
        "auth_failed_count": s.auth_failed_count,
    }
    out: dict[str, Any] = {"version": FULL_VERSION, "read_only": server.mode == "read-only",
                           "server_stats": stats}
    if server.mode == "leader" and server.quorum_monitor is not None:
        # Leader.getProposalStats: the proposal sizes also in mntr and srvr.
        quorum = server.quorum_monitor()
        out["proposal_stats"] = {"last_buffer_size": quorum["last_proposal_size"],
                                 "min_buffer_size": quorum["min_proposal_size"],
                                 "max_buffer_size": quorum["max_proposal_size"]}
    out["node_count"] = server.tree.node_count
    return out


def _set_trace_mask(server: ZooKeeperServer, kwargs: dict[str, str], _: AdminContext) -> dict[str, Any]:
    text = kwargs.get("traceMask")
    if text is None:
        return {"error": "setTraceMask requires long traceMask argument"}
    try:
        mask = int(text)
        if not -(1 << 63) <= mask < (1 << 63):
            raise ValueError(text)
    except ValueError:
        return {"error": f"setTraceMask requires long traceMask argument, got {text}"}
    server.trace_mask = mask
    return {"tracemask": mask}


def _dump(server: ZooKeeperServer) -> dict[str, Any]:
    # A learner's session tracker expires nothing itself (the leader does): Apache's
    # LearnerSessionTracker reports an empty expiry map.
    learner = server.mode in ("follower", "observer")
    return {
        "expiry_time_to_session_ids": {} if learner else {
            str(deadline): [s & _U64 for s in sids] for deadline, sids in server.sessions.buckets().items()},
        "session_id_to_ephemeral_paths": {str(sid & _U64): list(paths)
                                          for sid, paths in server.tree.ephemerals.items()},
    }


def _last_snapshot(server: ZooKeeperServer) -> dict[str, Any]:
    """LastSnapshotCommand: the zxid (Long.toHexString, -1 when none) and the file's time in
    seconds (-1) of the newest valid snapshot."""
    info = last_snapshot(server.config.data_dir)
    zxid, timestamp = info if info is not None else (-1, -1)
    return {"zxid": f"{zxid & _U64:x}", "timestamp": timestamp}


def _leader(server: ZooKeeperServer) -> dict[str, Any]:
    """LeaderCommand: an ensemble member's view of its leader; standalone has none."""
    view = server.quorum_view() if server.quorum_view is not None else None
    if view is None:
        return {"error": "server is not initialized"}
    active = view["active"]
    leader = fl.member(active, view["leader_id"])
    return {"is_leader": view["is_leader"], "leader_id": view["leader_id"],
            "leader_ip": leader.host if leader is not None else ""}


def _voting_view(server: ZooKeeperServer) -> dict[str, Any]:
    """VotingViewCommand: the active config's voters; a member's own client address is the
    one it listens on, another's only when its server line names one."""
    view = server.quorum_view() if server.quorum_view is not None else None
    if view is None:
        return {"current_config": {}}
    config = server.config
    out: dict[str, Any] = {}
    for sid in view["active"].voters:
        member = fl.member(view["active"], sid)
        if member is None:
            continue
        client = "" if member.client_port is None else f"{member.client_host}:{member.client_port}"
        if sid == view["my_id"] and config.client_port:
            client = f"{config.client_port_address or '0.0.0.0'}:{config.client_port}"
        out[str(sid)] = {"server_addresses": [f"{member.host}:{member.quorum_port}"],
                         "election_addresses": [f"{member.host}:{member.election_port}"],
                         "client_address": client, "learner_type": member.role}
    return {"current_config": out}


def _java_socket_address(host: str, port: int) -> str:
    """An InetSocketAddress as Jackson writes it: the host name when it has one, else the
    address (IPv6 as Java prints it, uncompressed and bracketed), then ":port"."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"{host}:{port}"
    if address.version == 6:
        groups = address.exploded.split(":")
        return "[" + ":".join(f"{int(group, 16):x}" for group in groups) + f"]:{port}"
    return f"{host}:{port}"


def _multiple_addresses(host: str, port: int) -> dict[str, Any]:
    """MultipleAddresses as Jackson writes it (one address; reachability is not probed:
    every address counts as reachable)."""
    address = _java_socket_address(host, port)
    return {"empty": False, "all_addresses": [address], "all_reachable_addresses": [address],
            "one": address, "reachable_address": address, "wildcard_addresses": [f"0.0.0.0:{port}"],
            "all_ports": [port], "all_host_strings": [host], "all_reachable_addresses_or_all": [address],
            "reachable_or_one": address}


def _zabstate(server: ZooKeeperServer) -> dict[str, Any]:
    """ZabStateCommand: an ensemble member's addresses, whether it votes, its last zxid and
    Zab phase; a standalone server answers as Apache's does (not voting, no state)."""
    view = server.quorum_view() if server.quorum_view is not None else None
    if view is None:
        return {"voting": False, "zabstate": ""}
    me = fl.member(view["active"], view["my_id"])
    if me is None:
        return {"voting": False, "zabstate": ""}
    config = server.config
    zxid = server.tree.last_processed_zxid
    return {
        "myid": view["my_id"], "is_leader": view["is_leader"],
        "quorum_address": _multiple_addresses(me.host, me.quorum_port),
        "election_address": _multiple_addresses(me.host, me.election_port),
        "client_address": _java_socket_address(config.client_port_address or "0.0.0.0", config.client_port),
        "voting": view["my_id"] in view["active"].voters,
        "last_zxid": f"0x{zxid & _U64:x}", "zab_epoch": zxid >> 32, "zab_counter": zxid & 0xFFFFFFFF,
        "zabstate": view["zabstate"],
    }


def _observers(server: ZooKeeperServer) -> dict[str, Any]:
    """ObserverCommand: the synced observers count (the leader's and an observer master's);
    the per-observer handler list is not kept by pyzk (an empty list)."""
    values = server.quorum_monitor() if server.quorum_monitor is not None else {}
    return {"synced_observers": values.get("synced_observers", 0), "observers": []}


def _system_properties(server: ZooKeeperServer) -> dict[str, Any]:
    """The interpreter facts under their Java names plus the zookeeper.* properties, sorted."""
    jvm_like = {k: v for k, v in fl.environment() if k.startswith(("java.", "os.", "user."))
                and not k.startswith("os.memory.") and k != "java.compiler"}
    jvm_like.update({"file.separator": os.sep, "path.separator": os.pathsep, "line.separator": "\n"})
    jvm_like.update(server.config.system_properties)
    return dict(sorted(jvm_like.items()))


def _connection_stat_reset(server: ZooKeeperServer, _: dict[str, str], __: AdminContext) -> dict[str, Any]:
    for conn in list(server.all_connections):
        conn.reset_stats()
    return {}


def _stat_reset(server: ZooKeeperServer, _: dict[str, str], __: AdminContext) -> dict[str, Any]:
    server.stats.reset()
    return {}


COMMANDS: tuple[Command, ...] = (
    Command(("connection_stat_reset", "crst"), _connection_stat_reset),
    Command(("configuration", "conf", "config"), lambda z, k, c: dict(fl.conf_values(z))),
    Command(("connections", "cons"), lambda z, k, c: _connections(z, brief=False)),
    Command(("hash",), lambda z, k, c: {"digests": []}),  # pyzk keeps no digest history yet
    Command(("dirs",), lambda z, k, c: {"datadir_size": fl.dir_size(fl.data_dir_path(z)),
                                         "logdir_size": fl.dir_size(fl.data_log_dir_path(z))}),
    Command(("dump",), lambda z, k, c: _dump(z)),
    Command(("environment", "env", "envi"), lambda z, k, c: dict(fl.environment()), False),
    Command(("get_trace_mask", "gtmk"), lambda z, k, c: {"tracemask": z.trace_mask}, False),
    Command(("initial_configuration", "icfg"),
            lambda z, k, c: {"initial_configuration": c.initial_configuration}),
    Command(("is_read_only", "isro"), lambda z, k, c: {"read_only": z.mode == "read-only"}),
    Command(("last_snapshot", "lsnp"), lambda z, k, c: _last_snapshot(z)),
    Command(("leader", "lead"), lambda z, k, c: _leader(z)),
    Command(("monitor", "mntr"), lambda z, k, c: dict(fl.monitor_values(z)), False),
    Command(("observer_connection_stat_reset", "orst"), lambda z, k, c: {}),
    Command(("ruok",), lambda z, k, c: {}),
    Command(("set_trace_mask", "stmk"), _set_trace_mask, False),
    Command(("server_stats", "srvr"), lambda z, k, c: _server_stats(z)),
    Command(("stats", "stat"), lambda z, k, c: {**_server_stats(z), **_connections(z, brief=True)}),
    Command(("stat_reset", "srst"), _stat_reset),
    Command(("observers", "obsr"), lambda z, k, c: _observers(z)),
    Command(("system_properties", "sysp"), lambda z, k, c: _system_properties(z), False),
    Command(("voting_view",), lambda z, k, c: _voting_view(z)),
    Command(("watches", "wchc"),
            lambda z, k, c: {"session_id_to_watched_paths": {str(s): p for s, p in fl.watches_by_session(z).items()}}),
    Command(("watches_by_path", "wchp"), lambda z, k, c: {"path_to_session_ids": fl.watches_by_path(z)}),
    Command(("watch_summary", "wchs"), lambda z, k, c: dict(zip(
        ("num_connections", "num_paths", "num_total_watches"), fl.watch_summary(z), strict=True))),
    Command(("zabstate",), lambda z, k, c: _zabstate(z), False),
)
COMMANDS_BY_NAME: dict[str, Command] = {name: cmd for cmd in COMMANDS for name in cmd.names}


def command_response(command: str, error: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """CommandResponse.toMap: data, then command and error, then data again (so an "error"
    the command put in its data keeps its place and its value)."""
    out = dict(data)
    out["command"] = command
    out["error"] = error
    out.update(data)
    return out


def run_command(server: ZooKeeperServer, name: str, kwargs: dict[str, str],
                context: AdminContext) -> dict[str, Any]:
    """Commands.runCommand."""
    command = COMMANDS_BY_NAME.get(name)
    if command is None:
        return command_response(name, f"Unknown command: {name}", {})
    if command.server_required and not server.serving:
        return command_response(name, "This ZooKeeper instance is not currently serving requests", {})
    return command_response(command.primary_name, None, command.run(server, kwargs, context))


def command_links(command_url: str) -> str:
    """JettyAdminServer.commandLinks, one link then `<br/>` per line, sorted by name."""
    base = command_url.rstrip("/")
    return "".join(f'<a href="{base}/{name}">{name}</a>\n<br/>\n'
                   for name in sorted(cmd.primary_name for cmd in COMMANDS))


# ---- a small HTTP/1.1 server --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


HttpHandler = Callable[[str, dict[str, str]], HttpReply]


async def serve_http(host: str, port: int, handler: HttpHandler, idle_timeout_s: float) -> asyncio.Server:
    """Listen on host:port and answer each GET with handler(path, first-value query)."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            reply = await asyncio.wait_for(_read_and_handle(reader, handler), idle_timeout_s)
            if reply is not None:
                writer.write(_encode_reply(reply))
                await asyncio.wait_for(writer.drain(), idle_timeout_s)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception:
            logger.exception("HTTP request on %s:%d failed", host, port)
        finally:
            writer.close()

    return await asyncio.start_server(on_client, host=host or None, port=port,
                                      reuse_address=True, limit=request_head_bytes_max)


async def _read_and_handle(reader: asyncio.StreamReader, handler: HttpHandler) -> HttpReply | None:
    head = await reader.readuntil(b"\r\n\r\n")
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return HttpReply(400, b"Bad Request\n")
    method, target = parts[0], parts[1]
    if method not in ("GET", "HEAD"):
        return HttpReply(405, f"HTTP method {method} is not supported by this URL\n".encode())
    url = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    reply = handler(unquote(url.path), query)
    return HttpReply(reply.status, b"", reply.headers | {"Content-Length": str(len(reply.body))}) \
        if method == "HEAD" else reply


def _encode_reply(reply: HttpReply) -> bytes:
    headers = {"Connection": "close", **reply.headers}
    headers.setdefault("Content-Length", str(len(reply.body)))
    head = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Error')}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + reply.body


# ---- the AdminServer ------------------------------------------------------------------------


def admin_handler(server: ZooKeeperServer, context: AdminContext) -> HttpHandler:
    """JettyAdminServer's CommandServlet, mounted at admin.commandURL."""
    command_url = "/" + server.config.admin_command_url.strip("/")

    def handle(path: str, query: dict[str, str]) -> HttpReply:
        if path in (command_url, command_url + "/"):
            return HttpReply(200, command_links(command_url).encode())
        if not path.startswith(command_url + "/"):
            return HttpReply(404, b"Not Found\n")
        name = path[len(command_url) + 1:]
        response = run_command(server, name, query, context)
        return HttpReply(200, jackson_json(response).encode(), {"Content-Type": "application/json"})

    return handle


def _read_initial_configuration(server: ZooKeeperServer) -> str | None:
    """ZooKeeperServerMain's zoo.cfg text; an ensemble member has none (null), as Apache's."""
    if not server.config.standalone:
        return None
    path = server.config.config_path
    if path is None:
        return ""
    try:
        return path.read_text()
    except OSError:
        return ""


async def start_admin_server(server: ZooKeeperServer) -> asyncio.Server | None:
    """Start the AdminServer if admin.enableServer; None when disabled.

    A port that cannot be bound stops start-up, as ZooKeeperServerMain does."""
    config = server.config
    if not config.admin_enable_server:
        return None
    context = AdminContext(_read_initial_configuration(server))
    try:
        listener = await serve_http(config.admin_server_address, config.admin_server_port,
                                    admin_handler(server, context),
                                    config.admin_idle_timeout_ms / 1000.0)
    except OSError as exc:
        raise OSError(exc.errno, f"Unable to start AdminServer on {config.admin_server_address}:"
                                 f"{config.admin_server_port}: {exc.strerror}") from exc
    logger.info("Started AdminServer on address %s, port %d and command URL %s",
                config.admin_server_address, config.admin_server_port, config.admin_command_url)
    return listener

