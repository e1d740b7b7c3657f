"""zoo.cfg + myid + dynamic config text -> one frozen ServerConfig, by QuorumPeerConfig's rules.

Rule 1: pure. `parse_config` takes text and returns a `ServerConfig` or raises `ConfigError`;
        only `load_config` touches the file system (zoo.cfg, the dynamic file, myid).
Rule 2: the file is read as `java.util.Properties.load` reads it, and every value is judged
        with the same rules and defaults as Apache ZooKeeper 3.8's `QuorumPeerConfig`
        (PROTOCOL.md §6). A key QuorumPeerConfig does not parse itself becomes the system
        property `zookeeper.<key>`; like `System.setProperty` in Java, it overrides a `-D`
        property of the same name.
Rule 3: a bad value stops start-up with `<file>:<line>: <key>: <reason>`. Where Apache silently
        falls back to a default for an unparsable system property (`Integer.getInteger`), pyzk
        refuses the value instead: a typo must not run a server with other settings.
Rule 4: nothing is silently misread: keys pyzk does not implement are listed in `unknown_keys`,
        and a key that looks like a misspelt known key gets a suggestion in `warnings`.

The package by concern: javaprops.py (Properties text, Java numbers), servers.py (server.N
lines, groups, weights: the membership, also read by reconfig), keys.py (the key catalogues),
errors.py (ConfigError); this module reads every value and assembles the ServerConfig.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pyzk.config.errors import ConfigError
from pyzk.config.javaprops import (
    _NATURAL_LINE_END,
    Property,
    decode_java_int,
    java_trim,
    parse_java_int,
    parse_properties,
)
from pyzk.config.keys import (
    _DIRECT_KEYS,
    _DIRECT_KEYS_NOT_IMPLEMENTED,
    _METRICS_PROVIDERS,
    _PASSTHROUGH_KEYS_IMPLEMENTED,
    _PASSTHROUGH_KEYS_KNOWN,
    _PASSTHROUGH_PREFIXES_IMPLEMENTED,
    _SECURITY_DIRECT_KEYS_REFUSED,
    _TYPO_CANDIDATES,
    FOUR_LETTER_WORDS,
    METRICS_PROVIDER_DEFAULT,
    METRICS_PROVIDER_PROMETHEUS,
    QUORUM_SSL_KEYS,
    SSL_AUTH_PROVIDER_PROPERTY,
    SSL_QUORUM_AUTH_PROVIDER_PROPERTY,
    X509_PROVIDER_CLASS,
    _is_quorum_key,
)
from pyzk.config.quorum_tls import (
    QUORUM_SSL_PREFIX,
    QuorumTlsError,
    QuorumTlsSettings,
    quorum_tls_settings,
)
from pyzk.config.servers import QuorumServer, java_split, parse_quorum, parse_server

__all__ = [
    "FOUR_LETTER_WORDS", "METRICS_PROVIDER_DEFAULT", "METRICS_PROVIDER_PROMETHEUS", "ConfigError",
    "Property", "QuorumServer", "ServerConfig", "decode_java_int", "java_trim", "load_config",
    "parse_config", "parse_java_int", "parse_properties", "parse_server", "QuorumTlsSettings",
]

@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything a pyzk server reads from its configuration, defaults resolved."""

    config_path: Path | None
    tick_time_ms: int
    init_limit_ticks: int
    sync_limit_ticks: int
    connect_to_learner_master_limit_ticks: int
    data_dir: Path
    data_log_dir: Path
    client_port: int | None
    client_port_address: str
    secure_client_port: int | None
    secure_client_port_address: str
    client_port_listen_backlog: int
    max_client_cnxns: int
    max_cnxns: int
    session_timeout_ms_min: int
    session_timeout_ms_max: int
    election_alg: int
    quorum_listen_on_all_ips: bool
    peer_type: str
    sync_enabled: bool
    servers: dict[int, QuorumServer]
    groups: dict[int, tuple[int, ...]]
    weights: dict[int, int]
    config_version: int
    dynamic_config_path: Path | None
    my_id: int | None
    standalone: bool
    server_id: int
    system_properties: dict[str, str]
    four_letter_words: frozenset[str]
    skip_acl: bool
    super_digest: str | None
    extended_types_enabled: bool
    emulate_353_ttl_nodes: bool
    digest_enabled: bool
    force_sync: bool
    snap_count: int
    snap_size_limit_kb: int
    commit_log_count: int
    snapshot_size_factor: float
    txn_log_size_limit_kb: int
    pre_alloc_size_kb: int
    close_session_txn_enabled: bool
    jute_maxbuffer: int
    global_outstanding_limit: int
    admin_enable_server: bool
    admin_server_address: str
    admin_server_port: int
    admin_command_url: str
    admin_idle_timeout_ms: int
    autopurge_snap_retain_count: int
    autopurge_purge_interval_hours: int
    standalone_enabled: bool
    reconfig_enabled: bool
    readonly_mode_enabled: bool
    local_sessions_enabled: bool
    local_sessions_upgrading_enabled: bool
    metrics_provider_class: str
    metrics_provider_config: dict[str, str]
    metrics_http_host: str
    metrics_http_port: int
    jaas_config_path: Path | None
    auth_providers: dict[str, str]
    enforce_quota: bool
    container_check_interval_ms: int
    container_max_per_minute: int
    ssl: dict[str, str]
    snapshot_compression_method: str
    snapshot_trust_empty: bool
    db_autocreate: bool
    datadir_autocreate: bool
    # pyzk's own: the client port is bound with SO_REUSEPORT, so processes on one host (a
    # member and its observers) share it and the kernel spreads the connections.
    client_port_reuse_port: bool
    unknown_keys: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())
    # AuthenticationHelper: the schemes one of which a connection must hold before any
    # request but auth and sasl is served (empty: not enforced), and whether SASL is among
    # them (a failed SASL exchange then answers SESSIONCLOSEDREQUIRESASLAUTH).
    enforce_auth_schemes: tuple[str, ...] = ()
    sasl_auth_required: bool = False
    allow_sasl_failed_clients: bool = False
    # sslQuorum / portUnification with the ssl.quorum.* settings (pyzk/config/quorum_tls.py);
    # None: the election and quorum ports speak plaintext only (or the server is standalone).
    quorum_tls: QuorumTlsSettings | None = None
    # quorum.auth.*: SASL between members (QuorumPeer's SaslQuorumAuthServer/Learner), used
    # only when enabled; the login contexts name JAAS sections.
    quorum_sasl_enabled: bool = False
    quorum_learner_require_sasl: bool = False
    quorum_server_require_sasl: bool = False
    quorum_learner_login_context: str = "QuorumLearner"
    quorum_server_login_context: str = "QuorumServer"
    # quorum.auth.kerberos.servicePrincipal: the principal a GSSAPI learner asks a ticket for
    # ("_HOST" as its host part becomes the server.N host it dials).
    quorum_service_principal: str = "zkquorum/localhost"

    @property
    def voters(self) -> dict[int, QuorumServer]:
        return {sid: s for sid, s in self.servers.items() if s.role == "participant"}

    @property
    def observers(self) -> dict[int, QuorumServer]:
        return {sid: s for sid, s in self.servers.items() if s.role == "observer"}


# ---------------------------------------------------------------------------------------------
# Parsing


@dataclass(slots=True)
class _Reader:
    """Reads typed values from one Properties map, raising ConfigError with file and line."""

    source: str
    properties: dict[str, Property]

    def error(self, key: str, reason: str) -> ConfigError:
        prop = self.properties.get(key)
        return ConfigError(self.source, prop.line if prop else None, key, reason)

    def text(self, key: str) -> str | None:
        prop = self.properties.get(key)
        return None if prop is None else java_trim(prop.value)

    def integer(self, key: str, default: int, *, bits: int = 32) -> int:
        value = self.text(key)
        if value is None:
            return default
        try:
            return parse_java_int(value, bits=bits)
        except ValueError:
            raise self.error(key, f"invalid integer '{value}'") from None

    def boolean(self, key: str, default: bool) -> bool:
        value = self.text(key)
        if value is None:
            return default
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.error(key, f"Invalid option {value} for {key}. Choose 'true' or 'false.'")

    def port(self, key: str) -> int | None:
        """0 or absent means 'not set'; like InetSocketAddress, only 0..65535 is a port."""
        port = self.integer(key, 0)
        if not 0 <= port <= 65535:
            raise self.error(key, f"port out of range:{port}")
        return port or None


@dataclass(slots=True)
class _SystemProperties:
    """System properties with where each came from, read the way each ZooKeeper class reads it."""

    values: dict[str, str]
    origins: dict[str, tuple[str, int | None, str]]  # name -> (source, line, zoo.cfg key)

    def error(self, name: str, reason: str) -> ConfigError:
        source, line, key = self.origins.get(name, ("command line", None, f"-D{name}"))
        return ConfigError(source, line, key, reason)

    def text(self, name: str, default: str) -> str:
        return self.values.get(name, default)

    def integer(self, name: str, default: int, *, bits: int = 32) -> int:
        value = self.values.get(name)
        if value is None:
            return default
        try:
            return decode_java_int(java_trim(value), bits=bits)
        except ValueError:
            raise self.error(name, f"invalid integer '{value}'") from None

    def boolean(self, name: str, default: bool) -> bool:
        """Boolean.parseBoolean, but a value that is neither true nor false is refused."""
        value = self.values.get(name)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            raise self.error(name, f"invalid boolean '{value}' (true or false)")
        return value.lower() == "true"


def _version_from_filename(name: str) -> int | None:
    """getVersionFromFilename: the hex suffix after the last dot, if there is one."""
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    try:
        return int(suffix, 16) if suffix and re.fullmatch(r"[+-]?[0-9a-fA-F]+", suffix) else None
    except ValueError:
        return None


def _parse_myid(myid_text: str, source: str) -> int:
    """setupMyId: the first line only, as a Java long, with no trimming."""
    first_line = _NATURAL_LINE_END.split(myid_text, maxsplit=1)[0] if myid_text else None
    try:
        if first_line is None:
            raise ValueError
        return parse_java_int(first_line, bits=64)
    except ValueError:
        shown = "null" if first_line is None else first_line  # Java prints a null readLine so
        raise ConfigError(source, 1, "myid", f"serverid {shown} is not a number") from None


def _typo_suggestion(key: str) -> str | None:
    matches = difflib.get_close_matches(key, _TYPO_CANDIDATES, n=1, cutoff=0.8)
    if not matches:
        lowered = {candidate.lower(): candidate for candidate in _TYPO_CANDIDATES}
        matches = [lowered[key.lower()]] if key.lower() in lowered else []
    return matches[0] if matches else None


def parse_config(
    text: str,
    *,
    config_path: Path | None = None,
    system_properties: Mapping[str, str] | None = None,
    myid_text: str | None = None,
    dynamic_config_text: str | None = None,
) -> ServerConfig:
    """Build a ServerConfig from zoo.cfg text, the `-D` properties, myid and dynamic config.

    `myid_text` is the content of `<dataDir>/myid` (None if that file does not exist);
    `dynamic_config_text` the content of the `dynamicConfigFile` (None if not set or unreadable).
    """
    source = str(config_path) if config_path is not None else "zoo.cfg"
    properties = parse_properties(text, source)
    reader = _Reader(source, properties)
    warnings: list[str] = []
    unknown_keys: list[str] = []

    def warn(key: str, message: str) -> None:
        prop = properties.get(key)
        where = f"{source}:{prop.line}" if prop else source
        warnings.append(f"{where}: {key}: {message}")

    # Rule 2: every key not parsed directly becomes a `zookeeper.` system property.
    sysprops = _SystemProperties(dict(system_properties or {}), {})
    has_dynamic_file = "dynamicConfigFile" in properties
    for prop in properties.values():
        key = java_trim(prop.key)
        if key in _DIRECT_KEYS or key.startswith("metricsProvider."):
            if key in _DIRECT_KEYS_NOT_IMPLEMENTED:
                unknown_keys.append(key)
            continue
        if _is_quorum_key(key):
            if has_dynamic_file:
                raise ConfigError(source, prop.line, key,
                                  f"parameter: {key} must be in a separate dynamic config file")
            continue
        name = "zookeeper." + key
        sysprops.values[name] = java_trim(prop.value)
        sysprops.origins[name] = (source, prop.line, key)
        if key == "version":
            continue  # the static file's quorum version, read by QuorumMaj below
        if key.startswith(QUORUM_SSL_PREFIX) and key not in QUORUM_SSL_KEYS:
            unknown_keys.append(key)
            close = difflib.get_close_matches(key, sorted(QUORUM_SSL_KEYS), n=1, cutoff=0.8)
            hint = f"did you mean {close[0]}? " if close else ""
            warn(key, f"unknown key, {hint}(QuorumX509Util does not read it)")
            continue
        if key in _PASSTHROUGH_KEYS_IMPLEMENTED or key.startswith(_PASSTHROUGH_PREFIXES_IMPLEMENTED):
            continue
        unknown_keys.append(key)
        if key not in _PASSTHROUGH_KEYS_KNOWN:
            suggestion = _typo_suggestion(key)
            if suggestion is not None:
                warn(key, f"unknown key, did you mean {suggestion}? (ZooKeeper would set the"
                          f" system property {name} and otherwise ignore it)")

    # Directly parsed keys, in QuorumPeerConfig.parseProperties order of checks.
    data_dir_text = reader.text("dataDir")
    data_log_dir_text = reader.text("dataLogDir")
    client_port = reader.port("clientPort")
    client_port_address = reader.text("clientPortAddress")
    secure_client_port = reader.port("secureClientPort")
    secure_client_port_address = reader.text("secureClientPortAddress")
    reader.port("observerMasterPort")
    client_port_listen_backlog = reader.integer("clientPortListenBacklog", -1)
    tick_time_ms = reader.integer("tickTime", 3000)
    max_client_cnxns = reader.integer("maxClientCnxns", 60)
    session_timeout_ms_min = reader.integer("minSessionTimeout", -1)
    session_timeout_ms_max = reader.integer("maxSessionTimeout", -1)
    init_limit_ticks = reader.integer("initLimit", 0)
    sync_limit_ticks = reader.integer("syncLimit", 0)
    connect_limit_ticks = reader.integer("connectToLearnerMasterLimit", 0)
    election_alg = reader.integer("electionAlg", 3)
    if election_alg != 3:
        raise reader.error("electionAlg", "Invalid electionAlg value. Only 3 is supported.")
    local_sessions_enabled = reader.boolean("localSessionsEnabled", False)
    local_sessions_upgrading_enabled = reader.boolean("localSessionsUpgradingEnabled", False)
    quorum_listen_on_all_ips = reader.boolean("quorumListenOnAllIPs", False)
    peer_type = (reader.text("peerType") or "participant").lower()
    if peer_type not in ("participant", "observer"):
        raise reader.error("peerType", f"Unrecognised peertype: {reader.text('peerType')}")
    sync_enabled = reader.boolean("syncEnabled", True)
    snap_retain_count = reader.integer("autopurge.snapRetainCount", 3)
    purge_interval_hours = reader.integer("autopurge.purgeInterval", 0)
    standalone_enabled = reader.boolean("standaloneEnabled", True)
    reconfig_enabled = reader.boolean("reconfigEnabled", False)
    ssl_quorum = reader.boolean("sslQuorum", False)
    port_unification = reader.boolean("portUnification", False)
    for key in ("sslQuorumReloadCertFiles", "jvm.pause.monitor", "multiAddress.reachabilityCheckEnabled"):
        reader.boolean(key, False)
    quorum_sasl = reader.boolean("quorum.auth.enableSasl", False)
    server_require_sasl = reader.boolean("quorum.auth.serverRequireSasl", False)
    learner_require_sasl = reader.boolean("quorum.auth.learnerRequireSasl", False)
    reader.integer("quorum.cnxn.threads.size", 0)
    for key in ("jvm.pause.info-threshold.ms", "jvm.pause.warn-threshold.ms",
                "jvm.pause.sleep.time.ms"):
        reader.integer(key, 0, bits=64)
    multi_address_enabled = reader.boolean("multiAddress.enabled", False)
    reader.integer("multiAddress.reachabilityCheckTimeoutMs", 1000)
    metrics_provider_class = reader.text("metricsProvider.className") or METRICS_PROVIDER_DEFAULT
    metrics_provider_config = {
        java_trim(p.key)[len("metricsProvider."):]: java_trim(p.value)
        for p in properties.values()
        if java_trim(p.key).startswith("metricsProvider.")
        and java_trim(p.key) != "metricsProvider.className"
    }

    if not quorum_sasl and server_require_sasl:
        raise reader.error("quorum.auth.serverRequireSasl", "quorum.auth.enableSasl is disabled,"
                           " so cannot enable quorum.auth.serverRequireSasl")
    if not quorum_sasl and learner_require_sasl:
        raise reader.error("quorum.auth.learnerRequireSasl", "quorum.auth.enableSasl is disabled,"
                           " so cannot enable quorum.auth.learnerRequireSasl")
    if not learner_require_sasl and server_require_sasl:
        raise reader.error("quorum.auth.serverRequireSasl", "quorum.auth.learnerRequireSasl is"
                           " disabled, so cannot enable quorum.auth.serverRequireSasl")
    for key, feature in _SECURITY_DIRECT_KEYS_REFUSED.items():
        if reader.boolean(key, False):
            raise reader.error(key, f"{feature} is not implemented by pyzk; refusing to start"
                                    f" rather than run without it (set {key}=false or remove it)")
    _configure_ssl_auth(sysprops, secure_client_port is not None)
    enforce_auth_schemes, sasl_auth_required = _enforce_auth(sysprops)

    if snap_retain_count < 3:
        warn("autopurge.snapRetainCount",
             f"Invalid autopurge.snapRetainCount: {snap_retain_count}. Defaulting to 3")
        snap_retain_count = 3
    if data_dir_text is None:
        raise ConfigError(source, None, "dataDir", "dataDir is not set")
    data_dir = Path(data_dir_text)
    data_log_dir = Path(data_log_dir_text) if data_log_dir_text is not None else data_dir
    if client_port is None and client_port_address is not None:
        raise reader.error("clientPortAddress", "clientPortAddress is set but clientPort is not set")
    if secure_client_port is None and secure_client_port_address is not None:
        raise reader.error("secureClientPortAddress",
                           "secureClientPortAddress is set but secureClientPort is not set")
    if tick_time_ms == 0:
        raise reader.error("tickTime", "tickTime is not set")
    if session_timeout_ms_min == -1:
        session_timeout_ms_min = tick_time_ms * 2
    if session_timeout_ms_max == -1:
        session_timeout_ms_max = tick_time_ms * 20
    if session_timeout_ms_min > session_timeout_ms_max:
        raise reader.error("minSessionTimeout",
                           "minSessionTimeout must not be larger than maxSessionTimeout")
    if metrics_provider_class not in _METRICS_PROVIDERS:
        raise reader.error("metricsProvider.className", "metrics provider class was not found")

    # The quorum: from the dynamic file if there is one, else from zoo.cfg itself.
    dynamic_path_text = reader.text("dynamicConfigFile")
    dynamic_config_path = Path(dynamic_path_text) if dynamic_path_text is not None else None
    if dynamic_config_path is not None:
        dynamic_source = str(dynamic_config_path)
        if dynamic_config_text is None:
            raise reader.error("dynamicConfigFile",
                               f"Error processing {dynamic_source}: cannot read the file")
        dynamic_properties = parse_properties(dynamic_config_text, dynamic_source)
        if "version" in dynamic_properties:
            raise ConfigError(dynamic_source, dynamic_properties["version"].line, "version",
                              "dynamic file shouldn't have version inside")
        quorum = parse_quorum(dynamic_properties, dynamic_source, multi_address_enabled, True)
        quorum.version = _version_from_filename(dynamic_config_path.name) or 0
    else:
        quorum = parse_quorum(properties, source, multi_address_enabled, False)

    voters = [s for s in quorum.servers.values() if s.role == "participant"]
    observers = [s for s in quorum.servers.values() if s.role == "observer"]
    if not voters:
        if not standalone_enabled:
            raise reader.error("standaloneEnabled",
                               "standaloneEnabled = false then number of participants should be >0")
        if observers:
            raise ConfigError(source, None, f"server.{observers[0].sid}",
                              "Observers w/o participants is an invalid configuration")
    elif len(voters) == 1 and standalone_enabled:
        warnings.append(f"{source}: server.{voters[0].sid}: Invalid configuration, only one"
                        " server specified (ignoring)")
        if observers:
            raise ConfigError(source, None, f"server.{observers[0].sid}",
                              "Observers w/o quorum is an invalid configuration")
    elif len(voters) <= 2:
        warnings.append(f"{source}: No server failure will be tolerated. You need at least 3"
                        " servers.")
    elif len(voters) % 2 == 0:
        warnings.append(f"{source}: Non-optimal configuration, consider an odd number of servers.")

    # myid (setupMyId runs in standalone too: a garbled myid fails either way).
    myid_source = str(data_dir / "myid")
    my_id = _parse_myid(myid_text, myid_source) if myid_text is not None else None

    # setupClientPort: this server's `;client` part overrides and must agree with clientPort.
    servers = dict(quorum.servers)
    client_port_address = client_port_address or "0.0.0.0"
    me = servers.get(my_id) if my_id is not None else None
    if me is not None and me.client_port is not None:
        if client_port is not None and (
            (client_port_address != "0.0.0.0"
             and (client_port_address, client_port) != (me.client_host, me.client_port))
            or (client_port_address == "0.0.0.0" and client_port != me.client_port)
        ):
            raise reader.error(
                "clientPort",
                f"client address for this server (id = {my_id}) in static config file is "
                f"{client_port_address}:{client_port} is different from client address found in"
                f" dynamic file: {me.client_host}:{me.client_port}",
            )
        client_port, client_port_address = me.client_port, me.client_host or "0.0.0.0"
    elif me is not None and client_port is not None:
        servers[me.sid] = QuorumServer(
            sid=me.sid, host=me.host, quorum_port=me.quorum_port,
            election_port=me.election_port, role=me.role, client_host=client_port_address,
            client_port=client_port, client_address_from_static=True, addresses=me.addresses,
        )

    # setupPeerType: the server.N role wins over peerType.
    if my_id is not None:
        role_by_list = "observer" if my_id in servers and servers[my_id].role == "observer" \
            else "participant"
        if role_by_list != peer_type:
            warn("peerType", f"Peer type from servers list ({role_by_list}) doesn't match peerType"
                             f" ({peer_type}). Defaulting to servers list.")
            peer_type = role_by_list

    distributed = not standalone_enabled or len(voters) > 1
    if distributed:
        if init_limit_ticks == 0:
            raise reader.error("initLimit", "initLimit is not set")
        if sync_limit_ticks == 0:
            raise reader.error("syncLimit", "syncLimit is not set")
        if my_id is None:
            raise ConfigError(myid_source, None, "myid", "myid file is missing")
        if my_id not in servers:
            raise ConfigError(myid_source, 1, "myid", f"My id {my_id} not in the peer list")
    elif client_port is None and secure_client_port is None:
        # ZooKeeperServerMain would run without any client listener; pyzk refuses that.
        raise ConfigError(source, None, "clientPort", "clientPort is not set")

    four_letter_words = _four_letter_words(sysprops, warnings)
    quorum_tls = _quorum_tls(reader, sysprops, ssl_quorum, port_unification, distributed, warnings)
    return ServerConfig(
        config_path=config_path,
        tick_time_ms=tick_time_ms,
        init_limit_ticks=init_limit_ticks,
        sync_limit_ticks=sync_limit_ticks,
        connect_to_learner_master_limit_ticks=connect_limit_ticks or init_limit_ticks,
        data_dir=data_dir,
        data_log_dir=data_log_dir,
        client_port=client_port,
        client_port_address=client_port_address,
        secure_client_port=secure_client_port,
        secure_client_port_address=secure_client_port_address or "0.0.0.0",
        client_port_listen_backlog=client_port_listen_backlog,
        max_client_cnxns=max_client_cnxns,
        max_cnxns=sysprops.integer("zookeeper.maxCnxns", 0),
        session_timeout_ms_min=session_timeout_ms_min,
        session_timeout_ms_max=session_timeout_ms_max,
        election_alg=election_alg,
        quorum_listen_on_all_ips=quorum_listen_on_all_ips,
        peer_type=peer_type,
        sync_enabled=sync_enabled,
        servers=servers,
        groups=quorum.groups,
        weights=quorum.weights,
        config_version=quorum.version,
        dynamic_config_path=dynamic_config_path,
        my_id=my_id,
        standalone=not distributed,
        server_id=(my_id if distributed and my_id is not None else 1),
        system_properties=dict(sysprops.values),
        four_letter_words=four_letter_words,
        skip_acl=sysprops.text("zookeeper.skipACL", "no") == "yes",
        super_digest=sysprops.values.get("zookeeper.DigestAuthenticationProvider.superDigest"),
        extended_types_enabled=sysprops.boolean("zookeeper.extendedTypesEnabled", False),
        emulate_353_ttl_nodes=sysprops.boolean("zookeeper.emulate353TTLNodes", False),
        digest_enabled=sysprops.boolean("zookeeper.digest.enabled", True),
        force_sync=sysprops.text("zookeeper.forceSync", "yes") != "no",
        snap_count=_snap_count(sysprops, warnings),
        snap_size_limit_kb=sysprops.integer("zookeeper.snapSizeLimitInKb", 4194304, bits=64),
        commit_log_count=_commit_log_count(sysprops, warnings),
        snapshot_size_factor=_snapshot_size_factor(sysprops, warnings),
        txn_log_size_limit_kb=sysprops.integer("zookeeper.txnLogSizeLimitInKb", -1, bits=64),
        pre_alloc_size_kb=sysprops.integer("zookeeper.preAllocSize", 65536, bits=64),
        close_session_txn_enabled=sysprops.boolean("zookeeper.closeSessionTxn.enabled", True),
        jute_maxbuffer=sysprops.integer("jute.maxbuffer", 0xFFFFF),
        global_outstanding_limit=sysprops.integer("zookeeper.globalOutstandingLimit", 1000),
        admin_enable_server=_admin_enable_server(sysprops),
        admin_server_address=sysprops.text("zookeeper.admin.serverAddress", "0.0.0.0"),
        admin_server_port=_system_port(sysprops, "zookeeper.admin.serverPort", 8080),
        admin_command_url=sysprops.text("zookeeper.admin.commandURL", "/commands"),
        admin_idle_timeout_ms=sysprops.integer("zookeeper.admin.idleTimeout", 30000),
        autopurge_snap_retain_count=snap_retain_count,
        autopurge_purge_interval_hours=purge_interval_hours,
        standalone_enabled=standalone_enabled,
        reconfig_enabled=reconfig_enabled,
        readonly_mode_enabled=sysprops.boolean("readonlymode.enabled", False),
        local_sessions_enabled=local_sessions_enabled,
        local_sessions_upgrading_enabled=local_sessions_upgrading_enabled,
        metrics_provider_class=metrics_provider_class,
        metrics_provider_config=metrics_provider_config,
        metrics_http_host=metrics_provider_config.get("httpHost", "0.0.0.0"),
        metrics_http_port=_metrics_http_port(reader, metrics_provider_config),
        jaas_config_path=_optional_path(sysprops.values.get("java.security.auth.login.config")),
        auth_providers={
            name[len("zookeeper.authProvider."):]: value
            for name, value in sysprops.values.items()
            if name.startswith("zookeeper.authProvider.")
        },
        enforce_quota=sysprops.boolean("zookeeper.enforceQuota", False),
        container_check_interval_ms=sysprops.integer("znode.container.checkIntervalMs", 60000),
        container_max_per_minute=sysprops.integer("znode.container.maxPerMinute", 10000),
        ssl={
            name[len("zookeeper."):]: value
            for name, value in sysprops.values.items()
            if name.startswith("zookeeper.ssl.")
        },
        snapshot_compression_method=_snapshot_compression_method(sysprops),
        snapshot_trust_empty=sysprops.boolean("zookeeper.snapshot.trust.empty", False),
        db_autocreate=sysprops.boolean("zookeeper.db.autocreate", True),
        datadir_autocreate=sysprops.boolean("zookeeper.datadir.autocreate", True),
        client_port_reuse_port=sysprops.boolean("pyzk.clientPort.reusePort", False),
        unknown_keys=tuple(unknown_keys),
        warnings=tuple(warnings),
        enforce_auth_schemes=enforce_auth_schemes,
        sasl_auth_required=sasl_auth_required,
        allow_sasl_failed_clients=sysprops.boolean("zookeeper.allowSaslFailedClients", False),
        quorum_tls=quorum_tls,
        quorum_sasl_enabled=quorum_sasl,
        quorum_learner_require_sasl=learner_require_sasl,
        quorum_server_require_sasl=server_require_sasl,
        quorum_learner_login_context=reader.text("quorum.auth.learner.saslLoginContext") or "QuorumLearner",
        quorum_server_login_context=reader.text("quorum.auth.server.saslLoginContext") or "QuorumServer",
        quorum_service_principal=reader.text("quorum.auth.kerberos.servicePrincipal") or "zkquorum/localhost",
    )


def _quorum_tls(reader: _Reader, sysprops: _SystemProperties, ssl_quorum: bool, port_unification: bool,
                distributed: bool, warnings: list[str]) -> QuorumTlsSettings | None:
    """QuorumX509Util's settings when the election and quorum ports use TLS; a setting pyzk
    cannot honour stops start-up with where it was set."""
    if not (ssl_quorum or port_unification):
        return None
    if not distributed:
        key = "sslQuorum" if ssl_quorum else "portUnification"
        prop = reader.properties.get(key)
        warnings.append(f"{reader.source}{f':{prop.line}' if prop else ''}: {key}: no effect on a"
                        " standalone server (it has no quorum ports)")
        return None
    values = {name[len("zookeeper."):]: value for name, value in sysprops.values.items()
              if name.startswith("zookeeper." + QUORUM_SSL_PREFIX)}
    try:
        return quorum_tls_settings(ssl_quorum, port_unification, values, warnings)
    except QuorumTlsError as exc:
        name = "zookeeper." + exc.name
        if name not in sysprops.origins and name not in sysprops.values:
            raise reader.error("sslQuorum" if ssl_quorum else "portUnification", str(exc)) from None
        raise sysprops.error(name, exc.reason) from None


def _available_auth_schemes(sysprops: _SystemProperties) -> set[str]:
    """ProviderRegistry's schemes as pyzk builds them (pyzk.acl.registry): ip, digest unless
    disabled, and each zookeeper.authProvider.N class pyzk implements (x509 included).
    ssl.quorum.authProvider is refused (Apache 3.8 reads it nowhere; pyzk implements no quorum
    TLS authentication provider)."""
    from pyzk.acl.registry import (
        AUTH_PROVIDER_PROPERTY_PREFIX,
        DIGEST_ENABLED_PROPERTY,
        KNOWN_PROVIDER_SCHEMES,
    )

    schemes = {"ip"}
    if sysprops.values.get(DIGEST_ENABLED_PROPERTY, "true").lower() == "true":
        schemes.add("digest")
    for name, value in sysprops.values.items():
        if not name.startswith(AUTH_PROVIDER_PROPERTY_PREFIX):
            continue
        class_name = java_trim(value)
        scheme = KNOWN_PROVIDER_SCHEMES.get(class_name)
        if scheme is not None:
            schemes.add(scheme)
    if SSL_QUORUM_AUTH_PROVIDER_PROPERTY in sysprops.values:
        raise sysprops.error(SSL_QUORUM_AUTH_PROVIDER_PROPERTY,
                             "a TLS authentication provider is not implemented by pyzk for the"
                             " quorum ports; refusing to start rather than run without it")
    return schemes


def _configure_ssl_auth(sysprops: _SystemProperties, secure_client_port: bool) -> None:
    """QuorumPeerConfig.configureSSLAuth, run when secureClientPort is set: the scheme that
    authenticates TLS clients by their certificate is ssl.authProvider, x509 by default, and
    zookeeper.authProvider.x509 is set to the x509 provider unless it is set already. Another
    scheme needs its own zookeeper.authProvider.<scheme> (Apache refuses to start without
    one); such a custom provider class cannot be loaded by pyzk, which refuses to start."""
    from pyzk.acl.registry import AUTH_PROVIDER_PROPERTY_PREFIX

    if not secure_client_port:
        return  # Apache reads ssl.authProvider only for the secure client port
    scheme = sysprops.values.get(SSL_AUTH_PROVIDER_PROPERTY, "x509")
    provider_property = AUTH_PROVIDER_PROPERTY_PREFIX + scheme
    if scheme == "x509":
        sysprops.values.setdefault(provider_property, X509_PROVIDER_CLASS)
        return
    if provider_property not in sysprops.values:
        raise sysprops.error(SSL_AUTH_PROVIDER_PROPERTY, "No auth provider configured for the SSL"
                                                         f" authentication scheme '{scheme}'.")
    raise sysprops.error(SSL_AUTH_PROVIDER_PROPERTY,
                         f"a TLS authentication provider other than x509 ({provider_property}="
                         f"{sysprops.values[provider_property]}) is not implemented by pyzk;"
                         " refusing to start rather than run without it")


def _enforce_auth(sysprops: _SystemProperties) -> tuple[tuple[str, ...], bool]:
    """AuthenticationHelper: (the enforced schemes, empty if not enforced; SASL required)."""
    available = _available_auth_schemes(sysprops)
    if sysprops.boolean("zookeeper.sessionRequireClientSASLAuth", False):
        enabled, schemes, origin = True, ["sasl"], "zookeeper.sessionRequireClientSASLAuth"
    else:
        enabled = sysprops.boolean("zookeeper.enforce.auth.enabled", False)
        text = sysprops.values.get("zookeeper.enforce.auth.schemes")
        schemes = [] if text is None else [java_trim(part) for part in java_split(text, ",")]
        origin = "zookeeper.enforce.auth.schemes" if text is not None else "zookeeper.enforce.auth.enabled"
    if not enabled:
        return (), False
    if not schemes:
        raise sysprops.error("zookeeper.enforce.auth.enabled",
                             "zookeeper.enforce.auth.enabled is true zookeeper.enforce.auth.schemes"
                             " must be  configured.")
    for scheme in schemes:
        if scheme not in available:
            raise sysprops.error(origin, f"Authentication scheme {scheme} is not available.")
    return tuple(dict.fromkeys(schemes)), "sasl" in schemes


def _four_letter_words(sysprops: _SystemProperties, warnings: list[str]) -> frozenset[str]:
    """FourLetterCommands.isEnabled: the whitelist, `*` for all; srvr always; isro if read-only."""
    words: set[str] = set()
    whitelist = sysprops.values.get("zookeeper.4lw.commands.whitelist")
    for word in (whitelist.split(",") if whitelist is not None else []):
        word = java_trim(word)
        if word == "*":
            words |= FOUR_LETTER_WORDS
            break
        if word in FOUR_LETTER_WORDS:
            words.add(word)
        elif word:
            source, line, key = sysprops.origins.get(
                "zookeeper.4lw.commands.whitelist",
                ("command line", None, "-Dzookeeper.4lw.commands.whitelist"))
            where = source if line is None else f"{source}:{line}"
            warnings.append(f"{where}: {key}: '{word}' is not a four letter word")
    if sysprops.text("readonlymode.enabled", "false") == "true":
        words.add("isro")
    words.add("srvr")
    return frozenset(words)


def _snap_count(sysprops: _SystemProperties, warnings: list[str]) -> int:
    snap_count = sysprops.integer("zookeeper.snapCount", 100000)
    if snap_count < 2:
        warnings.append(f"SnapCount should be 2 or more. Now, snapCount is reset to 2 (was"
                        f" {snap_count})")
        return 2
    return snap_count


COMMIT_LOG_COUNT_DEFAULT = 500
SNAPSHOT_SIZE_FACTOR_DEFAULT = 0.33


def _commit_log_count(sysprops: _SystemProperties, warnings: list[str]) -> int:
    """ZKDatabase: fewer than 500 is raised to 500 (with a warning), as Apache does."""
    count = sysprops.integer("zookeeper.commitLogCount", COMMIT_LOG_COUNT_DEFAULT)
    if count < COMMIT_LOG_COUNT_DEFAULT:
        warnings.append(f"The configured commitLogCount {count} is less than the recommended "
                        f"{COMMIT_LOG_COUNT_DEFAULT}, going to use the recommended one")
        return COMMIT_LOG_COUNT_DEFAULT
    return count


def _snapshot_size_factor(sysprops: _SystemProperties, warnings: list[str]) -> float:
    """ZKDatabase: above 1 is the default again (with a warning); negative turns DIFF from the
    txn log off. A value that is no number stops start-up (Apache logs it and uses 0.33)."""
    value = sysprops.values.get("zookeeper.snapshotSizeFactor")
    if value is None:
        return SNAPSHOT_SIZE_FACTOR_DEFAULT
    try:
        factor = float(value.strip())
    except ValueError:
        raise sysprops.error("zookeeper.snapshotSizeFactor", f"invalid number '{value}'") from None
    if factor > 1:
        warnings.append(f"The configured zookeeper.snapshotSizeFactor {factor} is invalid, going to "
                        f"use the default {SNAPSHOT_SIZE_FACTOR_DEFAULT}")
        return SNAPSHOT_SIZE_FACTOR_DEFAULT
    return factor


def _admin_enable_server(sysprops: _SystemProperties) -> bool:
    # AdminServerFactory: anything but exactly "false" enables it.
    value = sysprops.values.get("zookeeper.admin.enableServer")
    if value is None:
        return True
    if value.lower() not in ("true", "false"):
        raise sysprops.error("zookeeper.admin.enableServer",
                             f"invalid boolean '{value}' (true or false)")
    return value != "false"


def _system_port(sysprops: _SystemProperties, name: str, default: int) -> int:
    port = sysprops.integer(name, default)
    if not 0 <= port <= 65535:
        raise sysprops.error(name, f"port out of range:{port}")
    return port


def _metrics_http_port(reader: _Reader, provider_config: dict[str, str]) -> int:
    text = provider_config.get("httpPort")
    if text is None:
        return 7000
    try:
        port = parse_java_int(text)
    except ValueError:
        raise reader.error("metricsProvider.httpPort", f"invalid integer '{text}'") from None
    if not 0 <= port <= 65535:
        raise reader.error("metricsProvider.httpPort", f"port out of range:{port}")
    return port


def _snapshot_compression_method(sysprops: _SystemProperties) -> str:
    # SnapStream.StreamMode.fromString: case-insensitive; anything else means uncompressed.
    method = sysprops.text("zookeeper.snapshot.compression.method", "").lower()
    if method not in ("", "gz", "snappy"):
        raise sysprops.error("zookeeper.snapshot.compression.method",
                             f"unknown compression method '{method}' (gz, snappy or empty)")
    return method


def _optional_path(text: str | None) -> Path | None:
    return Path(text) if text else None


# ---------------------------------------------------------------------------------------------
# I/O wrapper


def _read_text(path: Path) -> str:
    # Properties.load(InputStream) reads ISO-8859-1; UTF-8 is read as UTF-8 since that is what
    # people write today, and bytes that are not UTF-8 fall back to Java's reading.
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def load_config(path: Path | str, system_properties: Mapping[str, str] | None = None) -> ServerConfig:
    """Read zoo.cfg, its dynamic config file and `<dataDir>/myid`, then `parse_config`."""
    config_path = Path(path)
    try:
        text = _read_text(config_path)
    except OSError as error:
        raise ConfigError(str(config_path), None, "config",
                          f"Error processing {config_path}: {error.strerror}") from None
    properties = parse_properties(text, str(config_path))
    dynamic_text: str | None = None
    dynamic_prop = properties.get("dynamicConfigFile")
    if dynamic_prop is not None:
        try:
            dynamic_text = _read_text(Path(java_trim(dynamic_prop.value)))
        except OSError:
            dynamic_text = None  # parse_config reports it after the static file's own checks
    myid_text: str | None = None
    data_dir_prop = properties.get("dataDir")
    if data_dir_prop is not None:
        myid_path = Path(java_trim(data_dir_prop.value)) / "myid"
        if myid_path.is_file():
            myid_text = _read_text(myid_path)
    return parse_config(text, config_path=config_path, system_properties=system_properties,
                        myid_text=myid_text, dynamic_config_text=dynamic_text)
