"""`server.N` lines, groups and weights -> QuorumServer and the quorum (QuorumPeerConfig,
QuorumServer's constructor): the membership part of a config, also read by reconfig.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyzk.config.errors import ConfigError
from pyzk.config.javaprops import Property, java_trim, parse_java_int

# ---------------------------------------------------------------------------------------------
# QuorumServer


@dataclass(frozen=True, slots=True)
class QuorumServer:
    """One `server.N` line. Multi-address lines keep every address in `addresses`."""

    sid: int
    host: str
    quorum_port: int
    election_port: int
    role: str  # "participant" | "observer"
    client_host: str | None
    client_port: int | None
    # True when the client address came from clientPort/clientPortAddress, not this line;
    # such an address is not echoed in the config text (QuorumServer.isClientAddrFromStatic).
    client_address_from_static: bool = False
    addresses: tuple[tuple[str, int, int], ...] = ()

    def config_text(self) -> str:
        """The value ZooKeeper writes for this server (`QuorumServer.toString`)."""
        listed = sorted(self.addresses or ((self.host, self.quorum_port, self.election_port),))
        text = "|".join(f"{_bracketed(h)}:{q}:{e}" for h, q, e in listed) + f":{self.role}"
        if self.client_port is not None and not self.client_address_from_static:
            text += f";{_bracketed(self.client_host or '0.0.0.0')}:{self.client_port}"
        return text


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _parse_host_and_port(text: str, source: str, line: int | None, key: str) -> list[str]:
    """ConfigUtils.getHostAndPort: `[v6]:a:b` keeps the brackets' content as one part."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ConfigError(source, line, key, f"{text} starts with '[' but has no matching ']:'")
        if close + 2 == len(text):
            raise ConfigError(source, line, key, f"{text} doesn't have a port after colon")
        if close + 2 < len(text):
            return [text[1:close], *java_split(text[close + 2 :], ":")]
        return [text.replace("[", "").replace("]", "")]
    return java_split(text, ":")


def java_split(text: str, separator: str) -> list[str]:
    """String.split: trailing empty strings are dropped."""
    if text == "":
        return [""]
    parts = text.split(separator)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


_SERVER_WRONG_FORMAT = (
    " does not have the form server_config or server_config;client_config where server_config is"
    " the pipe separated list of host:port:port or host:port:port:type and client_config is port"
    " or host:port"
)


def parse_server(sid: int, value: str, multi_address_enabled: bool, source: str, line: int,
                  key: str) -> QuorumServer:
    """QuorumServer(sid, addressStr): host:qport:eport[:role][;[clientHost:]clientPort]."""

    def fail(reason: str) -> ConfigError:
        return ConfigError(source, line, key, reason)

    def port(text: str, host: str) -> int:
        try:
            number = parse_java_int(text)
        except ValueError:
            raise fail(f"Address unresolved: {host}:{text}") from None
        if not 0 <= number <= 65535:
            raise fail(f"port out of range:{number}")
        return number

    server_client_parts = java_split(value, ";")
    server_parts_list = java_split(server_client_parts[0], "|")
    client_host: str | None = None
    client_port: int | None = None
    if len(server_client_parts) == 2:
        client_parts = _parse_host_and_port(server_client_parts[1], source, line, key)
        if len(client_parts) > 2:
            raise fail(value + _SERVER_WRONG_FORMAT)
        client_host = client_parts[0] if len(client_parts) == 2 else "0.0.0.0"
        client_port = port(client_parts[-1], client_host)
    if not multi_address_enabled and len(server_parts_list) > 1:
        raise fail(f"Multiple address feature is disabled, but multiple addresses were specified"
                   f" for sid {sid}")
    role: str | None = None
    addresses: list[tuple[str, int, int]] = []
    for address in server_parts_list:
        parts = _parse_host_and_port(address, source, line, key)
        if len(server_client_parts) > 2 or not 3 <= len(parts) <= 4:
            raise fail(value + _SERVER_WRONG_FORMAT)
        host = parts[0]
        quorum_port, election_port = port(parts[1], host), port(parts[2], host)
        if quorum_port == election_port:
            raise fail("Client and election port must be different! Please update the"
                       f" configuration file on server.{sid}")
        if len(parts) == 4:
            this_role = java_trim(parts[3]).lower()
            if this_role not in ("participant", "observer"):
                raise fail(f"Unrecognised peertype: {parts[3]}")
            if role is not None and role != this_role:
                raise fail(f"Multiple addresses should have similar roles: {role} vs {this_role}")
            role = this_role
        addresses.append((host, quorum_port, election_port))
    host, quorum_port, election_port = addresses[-1]
    return QuorumServer(
        sid=sid, host=host, quorum_port=quorum_port, election_port=election_port,
        role=role or "participant", client_host=client_host, client_port=client_port,
        addresses=tuple(addresses) if len(addresses) > 1 else (),
    )


@dataclass(slots=True)
class Quorum:
    servers: dict[int, QuorumServer]
    groups: dict[int, tuple[int, ...]]
    weights: dict[int, int]
    version: int


def parse_quorum(properties: dict[str, Property], source: str, multi_address_enabled: bool,
                  dynamic: bool) -> Quorum:
    """QuorumMaj / QuorumHierarchical over `server.N`, `group.G`, `weight.N` and `version`."""
    servers: dict[int, QuorumServer] = {}
    groups: dict[int, tuple[int, ...]] = {}
    group_of: dict[int, int] = {}
    weights: dict[int, int] = {}
    version = 0

    def long_after_dot(prop: Property, text: str) -> int:
        try:
            return parse_java_int(text, bits=64)
        except ValueError:
            raise ConfigError(source, prop.line, prop.key,
                              f"invalid number '{text}'") from None

    for prop in properties.values():
        key = prop.key
        # Like QuorumMaj, the value is not trimmed: Properties only strips its leading blanks.
        if key.startswith("server."):
            sid = long_after_dot(prop, key[key.index(".") + 1 :])
            servers[sid] = parse_server(sid, prop.value, multi_address_enabled, source,
                                         prop.line, key)
        elif key.startswith("group"):
            gid = long_after_dot(prop, key[key.index(".") + 1 :] if "." in key else "")
            members = tuple(long_after_dot(prop, part) for part in java_split(prop.value, ":"))
            for sid in members:
                if sid in group_of:
                    raise ConfigError(source, prop.line, key, f"Server {sid}is in multiple groups")
                group_of[sid] = gid
            groups[gid] = members
        elif key.startswith("weight"):
            sid = long_after_dot(prop, key[key.index(".") + 1 :] if "." in key else "")
            weights[sid] = long_after_dot(prop, prop.value)
        elif key == "version":
            try:
                version = int(prop.value, 16)
            except ValueError:
                raise ConfigError(source, prop.line, key,
                                  f"invalid hex number '{prop.value}'") from None
        elif dynamic:
            raise ConfigError(source, prop.line, key, f"Unrecognised parameter: {key}")
    if groups or weights:
        for sid, server in servers.items():
            if server.role == "participant":
                if sid not in group_of:
                    raise ConfigError(source, None, f"server.{sid}", f"Server {sid}is not in a group")
                weights.setdefault(sid, 1)
    return Quorum(servers, groups, weights, version)
