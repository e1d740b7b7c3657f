"""Security settings that change who may do what, asserted on every target: a setting is
enforced exactly as Apache ZooKeeper 3.8 enforces it (AuthenticationHelper, processSasl),
or the server refuses to start.

Each test starts its own target with the setting (loopback, free ports, stopped by PID): a
standalone server of each kind, a mixed target at its ensemble size (clients reach server 1).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from puresasl.client import SASLClient

from tests.compat.conftest import own_target_size, target_kinds_from_env
from tests.compat.rawclient import (
    OP_AUTH,
    OP_CREATE,
    OP_EXISTS,
    OP_PING,
    XID_AUTH,
    XID_PING,
    RawClient,
    auth_packet,
    buffer,
    create_request,
    path_watch_request,
)
from tests.compat.targets import TargetStartError, start_target

pytestmark = pytest.mark.compat

ERR_OK = 0
ERR_NONODE = -101
ERR_AUTHFAILED = -115
ERR_SESSIONCLOSEDREQUIRESASLAUTH = -124
OP_SASL = 102
CLOSE_WAIT_S = 3.0
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
JAAS = 'Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_bob="bobsecret";\n};\n'

KINDS = pytest.mark.parametrize("kind", target_kinds_from_env())


def connect(ensemble) -> RawClient:
    client = RawClient.to(ensemble.hosts)
    client.handshake()
    return client


def assert_refused(client: RawClient, xid: int, op: int, record: bytes = b"") -> None:
    """The request is answered SESSIONCLOSEDREQUIRESASLAUTH (zxid 0, no body), then closed."""
    client.send_request(xid, op, record)
    reply = client.recv_reply()
    assert (reply.xid, reply.zxid, reply.err, reply.body) == (xid, 0, ERR_SESSIONCLOSEDREQUIRESASLAUTH, b"")
    assert client.wait_closed(CLOSE_WAIT_S)


def sasl_exchange(client: RawClient, password: str, first_token: bytes | None = None) -> int:
    """A DIGEST-MD5 exchange (as kazoo does it); the error code of the last server reply."""
    sasl = SASLClient("zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
                      username="bob", password=password)
    challenge = None
    xid = 0
    while True:
        response = sasl.process(challenge) if first_token is None or xid else first_token
        if sasl.complete and not response:
            return ERR_OK
        xid += 1
        client.send_request(xid, OP_SASL, buffer(response or b""))
        reply = client.recv_reply()
        assert reply.xid == xid
        if reply.err != ERR_OK:
            assert reply.zxid == 0
            return reply.err
        (length,) = struct.unpack_from(">i", reply.body)
        challenge = reply.body[4:4 + length] if length >= 0 else b""
        if first_token is not None and xid == 1:
            assert challenge.startswith(b'realm="')  # the challenge, whatever the first token said
            first_token = None
        if xid > 5:
            raise AssertionError("SASL exchange did not finish")


@KINDS
def test_enforce_auth_digest(kind, tmp_path: Path) -> None:
    cfg = {"enforce.auth.enabled": "true", "enforce.auth.schemes": "digest"}
    with start_target(kind, own_target_size(kind), cfg, workdir=tmp_path) as ensemble:
        with connect(ensemble) as anonymous:  # a session is created, its first request refused
            assert_refused(anonymous, 1, OP_CREATE, create_request("/enforced"))
        with connect(ensemble) as anonymous:
            assert_refused(anonymous, XID_PING, OP_PING)
        with connect(ensemble) as authed:
            authed.send_request(XID_AUTH, OP_AUTH, auth_packet("digest", b"alice:secret"))
            assert authed.recv_reply().err == ERR_OK
            authed.send_request(1, OP_EXISTS, path_watch_request("/enforced"))
            assert authed.recv_reply().err == ERR_NONODE  # the refused create did nothing
            authed.send_request(2, OP_CREATE, create_request("/enforced"))
            assert authed.recv_reply().err == ERR_OK
        with connect(ensemble) as wrong_scheme:  # an ip id is not a digest id
            wrong_scheme.send_request(XID_AUTH, OP_AUTH, auth_packet("ip", b""))
            assert wrong_scheme.recv_reply().err == ERR_OK
            assert_refused(wrong_scheme, 1, OP_EXISTS, path_watch_request("/"))


@KINDS
def test_session_require_client_sasl_auth(kind, tmp_path: Path) -> None:
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(JAAS)
    cfg = {"sessionRequireClientSASLAuth": "true", "authProvider.1": SASL_PROVIDER}
    sysprops = {"java.security.auth.login.config": str(jaas)}
    with start_target(kind, own_target_size(kind), cfg, sysprops, workdir=tmp_path / "t") as ensemble:
        with connect(ensemble) as anonymous:
            assert_refused(anonymous, 1, OP_CREATE, create_request("/sasl_only"))
        with connect(ensemble) as digest_only:  # sasl is the only scheme that counts
            digest_only.send_request(XID_AUTH, OP_AUTH, auth_packet("digest", b"bob:bobsecret"))
            assert digest_only.recv_reply().err == ERR_OK
            assert_refused(digest_only, 1, OP_CREATE, create_request("/sasl_only"))
        with connect(ensemble) as wrong_password:
            assert sasl_exchange(wrong_password, "nope") == ERR_SESSIONCLOSEDREQUIRESASLAUTH
            assert wrong_password.wait_closed(CLOSE_WAIT_S)
        with connect(ensemble) as bob:
            assert sasl_exchange(bob, "bobsecret") == ERR_OK
            bob.send_request(10, OP_CREATE, create_request("/sasl_only"))
            assert bob.recv_reply().err == ERR_OK


@KINDS
def test_sasl_digest_md5_with_a_non_empty_first_token(kind, tmp_path: Path) -> None:
    """JDK 17's DIGEST-MD5 server ignores an initial response and sends its challenge; a
    failed exchange without required SASL answers AUTHFAILED and closes."""
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(JAAS)
    sysprops = {"java.security.auth.login.config": str(jaas)}
    with start_target(kind, own_target_size(kind), {"authProvider.1": SASL_PROVIDER}, sysprops, workdir=tmp_path / "t") as ensemble:
        with connect(ensemble) as bob:
            assert sasl_exchange(bob, "bobsecret", first_token=b"username=\"bob\"") == ERR_OK
            bob.send_request(10, OP_EXISTS, path_watch_request("/"))
            assert bob.recv_reply().err == ERR_OK
        with connect(ensemble) as wrong:
            assert sasl_exchange(wrong, "nope") == ERR_AUTHFAILED
            assert wrong.wait_closed(CLOSE_WAIT_S)
        with connect(ensemble) as anonymous:  # not required: anonymous clients are served
            anonymous.send_request(1, OP_EXISTS, path_watch_request("/"))
            assert anonymous.recv_reply().err == ERR_OK


@KINDS
@pytest.mark.parametrize(("cfg", "reason"), [
    ({"enforce.auth.enabled": "true"}, "zookeeper.enforce.auth.schemes must be  configured"),
    ({"enforce.auth.enabled": "true", "enforce.auth.schemes": "digest,kerberos"},
     "Authentication scheme kerberos is not available."),
    ({"sessionRequireClientSASLAuth": "true"},  # no sasl provider configured
     "Authentication scheme sasl is not available."),
], ids=["no-schemes", "unknown-scheme", "sasl-without-provider"])
def test_bad_enforce_auth_settings_stop_start_up(kind, cfg, reason, tmp_path: Path) -> None:
    """The target never serves and a server that stopped logged why. In an ensemble Apache
    checks the setting only once a role starts (after an election: a Java server whose pyzk
    peers already stopped at start-up keeps looking), so the reason is sought in every
    server's log."""
    with pytest.raises(TargetStartError) as caught:
        start_target(kind, own_target_size(kind), cfg, workdir=tmp_path, start_timeout_s=20.0).stop()
    logs = [log.read_text(errors="replace") for log in sorted(tmp_path.glob("*/server.log"))]
    assert reason in str(caught.value) or any(reason in log for log in logs), str(caught.value)
