"""pyzk.config: the Properties parser, defaults and every validation rule, from text.

Where a reason string is quoted from Apache ZooKeeper, it was checked by starting the Debian
3.8.0 server on the same config (QuorumPeerMain exits 2 with that message).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pyzk.config import (
    FOUR_LETTER_WORDS,
    ConfigError,
    QuorumServer,
    decode_java_int,
    java_trim,
    load_config,
    parse_config,
    parse_java_int,
    parse_properties,
)

BASE = "tickTime=2000\ndataDir=/var/lib/zk\nclientPort=2181\n"
ENSEMBLE = (
    "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/lib/zk\nclientPort=2181\n"
    "server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\nserver.3=10.0.0.3:2888:3888\n"
)


def error_of(text: str, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, config_path=Path("zoo.cfg"), **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


# --- java.util.Properties ------------------------------------------------------------------


@pytest.mark.parametrize("line", ["key=value", "key: value", "key value", "key = value",
                                  "  key\t=\tvalue", "key:value", "key\t value"])
def test_properties_separators(line: str) -> None:
    assert parse_properties(line)["key"].value == "value"


def test_properties_comments_and_blank_lines() -> None:
    props = parse_properties("# a comment\n! another\n\n   \n  # indented comment\na=1\n")
    assert list(props) == ["a"]
    assert props["a"].line == 6


def test_properties_keep_trailing_whitespace_of_value_and_line_numbers() -> None:
    props = parse_properties("a=1  \nb=2\n")
    assert props["a"].value == "1  "
    assert (props["a"].line, props["b"].line) == (1, 2)


def test_properties_continuation_skips_leading_whitespace_of_next_line() -> None:
    props = parse_properties("list=a,\\\n     b,\\\n  c\nnext=1\n")
    assert props["list"].value == "a,b,c"
    assert props["list"].line == 1
    assert props["next"].line == 4


def test_properties_even_backslashes_do_not_continue() -> None:
    props = parse_properties("path=C:\\\\\nother=1\n")
    assert props["path"].value == "C:\\"
    assert props["other"].value == "1"


def test_properties_comment_line_never_continues() -> None:
    props = parse_properties("# comment \\\nkey=1\n")
    assert props["key"].value == "1"


def test_properties_escapes() -> None:
    props = parse_properties(r"k\ e\=y=a\tb\u0041\\c\q" + "\n")
    assert props["k e=y"].value == "a\tbA\\cq"


def test_properties_malformed_unicode_escape_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_properties("a=1\nbad=\\u12G4\n", "zoo.cfg")
    assert str(caught.value) == "zoo.cfg:2: bad: Malformed \\uxxxx encoding."


def test_properties_line_endings_cr_crlf_lf() -> None:
    props = parse_properties("a=1\rb=2\r\nc=3\n")
    assert {k: (p.value, p.line) for k, p in props.items()} == {
        "a": ("1", 1), "b": ("2", 2), "c": ("3", 3)}


def test_properties_last_occurrence_wins() -> None:
    props = parse_properties("a=1\nb=2\na=3\n")
    assert props["a"].value == "3" and props["a"].line == 3


def test_properties_key_without_value() -> None:
    assert parse_properties("lonely\n")["lonely"].value == ""


def test_java_trim_strips_control_chars_but_not_unicode_spaces() -> None:
    assert java_trim("\x00 a \x1f") == "a"
    assert java_trim("\u00a0a") == "\u00a0a"


def test_java_number_parsing() -> None:
    assert parse_java_int("+42") == 42
    assert parse_java_int("-2147483648") == -(2**31)
    for bad in ("2147483648", "1_000", " 1", "0x10", "", "1.0"):
        with pytest.raises(ValueError):
            parse_java_int(bad)
    assert parse_java_int("9223372036854775807", bits=64) == 2**63 - 1
    assert decode_java_int("0x10") == 16
    assert decode_java_int("#ff") == 255
    assert decode_java_int("010") == 8
    assert decode_java_int("-0") == 0
    with pytest.raises(ValueError):
        decode_java_int("09")


# --- defaults ------------------------------------------------------------------------------


def test_standalone_defaults() -> None:
    config = parse_config("dataDir=/d\nclientPort=2181\n")
    assert config.tick_time_ms == 3000
    assert (config.session_timeout_ms_min, config.session_timeout_ms_max) == (6000, 60000)
    assert config.data_log_dir == Path("/d")
    assert config.client_port_address == "0.0.0.0"
    assert config.secure_client_port is None
    assert config.max_client_cnxns == 60
    assert config.standalone and config.server_id == 1 and config.my_id is None
    assert config.four_letter_words == frozenset({"srvr"})
    assert not config.skip_acl and config.super_digest is None
    assert not config.extended_types_enabled
    assert config.digest_enabled and config.force_sync and config.close_session_txn_enabled
    assert config.snap_count == 100000
    assert config.snap_size_limit_kb == 4194304
    assert config.txn_log_size_limit_kb == -1
    assert config.pre_alloc_size_kb == 65536
    assert config.jute_maxbuffer == 0xFFFFF
    assert config.global_outstanding_limit == 1000
    assert config.admin_enable_server
    assert (config.admin_server_address, config.admin_server_port) == ("0.0.0.0", 8080)
    assert config.admin_command_url == "/commands"
    assert config.autopurge_snap_retain_count == 3
    assert config.autopurge_purge_interval_hours == 0
    assert config.standalone_enabled and not config.reconfig_enabled
    assert not config.readonly_mode_enabled
    assert not config.local_sessions_enabled and not config.local_sessions_upgrading_enabled
    assert config.metrics_provider_class.endswith("DefaultMetricsProvider")
    assert (config.metrics_http_host, config.metrics_http_port) == ("0.0.0.0", 7000)
    assert config.jaas_config_path is None and config.auth_providers == {}
    assert not config.enforce_quota
    assert config.container_check_interval_ms == 60000
    assert config.container_max_per_minute == 10000
    assert config.ssl == {}
    assert config.snapshot_compression_method == ""
    assert not config.snapshot_trust_empty and config.db_autocreate
    assert config.election_alg == 3
    assert config.unknown_keys == () and config.warnings == ()


def test_debian_sample_config_parses_with_its_values() -> None:
    debian = Path("/etc/zookeeper/conf/zoo.cfg")
    if not debian.exists():
        pytest.skip("Debian zookeeper package not installed")
    config = parse_config(debian.read_text())
    assert (config.tick_time_ms, config.init_limit_ticks, config.sync_limit_ticks) == (2000, 10, 5)
    assert config.client_port == 2181 and config.standalone


def test_project_sample_config() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "conf" / "zoo.cfg")
    assert (config.tick_time_ms, config.init_limit_ticks, config.sync_limit_ticks) == (2000, 10, 5)
    assert config.client_port == 2181
    assert config.four_letter_words == {"srvr", "ruok", "mntr", "stat", "conf", "isro"}
    assert not config.admin_enable_server
    assert config.unknown_keys == () and config.warnings == ()


def test_session_timeouts_minus_one_means_default() -> None:
    config = parse_config(BASE + "minSessionTimeout=-1\nmaxSessionTimeout=-1\n")
    assert (config.session_timeout_ms_min, config.session_timeout_ms_max) == (4000, 40000)
    config = parse_config(BASE + "minSessionTimeout=1000\nmaxSessionTimeout=90000\n")
    assert (config.session_timeout_ms_min, config.session_timeout_ms_max) == (1000, 90000)


def test_values_are_trimmed() -> None:
    config = parse_config("dataDir = /d  \nclientPort= 2181  \ntickTime = 2000 \n")
    assert config.data_dir == Path("/d") and config.client_port == 2181


def test_client_port_zero_means_not_set_and_client_port_address_kept() -> None:
    config = parse_config(BASE + "clientPortAddress=127.0.0.1\n")
    assert config.client_port_address == "127.0.0.1"


def test_snap_retain_count_below_three_is_reset_with_a_warning() -> None:
    config = parse_config(BASE + "autopurge.snapRetainCount=1\n")
    assert config.autopurge_snap_retain_count == 3
    assert any("Defaulting to 3" in warning for warning in config.warnings)


def test_snap_count_minimum_two() -> None:
    assert parse_config(BASE + "snapCount=1\n").snap_count == 2
    assert parse_config(BASE + "snapCount=0x20\n").snap_count == 32


# --- system properties ---------------------------------------------------------------------


def test_unparsed_keys_become_zookeeper_system_properties() -> None:
    config = parse_config(BASE + "snapCount=5000\nfoo.bar=baz\n")
    assert config.system_properties["zookeeper.snapCount"] == "5000"
    assert config.system_properties["zookeeper.foo.bar"] == "baz"
    assert "zookeeper.tickTime" not in config.system_properties
    assert config.snap_count == 5000


def test_command_line_properties_are_read_and_zoo_cfg_overrides_them() -> None:
    config = parse_config(BASE + "snapCount=7\n", system_properties={
        "zookeeper.snapCount": "9", "zookeeper.extendedTypesEnabled": "true",
        "jute.maxbuffer": "0x400000", "readonlymode.enabled": "true",
        "java.security.auth.login.config": "/etc/jaas.conf",
        "znode.container.checkIntervalMs": "1000"})
    # QuorumPeerConfig calls System.setProperty after the JVM read -D: zoo.cfg wins.
    assert config.snap_count == 7
    assert config.extended_types_enabled
    assert config.jute_maxbuffer == 0x400000
    assert config.readonly_mode_enabled and "isro" in config.four_letter_words
    assert config.jaas_config_path == Path("/etc/jaas.conf")
    assert config.container_check_interval_ms == 1000


def test_unprefixed_properties_cannot_be_set_from_zoo_cfg() -> None:
    config = parse_config(BASE + "jute.maxbuffer=5\nznode.container.checkIntervalMs=5\n"
                                 "readonlymode.enabled=true\n")
    assert config.jute_maxbuffer == 0xFFFFF
    assert config.container_check_interval_ms == 60000
    assert not config.readonly_mode_enabled
    assert "jute.maxbuffer" in config.unknown_keys


def test_four_letter_word_whitelist() -> None:
    config = parse_config(BASE + "4lw.commands.whitelist= ruok , mntr,,stat\n")
    assert config.four_letter_words == {"ruok", "mntr", "stat", "srvr"}
    assert parse_config(BASE + "4lw.commands.whitelist=*\n").four_letter_words == FOUR_LETTER_WORDS
    config = parse_config(BASE + "4lw.commands.whitelist=ruok,nope\n")
    assert config.four_letter_words == {"ruok", "srvr"}
    assert any("'nope' is not a four letter word" in w for w in config.warnings)


@pytest.mark.parametrize(("value", "expected"), [("yes", True), ("true", False), ("YES", False)])
def test_skip_acl_only_exactly_yes(value: str, expected: bool) -> None:
    assert parse_config(BASE + f"skipACL={value}\n").skip_acl is expected


@pytest.mark.parametrize(("value", "expected"), [("no", False), ("false", True), ("NO", True)])
def test_force_sync_disabled_only_by_no(value: str, expected: bool) -> None:
    assert parse_config(BASE + f"forceSync={value}\n").force_sync is expected


def test_feature_properties() -> None:
    config = parse_config(BASE + "\n".join([
        "DigestAuthenticationProvider.superDigest=super:abc=",
        "extendedTypesEnabled=TRUE", "digest.enabled=false", "closeSessionTxn.enabled=false",
        "enforceQuota=true", "authProvider.1=org.example.Auth", "ssl.keyStore.location=/k",
        "snapshot.compression.method=GZ", "snapshot.trust.empty=true", "db.autocreate=false",
        "admin.serverPort=9090", "admin.serverAddress=127.0.0.1", "admin.commandURL=/cmd",
        "metricsProvider.className=" + "org.apache.zookeeper.metrics.prometheus."
        "PrometheusMetricsProvider",
        "metricsProvider.httpPort=7001", "metricsProvider.httpHost=127.0.0.1",
        "preAllocSize=1024", "globalOutstandingLimit=5", "localSessionsEnabled=true",
    ]) + "\n")
    assert config.super_digest == "super:abc="
    assert config.extended_types_enabled and not config.digest_enabled
    assert not config.close_session_txn_enabled and config.enforce_quota
    assert config.auth_providers == {"1": "org.example.Auth"}
    assert config.ssl == {"ssl.keyStore.location": "/k"}
    assert config.snapshot_compression_method == "gz"
    assert config.snapshot_trust_empty and not config.db_autocreate
    assert (config.admin_server_address, config.admin_server_port) == ("127.0.0.1", 9090)
    assert config.admin_command_url == "/cmd"
    assert config.metrics_provider_class.endswith("PrometheusMetricsProvider")
    assert (config.metrics_http_host, config.metrics_http_port) == ("127.0.0.1", 7001)
    assert config.metrics_provider_config == {"httpPort": "7001", "httpHost": "127.0.0.1"}
    assert config.pre_alloc_size_kb == 1024 and config.global_outstanding_limit == 5
    assert config.local_sessions_enabled
    assert config.unknown_keys == ()


def test_admin_enable_server() -> None:
    assert not parse_config(BASE + "admin.enableServer=false\n").admin_enable_server
    assert parse_config(BASE + "admin.enableServer=true\n").admin_enable_server
    assert "admin.enableServer: invalid boolean 'no'" in error_of(BASE + "admin.enableServer=no\n")


def test_bad_system_property_value_names_its_line() -> None:
    assert error_of(BASE + "snapCount=lots\n") == "zoo.cfg:4: snapCount: invalid integer 'lots'"
    assert error_of(BASE + "extendedTypesEnabled=yes\n") == (
        "zoo.cfg:4: extendedTypesEnabled: invalid boolean 'yes' (true or false)")
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE, system_properties={"jute.maxbuffer": "big"})
    assert str(caught.value) == "command line: -Djute.maxbuffer: invalid integer 'big'"


# --- unknown keys and typos ----------------------------------------------------------------


def test_typo_of_a_known_key_is_reported_with_a_suggestion() -> None:
    config = parse_config("tickTme=2000\ndataDir=/d\nclientPort=2181\n")
    assert config.tick_time_ms == 3000
    assert config.unknown_keys == ("tickTme",)
    assert config.system_properties["zookeeper.tickTme"] == "2000"
    assert len(config.warnings) == 1
    assert config.warnings[0].startswith("zoo.cfg:1: tickTme: unknown key, did you mean tickTime?")


def test_wrong_case_key_gets_a_suggestion() -> None:
    config = parse_config(BASE + "maxclientcnxns=10\n")
    assert "did you mean maxClientCnxns?" in config.warnings[0]


def test_known_but_unimplemented_keys_are_listed_without_typo_warning() -> None:
    config = parse_config(BASE + "sslQuorumReloadCertFiles=false\nleaderServes=yes\nsomething.new=1\n")
    assert config.unknown_keys == ("sslQuorumReloadCertFiles", "leaderServes", "something.new")
    assert config.warnings == ()


def test_commit_log_count_and_snapshot_size_factor_as_zkdatabase_reads_them() -> None:
    config = parse_config(BASE + "commitLogCount=800\nsnapshotSizeFactor=0.5\n")
    assert (config.commit_log_count, config.snapshot_size_factor, config.unknown_keys) == (800, 0.5, ())
    config = parse_config(BASE + "commitLogCount=10\nsnapshotSizeFactor=2\n")
    assert (config.commit_log_count, config.snapshot_size_factor) == (500, 0.33)
    assert len(config.warnings) == 2
    assert parse_config(BASE + "snapshotSizeFactor=-1\n").snapshot_size_factor == -1.0
    assert parse_config(BASE).commit_log_count == 500
    assert "invalid number 'lots'" in error_of(BASE + "snapshotSizeFactor=lots\n")


# --- validation (messages as Apache ZooKeeper 3.8.0 gives them) ---------------------------


def test_missing_data_dir() -> None:
    assert error_of("clientPort=2181\n") == "zoo.cfg: dataDir: dataDir is not set"


def test_tick_time_zero() -> None:
    assert error_of("tickTime=0\ndataDir=/d\nclientPort=1\n") == (
        "zoo.cfg:1: tickTime: tickTime is not set")


def test_non_numeric_tick_time() -> None:
    assert error_of("tickTime=abc\ndataDir=/d\nclientPort=1\n") == (
        "zoo.cfg:1: tickTime: invalid integer 'abc'")


@pytest.mark.parametrize("key", ["clientPort", "initLimit", "syncLimit", "maxClientCnxns",
                                 "minSessionTimeout", "autopurge.purgeInterval"])
def test_every_integer_key_rejects_non_numbers(key: str) -> None:
    assert error_of(f"dataDir=/d\nclientPort=1\n{key}=1x\n").endswith(
        f"{key}: invalid integer '1x'")


def test_election_alg_other_than_three() -> None:
    assert error_of(BASE + "electionAlg=1\n") == (
        "zoo.cfg:4: electionAlg: Invalid electionAlg value. Only 3 is supported.")
    assert parse_config(BASE + "electionAlg=3\n").election_alg == 3


def test_client_port_address_without_client_port() -> None:
    assert error_of("dataDir=/d\nclientPortAddress=127.0.0.1\n") == (
        "zoo.cfg:2: clientPortAddress: clientPortAddress is set but clientPort is not set")


def test_secure_client_port_address_without_secure_client_port() -> None:
    assert "secureClientPortAddress is set but secureClientPort is not set" in error_of(
        BASE + "secureClientPortAddress=127.0.0.1\n")


def test_port_out_of_range() -> None:
    assert error_of("dataDir=/d\nclientPort=70000\n") == (
        "zoo.cfg:2: clientPort: port out of range:70000")


def test_standalone_without_any_client_port() -> None:
    assert error_of("dataDir=/d\n") == "zoo.cfg: clientPort: clientPort is not set"
    assert parse_config("dataDir=/d\nsecureClientPort=2281\n").secure_client_port == 2281


def test_bad_boolean() -> None:
    assert error_of(BASE + "standaloneEnabled=yes\n") == (
        "zoo.cfg:4: standaloneEnabled: Invalid option yes for standaloneEnabled."
        " Choose 'true' or 'false.'")


def test_min_session_timeout_larger_than_max() -> None:
    assert error_of(BASE + "minSessionTimeout=50000\nmaxSessionTimeout=40000\n") == (
        "zoo.cfg:4: minSessionTimeout: minSessionTimeout must not be larger than"
        " maxSessionTimeout")


def test_peer_type() -> None:
    assert error_of(BASE + "peerType=voter\n") == "zoo.cfg:4: peerType: Unrecognised peertype: voter"


def test_unknown_metrics_provider() -> None:
    assert error_of(BASE + "metricsProvider.className=foo.Bar\n") == (
        "zoo.cfg:4: metricsProvider.className: metrics provider class was not found")


def test_quorum_sasl_dependencies() -> None:
    assert "quorum.auth.enableSasl is disabled" in error_of(
        BASE + "quorum.auth.serverRequireSasl=true\n")


# --- server.N ------------------------------------------------------------------------------


def parse_server_line(value: str, **extra: str) -> QuorumServer:
    text = ENSEMBLE.replace("server.1=10.0.0.1:2888:3888", f"server.1={value}")
    text += "".join(f"{k}={v}\n" for k, v in extra.items())
    return parse_config(text, myid_text="2\n").servers[1]


def test_server_forms() -> None:
    server = parse_server_line("zk1:2888:3888")
    assert (server.sid, server.host, server.quorum_port, server.election_port) == (
        1, "zk1", 2888, 3888)
    assert server.role == "participant" and server.client_port is None
    assert parse_server_line("zk1:2888:3888:observer").role == "observer"
    assert parse_server_line("zk1:2888:3888:Participant").role == "participant"
    server = parse_server_line("zk1:2888:3888;2181")
    assert (server.client_host, server.client_port) == ("0.0.0.0", 2181)
    server = parse_server_line("zk1:2888:3888:observer;10.1.1.1:2182")
    assert (server.role, server.client_host, server.client_port) == ("observer", "10.1.1.1", 2182)
    server = parse_server_line("[::1]:2888:3888;[::1]:2181")
    assert (server.host, server.client_host) == ("::1", "::1")
    assert server.config_text() == "[::1]:2888:3888:participant;[::1]:2181"


def test_server_multi_address_needs_the_feature() -> None:
    assert "Multiple address feature is disabled" in error_of(
        ENSEMBLE.replace("10.0.0.1:2888:3888", "a:1:2|b:3:4"), myid_text="1")
    server = parse_server_line("a:1:2|b:3:4", **{"multiAddress.enabled": "true"})
    assert server.addresses == (("a", 1, 2), ("b", 3, 4))


@pytest.mark.parametrize("value", ["10.0.0.1:2888", "10.0.0.1", "a:1:2:observer:x",
                                   "a:1:2;b:3:c;d"])
def test_server_wrong_format(value: str) -> None:
    message = error_of(ENSEMBLE.replace("10.0.0.1:2888:3888", value), myid_text="2")
    assert message.startswith(f"zoo.cfg:6: server.1: {value} does not have the form")


def test_server_equal_ports() -> None:
    assert error_of(ENSEMBLE.replace("10.0.0.1:2888:3888", "10.0.0.1:2888:2888"),
                    myid_text="2") == (
        "zoo.cfg:6: server.1: Client and election port must be different! Please update the"
        " configuration file on server.1")


def test_server_bad_role_and_bad_port_and_bad_sid() -> None:
    assert error_of(ENSEMBLE.replace("3888\nserver.2", "3888:voter\nserver.2"),
                    myid_text="2").endswith("server.1: Unrecognised peertype: voter")
    assert error_of(ENSEMBLE.replace("10.0.0.1:2888", "10.0.0.1:x"), myid_text="2").endswith(
        "server.1: Address unresolved: 10.0.0.1:x")
    assert error_of(ENSEMBLE.replace("server.1=", "server.x="), myid_text="2") == (
        "zoo.cfg:6: server.x: invalid number 'x'")


def test_server_trailing_whitespace_fails_as_in_zookeeper() -> None:
    # QuorumMaj does not trim the value; Apache 3.8.0 refuses this line the same way.
    assert error_of(ENSEMBLE.replace("10.0.0.1:2888:3888", "10.0.0.1:2888:3888  "),
                    myid_text="2").endswith("server.1: Address unresolved: 10.0.0.1:3888  ")


def test_ensemble() -> None:
    config = parse_config(ENSEMBLE, myid_text="2\n")
    assert not config.standalone and config.my_id == 2 and config.server_id == 2
    assert sorted(config.voters) == [1, 2, 3] and config.observers == {}
    me = config.servers[2]
    assert (me.client_host, me.client_port, me.client_address_from_static) == (
        "0.0.0.0", 2181, True)
    assert me.config_text() == "10.0.0.2:2888:3888:participant"
    assert config.connect_to_learner_master_limit_ticks == 10


def test_client_port_from_server_line() -> None:
    text = ENSEMBLE.replace("clientPort=2181\n", "").replace(
        "10.0.0.2:2888:3888", "10.0.0.2:2888:3888;127.0.0.1:2182")
    config = parse_config(text, myid_text="2")
    assert (config.client_port, config.client_port_address) == (2182, "127.0.0.1")


def test_client_port_disagreeing_with_server_line() -> None:
    text = ENSEMBLE.replace("10.0.0.2:2888:3888", "10.0.0.2:2888:3888;2182")
    assert error_of(text, myid_text="2") == (
        "zoo.cfg:5: clientPort: client address for this server (id = 2) in static config file"
        " is 0.0.0.0:2181 is different from client address found in dynamic file:"
        " 0.0.0.0:2182")
    assert parse_config(text.replace("2181", "2182"), myid_text="2").client_port == 2182


def test_myid_missing_in_ensemble() -> None:
    assert error_of(ENSEMBLE) == "/var/lib/zk/myid: myid: myid file is missing"


def test_myid_not_among_servers() -> None:
    assert error_of(ENSEMBLE, myid_text="7\n") == (
        "/var/lib/zk/myid:1: myid: My id 7 not in the peer list")


def test_myid_is_first_line_untrimmed() -> None:
    assert parse_config(ENSEMBLE, myid_text="3\r\nignored").my_id == 3
    assert error_of(ENSEMBLE, myid_text="1 \n") == (
        "/var/lib/zk/myid:1: myid: serverid 1  is not a number")
    assert error_of(ENSEMBLE, myid_text="") == "/var/lib/zk/myid:1: myid: serverid null is not a number"


def test_myid_is_read_in_standalone_too() -> None:
    assert "is not a number" in error_of(BASE, myid_text="replace this text\n")
    assert parse_config(BASE, myid_text="5\n").server_id == 1


def test_init_and_sync_limit_required_in_ensemble() -> None:
    assert error_of(ENSEMBLE.replace("initLimit=10\n", ""), myid_text="1") == (
        "zoo.cfg: initLimit: initLimit is not set")
    assert error_of(ENSEMBLE.replace("syncLimit=5\n", "syncLimit=0\n"), myid_text="1") == (
        "zoo.cfg:3: syncLimit: syncLimit is not set")


def test_single_server_line_is_ignored_in_standalone() -> None:
    config = parse_config(BASE + "server.1=127.0.0.1:2888:3888\n")
    assert config.standalone and config.server_id == 1
    assert any("only one server specified (ignoring)" in w for w in config.warnings)


def test_standalone_enabled_false_makes_one_server_distributed() -> None:
    config = parse_config(BASE + "initLimit=5\nsyncLimit=2\nstandaloneEnabled=false\n"
                                 "server.1=127.0.0.1:2888:3888\n", myid_text="1")
    assert not config.standalone and config.server_id == 1
    assert "number of participants should be >0" in error_of(BASE + "standaloneEnabled=false\n")


def test_observers_without_participants() -> None:
    assert error_of(BASE + "server.1=127.0.0.1:2888:3888:observer\n") == (
        "zoo.cfg: server.1: Observers w/o participants is an invalid configuration")


def test_two_voters_warn() -> None:
    text = ENSEMBLE.replace("server.3=10.0.0.3:2888:3888\n", "")
    assert any("No server failure" in w for w in parse_config(text, myid_text="1").warnings)
    text = ENSEMBLE + "server.4=10.0.0.4:2888:3888\n"
    assert any("odd number" in w for w in parse_config(text, myid_text="1").warnings)


def test_peer_type_follows_server_list() -> None:
    text = ENSEMBLE + "server.4=10.0.0.4:2888:3888:observer\npeerType=participant\n"
    config = parse_config(text, myid_text="4")
    assert config.peer_type == "observer"
    assert any("Defaulting to servers list" in w for w in config.warnings)


def test_hierarchical_quorum() -> None:
    text = ENSEMBLE + "group.1=1:2\ngroup.2=3\nweight.3=2\n"
    config = parse_config(text, myid_text="1")
    assert config.groups == {1: (1, 2), 2: (3,)}
    assert config.weights == {1: 1, 2: 1, 3: 2}
    assert "Server 3is not in a group" in error_of(ENSEMBLE + "group.1=1:2\n", myid_text="1")
    assert "Server 2is in multiple groups" in error_of(
        ENSEMBLE + "group.1=1:2\ngroup.2=2:3\n", myid_text="1")


# --- dynamic config ------------------------------------------------------------------------

DYNAMIC = ("server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\n"
           "server.2=10.0.0.2:2888:3888:participant;0.0.0.0:2181\n"
           "server.3=10.0.0.3:2888:3888:participant;0.0.0.0:2181\n")
STATIC = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\n"


def test_dynamic_config_file() -> None:
    config = parse_config(STATIC + "dynamicConfigFile=/d/zoo.cfg.dynamic.100000000\n",
                          dynamic_config_text=DYNAMIC, myid_text="1")
    assert sorted(config.servers) == [1, 2, 3]
    assert config.config_version == 0x100000000
    assert config.client_port == 2181
    assert config.servers[1].config_text() == "10.0.0.1:2888:3888:participant;0.0.0.0:2181"


def test_dynamic_config_rules() -> None:
    with_dynamic = STATIC + "dynamicConfigFile=/d/zoo.cfg.dynamic\n"
    assert error_of(with_dynamic + "server.1=a:1:2\n", dynamic_config_text=DYNAMIC) == (
        "zoo.cfg:6: server.1: parameter: server.1 must be in a separate dynamic config file")
    assert error_of(with_dynamic, dynamic_config_text=DYNAMIC + "version=1\n") == (
        "/d/zoo.cfg.dynamic:4: version: dynamic file shouldn't have version inside")
    assert error_of(with_dynamic, dynamic_config_text=DYNAMIC + "tickTime=1\n") == (
        "/d/zoo.cfg.dynamic:4: tickTime: Unrecognised parameter: tickTime")
    assert "Error processing /d/zoo.cfg.dynamic" in error_of(with_dynamic)
    assert parse_config(with_dynamic, dynamic_config_text=DYNAMIC,
                        myid_text="1").config_version == 0


# --- load_config ---------------------------------------------------------------------------


def test_load_config_reads_myid_and_dynamic_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "myid").write_text("3\n")
    dynamic = tmp_path / "zoo.cfg.dynamic.a"
    dynamic.write_text(DYNAMIC)
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(STATIC.replace("/d", str(data_dir)) + f"dynamicConfigFile={dynamic}\n")
    config = load_config(cfg)
    assert config.my_id == 3 and config.config_version == 0xA
    assert config.config_path == cfg


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Error processing"):
        load_config(tmp_path / "nope.cfg")


# --- security settings: enforced, or start-up refused ---------------------------------------

SASL_PROVIDER_LINE = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"


def test_unimplemented_security_key_set_on_stops_start_up_with_its_line() -> None:
    message = error_of(BASE + "sslQuorumReloadCertFiles=true\n")
    assert message.startswith("zoo.cfg:4: sslQuorumReloadCertFiles: ")
    assert "not implemented by pyzk; refusing to start" in message


def test_quorum_sasl_keys_are_read() -> None:
    text = BASE + "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n" \
                  "quorum.auth.serverRequireSasl=true\nquorum.auth.learner.saslLoginContext=L\n"
    config = parse_config(text)
    assert (config.quorum_sasl_enabled, config.quorum_learner_require_sasl, config.quorum_server_require_sasl,
            config.quorum_learner_login_context, config.quorum_server_login_context) == (
        True, True, True, "L", "QuorumServer")
    assert not {"quorum.auth.enableSasl", "quorum.auth.learner.saslLoginContext"} & set(config.unknown_keys)
    assert "quorum.auth.kerberos.servicePrincipal" not in parse_config(
        BASE + "quorum.auth.kerberos.servicePrincipal=zkquorum/h\n").unknown_keys
    # QuorumPeerConfig's order of the three flags
    assert "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl" in error_of(
        BASE + "quorum.auth.serverRequireSasl=true\n")
    assert "quorum.auth.learnerRequireSasl is disabled, so cannot enable quorum.auth.serverRequireSasl" in error_of(
        BASE + "quorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true\n")


@pytest.mark.parametrize("line", [
    "sslQuorum=false\n", "portUnification=false\n", "quorum.auth.enableSasl=false\n",
    "quorum.auth.learnerRequireSasl=false\n", "quorum.auth.serverRequireSasl=false\n",
    "quorum.auth.learner.saslLoginContext=QuorumLearner\n",
    "enforce.auth.enabled=false\nenforce.auth.schemes=digest\n",
    "sessionRequireClientSASLAuth=false\n",
])
def test_security_keys_at_their_off_value_still_start(line: str) -> None:
    config = parse_config(BASE + line)
    assert config.enforce_auth_schemes == () and not config.sasl_auth_required


def test_x509_provider_starts() -> None:
    config = parse_config(BASE + "authProvider.x509=org.apache.zookeeper.server.auth."
                                 "X509AuthenticationProvider\nX509AuthenticationProvider.superUser=CN=a\n")
    assert config.system_properties["zookeeper.X509AuthenticationProvider.superUser"] == "CN=a"
    assert "X509AuthenticationProvider.superUser" not in config.unknown_keys
    config = parse_config(BASE + "enforce.auth.enabled=true\nenforce.auth.schemes=x509\n", system_properties={
        "zookeeper.authProvider.1": "org.apache.zookeeper.server.auth.X509AuthenticationProvider"})
    assert config.enforce_auth_schemes == ("x509",)


SECURE = BASE + "secureClientPort=2281\n"


def test_secure_client_port_registers_the_x509_provider() -> None:
    """QuorumPeerConfig.configureSSLAuth: zookeeper.authProvider.x509 unless already set."""
    config = parse_config(SECURE)
    assert config.system_properties["zookeeper.authProvider.x509"] == (
        "org.apache.zookeeper.server.auth.X509AuthenticationProvider")
    config = parse_config(SECURE + "ssl.authProvider=x509\nauthProvider.x509=Other\n")
    assert config.system_properties["zookeeper.authProvider.x509"] == "Other"
    assert "zookeeper.authProvider.x509" not in parse_config(BASE).system_properties


def test_ssl_auth_provider_other_than_x509() -> None:
    assert error_of(SECURE + "ssl.authProvider=custom\n") == (
        "zoo.cfg:5: ssl.authProvider: No auth provider configured for the SSL authentication"
        " scheme 'custom'.")
    message = error_of(SECURE + "ssl.authProvider=custom\nauthProvider.custom=com.example.Custom\n")
    assert "a TLS authentication provider other than x509" in message
    assert "zookeeper.authProvider.custom=com.example.Custom" in message
    # Without secureClientPort Apache never reads it.
    parse_config(BASE + "ssl.authProvider=custom\n")


def test_quorum_tls_auth_provider_stops_start_up() -> None:
    assert "a TLS authentication provider is not implemented" in error_of(BASE + "ssl.quorum.authProvider=x509\n")


def test_enforce_auth_schemes_are_trimmed_and_checked() -> None:
    config = parse_config(BASE + "enforce.auth.enabled=true\nenforce.auth.schemes= digest , ip\n")
    assert config.enforce_auth_schemes == ("digest", "ip")
    assert not config.sasl_auth_required
    assert "enforce.auth.enabled" not in config.unknown_keys
    assert error_of(BASE + "enforce.auth.enabled=true\n") == (
        "zoo.cfg:4: enforce.auth.enabled: zookeeper.enforce.auth.enabled is true"
        " zookeeper.enforce.auth.schemes must be  configured.")
    assert error_of(BASE + "enforce.auth.enabled=true\nenforce.auth.schemes=digest,sasl\n") == (
        "zoo.cfg:5: enforce.auth.schemes: Authentication scheme sasl is not available.")
    # digest disabled: its scheme is not available either
    assert "Authentication scheme digest is not available." in error_of(
        BASE + "enforce.auth.enabled=true\nenforce.auth.schemes=digest\n",
        system_properties={"zookeeper.DigestAuthenticationProvider.enabled": "false"})


def test_session_require_client_sasl_auth_overrides_enforce_auth() -> None:
    config = parse_config(BASE + SASL_PROVIDER_LINE + "sessionRequireClientSASLAuth=true\n"
                          "enforce.auth.enabled=false\nenforce.auth.schemes=digest\n")
    assert config.enforce_auth_schemes == ("sasl",) and config.sasl_auth_required
    assert error_of(BASE + "sessionRequireClientSASLAuth=true\n") == (
        "zoo.cfg:4: sessionRequireClientSASLAuth: Authentication scheme sasl is not available.")
    assert "invalid boolean" in error_of(BASE + "sessionRequireClientSASLAuth=yes\n")


def test_global_outstanding_limit_is_implemented() -> None:
    config = parse_config(BASE + "globalOutstandingLimit=50\n")
    assert config.global_outstanding_limit == 50
    assert config.unknown_keys == ()
