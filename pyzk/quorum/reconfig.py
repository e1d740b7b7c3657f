"""Dynamic reconfiguration (opcode 16), the pure parts: plan a new config, render and parse it.

Rule 1: the checks run in PrepRequestProcessor's order, because that order decides the error a
        client sees: RECONFIGINPROGRESS, BADVERSION, parsing (BADARGUMENTS, or MARSHALLINGERROR
        for an id that is not a number, as Java's NumberFormatException gives), too few voters
        (BADARGUMENTS), NEWCONFIGNOQUORUM. Prep then checks WRITE on /zookeeper/config
        (NOAUTH). A planned config may change the voting set: Zab commits it with a quorum of
        both configs and hands over to a designated leader (pyzk/quorum/zab.py Rule 5).
Rule 2: a config's version is the zxid of the reconfig txn that made it; its text is
        `QuorumMaj.toString`, members in Java HashMap<Long, QuorumServer> iteration order
        (bucket of the sid, then insertion order), since that order reaches the wire.
Rule 3: pure: no files, no clock. server/dynamic_config.py writes the files.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from jute.codes import Err
from pyzk.config import (
    ConfigError,
    QuorumServer,
    parse_java_int,
    parse_properties,
    parse_server,
)
from pyzk.quorum.verifier import QuorumConfigs, QuorumMaj
from pyzk.tree.javaorder import HASH_SET_CAPACITY_DEFAULT, LOAD_FACTOR, copy_capacity

_LONG_MASK = (1 << 64) - 1
_INT_MASK = 0xFFFFFFFF


class ReconfigRefused(Exception):
    """A reconfig the leader refuses; `err` is what the client sees."""

    def __init__(self, err: int, reason: str) -> None:
        super().__init__(reason)
        self.err = err
        self.reason = reason


# ---- Java HashMap<Long, QuorumServer> order ---------------------------------------------


def _long_bucket_hash(sid: int) -> int:
    """Long.hashCode then HashMap.hash's spread."""
    value = sid & _LONG_MASK
    h = (value ^ (value >> 32)) & _INT_MASK
    return h ^ (h >> 16)


class JavaLongMap:
    """A HashMap<Long, String>: dict order is insertion order; iteration is Java's order."""

    def __init__(self, capacity: int = HASH_SET_CAPACITY_DEFAULT) -> None:
        self.capacity = capacity
        self.entries: dict[int, str] = {}

    def put(self, sid: int, text: str) -> None:
        self.entries[sid] = text  # an existing key keeps its place, as in Java
        while len(self.entries) > self.capacity * LOAD_FACTOR:
            self.capacity *= 2

    def remove(self, sid: int) -> None:
        self.entries.pop(sid, None)

    def order(self) -> tuple[int, ...]:
        mask = self.capacity - 1
        sids = list(self.entries)
        ranked = sorted(range(len(sids)), key=lambda i: (_long_bucket_hash(sids[i]) & mask, i))
        return tuple(sids[i] for i in ranked)


def copy_members(verifier: QuorumMaj) -> JavaLongMap:
    """`new HashMap<>(qv.getAllMembers())`: a table sized for them, filled in their order."""
    members = {**verifier.voters, **verifier.observers}
    table = JavaLongMap(copy_capacity(len(members)))
    for sid in verifier.member_order or sorted(members):
        table.put(sid, members[sid])
    return table


def _role_of(server_text: str) -> str:
    """The role field of a `QuorumServer.toString` text (`host:q:e:role[;client]`)."""
    return server_text.split(";", 1)[0].rsplit(":", 1)[-1]


def verifier_of(table: JavaLongMap, version: int) -> QuorumMaj:
    voters = {sid: text for sid, text in table.entries.items() if _role_of(text) != "observer"}
    observers = {sid: text for sid, text in table.entries.items() if sid not in voters}
    return QuorumMaj(voters, observers, version, table.order())


def with_version(verifier: QuorumMaj, version: int) -> QuorumMaj:
    return replace(verifier, version=version)


# ---- config text ---------------------------------------------------------------------------


def _server(sid: int, spec: str, source: str) -> QuorumServer:
    """new QuorumServer(sid, spec): a ConfigError for anything Java's constructor refuses."""
    return parse_server(sid, spec, False, source, 0, f"server.{sid}")


def _fresh_members(text: str) -> tuple[JavaLongMap, int]:
    """QuorumMaj(Properties): a fresh HashMap (capacity 16) filled in the text's order
    (Properties' own order is approximated by the text's), and the `version=` value."""
    table = JavaLongMap()
    version = 0
    for prop in parse_properties(text, "config").values():
        if prop.key.startswith("server."):
            sid = parse_java_int(prop.key[len("server."):], bits=64)
            table.put(sid, _server(sid, prop.value, "config").config_text())
        elif prop.key == "version":
            version = int(prop.value, 16)
    return table, version


def parse_config_text(text: str) -> QuorumMaj:
    """QuorumPeer.configFromString: `server.N=` lines and `version=<hex>` into a QuorumMaj."""
    table, version = _fresh_members(text)
    return verifier_of(table, version)


def text_order_verifier(text: str) -> QuorumMaj:
    """The verifier whose toString is exactly `text` (the leader's own, prep-built config)."""
    fresh = parse_config_text(text)
    order = tuple(int(line[len("server."):line.index("=")])
                  for line in text.split("\n") if line.startswith("server."))
    return replace(fresh, member_order=order)


def dynamic_file_text(verifier: QuorumMaj) -> str:
    """QuorumPeerConfig.writeDynamicConfig without the version: sorted lines, no final newline."""
    lines = [line for line in verifier.config_text().split("\n") if not line.startswith("version")]
    return "\n".join(sorted(lines))


_STATIC_KEYS_DROPPED = ("server.", "group", "weight", "dynamicConfigFile", "peerType")
_CLIENT_KEYS = ("clientPort", "clientPortAddress")


def static_file_text(static_text: str, dynamic_path: str, erase_client_address: bool) -> str:
    """QuorumPeerConfig.editStaticConfig: the static file without quorum keys, then the pointer.

    Keys keep the file's order (Java writes Properties' hash order; the set is the same).
    """
    out = []
    for prop in parse_properties(static_text, "zoo.cfg").values():
        key = prop.key.strip()
        if key.startswith(_STATIC_KEYS_DROPPED) or (erase_client_address and key.startswith(_CLIENT_KEYS)):
            continue
        out.append(f"{key}={prop.value.strip()}\n")
    out.append(f"dynamicConfigFile={dynamic_path}\n")
    return "".join(out)


# ---- planning a reconfig (PrepRequestProcessor, case OpCode.reconfig) ----------------------


def _java_split_trimmed(value: str, separator: str) -> list[str]:
    """ZooKeeper's StringUtils.split: split, trim each part, drop empty ones."""
    return [part.strip() for part in value.split(separator) if part.strip()]


def _parse_long(text: str) -> int:
    try:
        return parse_java_int(text, bits=64)
    except ValueError:
        raise ReconfigRefused(Err.MARSHALLINGERROR, f"For input string: \"{text}\"") from None


def _addresses(server: QuorumServer) -> list[tuple[str, int]]:
    """QuorumServer.myAddrs without wildcard, loopback and unresolved (host name) addresses."""
    listed = list(server.addresses or ((server.host, server.quorum_port, server.election_port),))
    addrs = [(h, q) for h, q, _ in listed] + [(h, e) for h, _, e in listed]
    if server.client_port is not None:
        addrs.append((server.client_host or "0.0.0.0", server.client_port))
    return [(host, port) for host, port in addrs if _is_routable_ip(host)]


def _is_routable_ip(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a host name: pyzk does not resolve names here
    return not (ip.is_unspecified or ip.is_loopback)


def incremental_members(last_seen: QuorumMaj, joining: str | None, leaving: str | None) -> JavaLongMap:
    """joiningServers / leavingServers applied to a copy of the last seen members."""
    table = copy_members(last_seen)
    for text in _java_split_trimmed(leaving, ",") if leaving is not None else ():
        table.remove(_parse_long(text))
    for joiner in _java_split_trimmed(joining, ",") if joining is not None else ():
        parts = _java_split_trimmed(joiner, "=")
        if len(parts) != 2:
            raise ReconfigRefused(Err.BADARGUMENTS, "Wrong format of server string")
        name = parts[0]
        sid = _parse_long(name[name.rfind(".") + 1:])
        try:
            server = _server(sid, parts[1], "reconfig")
        except ConfigError:
            raise ReconfigRefused(Err.BADARGUMENTS, "Reconfiguration failed") from None
        if server.client_port is None:
            raise ReconfigRefused(Err.BADARGUMENTS, "Wrong format of server string - each server"
                                                    " should have 3 ports specified")
        mine = _addresses(server)
        for other_sid, other_text in table.entries.items():
            if other_sid == sid:
                continue
            other = _server(other_sid, other_text, "config")
            clash = next((a for a in mine if a in _addresses(other)), None)
            if clash is not None:
                raise ReconfigRefused(Err.BADARGUMENTS, f"{clash[0]}:{clash[1]} of server.{sid}"
                                                        f" conflicts with server.{other_sid}")
        table.remove(sid)
        table.put(sid, server.config_text())
    return table


def non_incremental_members(new_members: str) -> JavaLongMap:
    """newMembers: a whole dynamic config, separated by commas or newlines."""
    try:
        return _fresh_members(new_members.replace(",", "\n"))[0]
    except (ConfigError, ValueError) as error:
        raise ReconfigRefused(Err.BADARGUMENTS, str(error)) from None


@dataclass
class ReconfigPlanner:
    """The leader's view a reconfig is checked against (LeaderZooKeeperServer.self)."""

    configs: QuorumConfigs  # the member's active and newest proposed config
    synced_sids: Callable[[], Iterable[int]]  # the leader + learners synced with it
    standalone_enabled: bool = True

    def plan(self, req: Any, zxid: int) -> QuorumMaj:
        """The new config for ReconfigRequest `req`, proposed at `zxid`; or ReconfigRefused."""
        last_seen = self.configs.last_seen
        if last_seen.version != self.configs.active.version:
            raise ReconfigRefused(Err.RECONFIGINPROGRESS, "a reconfig is in progress")
        if req.curConfigId != -1 and req.curConfigId != last_seen.version:
            raise ReconfigRefused(Err.BADVERSION, f"Reconfiguration from version {req.curConfigId}"
                                                  f" failed -- last seen version is {last_seen.version}")
        if req.newMembers is not None:
            table = non_incremental_members(req.newMembers)
        else:
            table = incremental_members(last_seen, req.joiningServers, req.leavingServers)
        planned = verifier_of(table, zxid)
        voters_min = 2 if self.standalone_enabled else 1
        if len(planned.voters) < voters_min:
            raise ReconfigRefused(Err.BADARGUMENTS, f"Reconfig failed - new configuration must"
                                                    f" include at least {voters_min} followers")
        if not planned.is_quorum(self.synced_sids()):
            raise ReconfigRefused(Err.NEWCONFIGNOQUORUM, "Reconfig failed - there must be a connected"
                                                         " and synced quorum in new configuration")
        return planned
