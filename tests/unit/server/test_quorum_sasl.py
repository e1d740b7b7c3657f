"""Quorum SASL without sockets: the DIGEST-MD5 client against pyzk's server and an independent
client (puresasl), the QuorumAuthPacket bytes, and the JAAS logins start-up needs."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from puresasl.client import SASLClient

from pyzk.config import parse_config
from pyzk.sasl import DigestMD5Client, DigestMD5Server, SaslError, _response_value, _session_key_hex
from pyzk.server.quorum_sasl import (
    PROTOCOL,
    SERVER_NAME,
    STATUS_ERROR,
    STATUS_SUCCESS,
    KerberosLogin,
    QuorumAuthConfigError,
    authorize_learner,
    encode_auth_packet,
    kerberos_login,
    learner_target,
    quorum_sasl,
    server_principal,
)

ENSEMBLE = (
    "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/lib/zk\nclientPort=2181\n"
    "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"
    "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n"
)
JAAS = (
    "QuorumServer {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n"
    ' user_learner="pw"\n user_other="pw2";\n};\n'
    "QuorumLearner {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n"
    ' username="learner"\n password="pw";\n};\n'
)

KRB_MODULE = ('com.sun.security.auth.module.Krb5LoginModule required\n useKeyTab=true\n'
              ' keyTab="/nonexistent/q.keytab"\n storeKey=true\n principal="zkquorum/127.0.0.1@R";\n')
KRB_JAAS = "QuorumServer {\n " + KRB_MODULE + "};\nQuorumLearner {\n " + KRB_MODULE + "};\n"
KRB_LEARNER_ONLY = JAAS.split("QuorumLearner")[0] + "QuorumLearner {\n " + KRB_MODULE + "};\n"


def quorum_server(users: dict[str, str]) -> DigestMD5Server:
    return DigestMD5Server(users, realm=SERVER_NAME, server_name=SERVER_NAME, protocol=PROTOCOL,
                           nonce_source=lambda: os.urandom(30))


def quorum_client(password: str) -> DigestMD5Client:
    return DigestMD5Client("learner", password, protocol=PROTOCOL, server_name=SERVER_NAME,
                           cnonce_source=lambda: os.urandom(30))


def test_client_and_server_complete_the_exchange() -> None:
    server, client = quorum_server({"learner": "pw"}), quorum_client("pw")
    response = client.evaluate(server.evaluate(b""))
    assert response is not None and b'digest-uri="zookeeper-quorum/zk-quorum-sasl-md5"' in response
    assert b'realm="zk-quorum-sasl-md5"' in response and b"qop=auth" in response
    rspauth = server.evaluate(response)
    assert server.complete and server.authorized_id == "learner"
    assert client.evaluate(rspauth) is None and client.complete


def test_wrong_password_and_forged_rspauth_fail() -> None:
    server = quorum_server({"learner": "pw"})
    with pytest.raises(SaslError, match="Mismatched response"):
        server.evaluate(quorum_client("wrong").evaluate(server.evaluate(b"")) or b"")
    server, client = quorum_server({"learner": "pw"}), quorum_client("pw")
    client.evaluate(server.evaluate(b""))
    with pytest.raises(SaslError, match="rspauth"):
        client.evaluate(b"rspauth=" + b"0" * 32)


def test_an_independent_client_passes_pyzks_quorum_server() -> None:
    # puresasl computes the digest on its own: both ends agree on RFC 2831 with this digest-uri.
    server = quorum_server({"learner": "pw"})
    other = SASLClient(SERVER_NAME, service=PROTOCOL, mechanism="DIGEST-MD5", username="learner", password="pw")
    server.evaluate(other.process(server.evaluate(b"")))
    assert server.complete


def test_rfc2831_example_digest() -> None:
    # RFC 2831 4: chris/secret at elwood.innosoft.com, imap.
    key = _session_key_hex("chris", "elwood.innosoft.com", "secret", b"OA6MG9tEQGm2hh", b"OA6MHXh6VqTrRk", None)
    uri = b"imap/elwood.innosoft.com"
    assert _response_value(key, b"OA6MG9tEQGm2hh", b"OA6MHXh6VqTrRk", "auth", b"AUTHENTICATE:" + uri) == \
        b"d388dad90d4bbd760a152321f2143af7"
    assert _response_value(key, b"OA6MG9tEQGm2hh", b"OA6MHXh6VqTrRk", "auth", b":" + uri) == \
        b"ea40f60335c427b5527b84dbabcdfffd"


def test_auth_packet_bytes() -> None:
    # QuorumAuthPacket: long magic (Java's -0xa0dbcafecafe1234L), int status, buffer token.
    assert encode_auth_packet(STATUS_SUCCESS, b"ab") == bytes.fromhex("5f2435013501edcc") + \
        struct.pack(">ii", 1, 2) + b"ab"
    assert encode_auth_packet(STATUS_ERROR, None)[8:] == struct.pack(">ii", -1, -1)


def config_with_jaas(tmp_path: Path, jaas_text: str | None, extra: str = ""):  # type: ignore[no-untyped-def]
    props = {}
    if jaas_text is not None:
        path = tmp_path / "jaas.conf"
        path.write_text(jaas_text)
        props = {"java.security.auth.login.config": str(path)}
    return parse_config(ENSEMBLE + extra, myid_text="1", system_properties=props)


def test_logins_come_from_the_jaas_sections(tmp_path: Path) -> None:
    sasl = quorum_sasl(config_with_jaas(tmp_path, JAAS))
    assert sasl is not None
    assert (sasl.learner_required, sasl.server_required, sasl.username, sasl.password) == (True, False, "learner", "pw")
    assert sasl.users == {"learner": "pw", "other": "pw2"}
    assert quorum_sasl(parse_config(ENSEMBLE.replace("enableSasl=true\nquorum.auth.learnerRequireSasl=true", "enableSasl=false"),
                                    myid_text="1")) is None


@pytest.mark.parametrize(("jaas_text", "extra", "reason"), [
    (None, "", "needs a JAAS file"),
    (JAAS, "quorum.auth.server.saslLoginContext=Elsewhere\n", "section 'Elsewhere' could not be found"),
    (JAAS.replace(' username="learner"\n', ""), "", "needs username and password"),
    (JAAS.replace("org.apache.zookeeper.server.auth.DigestLoginModule required\n user_learner",
                  'com.sun.security.auth.module.Krb5LoginModule required\n keyTab="/k"\n principal="zk/h"\n user_x'),
     "", "needs useKeyTab=true and keyTab"),
    (KRB_JAAS.replace("storeKey=true", ""), "", "needs storeKey=true"),
    (KRB_JAAS.replace('principal="zkquorum/127.0.0.1@R"', 'principal="zkquorum@R"', 1), "", "must be service/host"),
    (KRB_JAAS.replace('keyTab="/nonexistent/q.keytab"', "", 1), "", "useKeyTab=true needs keyTab"),
    (KRB_JAAS.replace("useKeyTab=true", "useKeyTab=false"), "", "needs useKeyTab=true and keyTab"),
    (KRB_LEARNER_ONLY.replace("useKeyTab=true", "useKeyTab=false"), "", "pyzk cannot prompt for a password"),
    (KRB_LEARNER_ONLY.replace(' principal="zkquorum/127.0.0.1@R"', ""), "", "needs principal"),
    (KRB_LEARNER_ONLY, "quorum.auth.kerberos.servicePrincipal=zkquorum\n", "must be service/host"),
    (KRB_JAAS, "", "no Kerberos credentials for zkquorum/127.0.0.1@R in keytab /nonexistent/q.keytab"),
    ("QuorumServer { broken", "", "JAAS file"),
], ids=["no-jaas", "no-section", "no-username", "kerberos-no-usekeytab", "kerberos-no-storekey",
        "kerberos-server-principal-without-host", "kerberos-no-keytab", "kerberos-server-without-keytab",
        "kerberos-learner-cannot-prompt", "kerberos-no-principal", "kerberos-service-principal-without-host",
        "kerberos-keytab-missing", "unparsable"])
def test_quorum_sasl_that_cannot_run_is_refused(tmp_path: Path, jaas_text: str | None, extra: str,
                                                reason: str) -> None:
    with pytest.raises(QuorumAuthConfigError, match=reason):
        quorum_sasl(config_with_jaas(tmp_path, jaas_text, extra))


@pytest.mark.parametrize(("config", "host", "expected"), [
    ("zkquorum/localhost", "10.0.0.1", "zkquorum/localhost"),
    ("zkquorum/_HOST", "ZK1.Example.COM", "zkquorum/zk1.example.com"),
    ("zkquorum/_HOST", "127.0.0.1", "zkquorum/127.0.0.1"),
    # SecurityUtils.getServerPrincipal splits on '/' only: "_HOST@REALM" is no pattern.
    ("zkquorum/_HOST@EXAMPLE.COM", "h", "zkquorum/_HOST@EXAMPLE.COM"),
    ("zkquorum/_HOST/x", "h", "zkquorum/_HOST/x"),
    ("zkquorum", "h", "zkquorum"),
])
def test_host_pattern_substitution(config: str, host: str, expected: str) -> None:
    assert server_principal(config, host) == expected


def test_learner_target_gets_a_realm() -> None:
    me = "zkquorum/127.0.0.1@CLIENT.ORG"
    assert learner_target("zkquorum/_HOST", "Zk1", me, None) == "zkquorum/zk1@CLIENT.ORG"
    assert learner_target("zkquorum/_HOST", "zk1", me, "SERVER.ORG") == "zkquorum/zk1@SERVER.ORG"
    assert learner_target("zkquorum/zk9@OTHER.ORG", "zk1", me, "SERVER.ORG") == "zkquorum/zk9@OTHER.ORG"


@pytest.mark.parametrize(("authn", "authz", "refused"), [
    ("zkquorum/zk1@R", "zkquorum/zk1@R", None),
    ("zkquorum/zk2@R", "zkquorum/zk2@R", "zkquorum/zk2@R is not authorized to connect"),
    ("zkquorum/zk1@R", "zkquorum/zk3@R", "is not authorized to connect as zkquorum/zk3@R"),
    ("learner@R", "learner@R", None),  # two components: no host to check
    ("zkquorum/zk1", "zkquorum/zk1", None),  # no realm: two components as well
])
def test_learner_authorization(authn: str, authz: str, refused: str | None) -> None:
    hosts = frozenset({"zk1", "127.0.0.1"})
    if refused is None:
        authorize_learner(authn, authz, hosts)
    else:
        with pytest.raises(SaslError, match=refused):
            authorize_learner(authn, authz, hosts)


def test_kerberos_logins_from_jaas_options() -> None:
    options = {"useKeyTab": "true", "keyTab": "/k", "storeKey": "true", "principal": "zkquorum/h@R"}
    assert kerberos_login("S", options, accept=True) == KerberosLogin("zkquorum/h@R", "/k")
    assert kerberos_login("L", {**options, "storeKey": "false"}, accept=False) == KerberosLogin("zkquorum/h@R", "/k")
    cache = {"useTicketCache": "true", "ticketCache": "/tmp/cc", "principal": "learner@R"}
    assert kerberos_login("L", cache, accept=False) == KerberosLogin("learner@R", None, "/tmp/cc")
    with pytest.raises(QuorumAuthConfigError, match="needs useKeyTab=true and keyTab"):
        kerberos_login("S", cache, accept=True)


def test_kerberos_service_principal_is_read(tmp_path: Path) -> None:
    config = parse_config(ENSEMBLE + "quorum.auth.kerberos.servicePrincipal= zkquorum/_HOST \n", myid_text="1")
    assert config.quorum_service_principal == "zkquorum/_HOST"
    assert "quorum.auth.kerberos.servicePrincipal" not in config.unknown_keys
    assert parse_config(ENSEMBLE, myid_text="1").quorum_service_principal == "zkquorum/localhost"
