"""The x509 authentication provider on the secure client port, asserted on every target:
a TLS client's certificate subject, as Java's X500Principal.getName() prints it, is its
`x509:` id (NettyServerCnxnFactory's CertificateVerifier, X509AuthenticationProvider).

Each test starts its own standalone server of each kind with a secure client port on
loopback (free ports, stopped by PID). Certificates are made per module by one throw-away CA
(tests/compat/tls_certs.py); client subjects carry characters that RFC 2253 escapes.
"""

from __future__ import annotations

import datetime
import ssl
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.compat.conftest import server_kinds_from_env
from tests.compat.rawclient import (
    OP_AUTH,
    OP_CREATE,
    OP_GET_DATA,
    OP_SET_DATA,
    OP_WHO_AM_I,
    XID_AUTH,
    RawClient,
    auth_packet,
    buffer,
    int32,
    path_watch_request,
    read_ustring,
    ustring,
)
from tests.compat.targets import TargetStartError, free_loopback_ports, start_target
from tests.compat.tls_certs import PASSWORD, Authority, authority

pytestmark = pytest.mark.compat

ERR_OK = 0
ERR_NOAUTH = -102
ERR_INVALIDACL = -114
ERR_AUTHFAILED = -115
OP_GET_ACL = 6
PERMS_ALL = 31
CLOSE_WAIT_S = 3.0
X509_PROVIDER = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"
NETTY_FACTORY = "org.apache.zookeeper.server.NettyServerCnxnFactory"

# Subjects in their encoded order (C first), and the id Java prints for each (RFC 2253:
# reversed, ',' '+' '"' escaped).
ALICE = [(NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Org, Inc."),
         (NameOID.ORGANIZATIONAL_UNIT_NAME, "Test+Dev"), (NameOID.COMMON_NAME, 'alice "a"')]
ALICE_ID = 'CN=alice \\"a\\",OU=Test\\+Dev,O=Org\\, Inc.,C=US'
BOB = [(NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Org"), (NameOID.COMMON_NAME, "bob")]
BOB_ID = "CN=bob,O=Org,C=US"
ADMIN = [(NameOID.ORGANIZATION_NAME, "Org"), (NameOID.COMMON_NAME, "admin")]
ADMIN_ID = "CN=admin,O=Org"


# Per server kind, each started standalone: a mixed ensemble cannot run these (its members'
# zoo.cfg would share one secureClientPort), so there is no mixed variant to skip (a skipped
# variant would be a gap in the matrix).
KINDS = pytest.mark.parametrize("kind", server_kinds_from_env())


@dataclass
class Certs:
    ca: Authority
    ca_pem: Path
    key_store: Path
    trust_store: Path
    alice: Path
    bob: Path
    admin: Path
    stranger: Path  # signed by another CA


def _client_pem(ca: Authority, path: Path, subject: list[tuple[x509.ObjectIdentifier, str]]) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in subject]))
            .issuer_name(ca.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca.key, hashes.SHA256()))
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
                     + cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    base = tmp_path_factory.mktemp("x509-certs")
    ca = authority("x509-ca")
    other = authority("other-ca")
    return Certs(
        ca=ca, ca_pem=ca.pem(base / "ca.pem"),
        key_store=ca.member(base / "server.p12", "server"),
        trust_store=ca.trust_store(base / "trust.jks"),
        alice=_client_pem(ca, base / "alice.pem", ALICE),
        bob=_client_pem(ca, base / "bob.pem", BOB),
        admin=_client_pem(ca, base / "admin.pem", ADMIN),
        stranger=_client_pem(other, base / "stranger.pem", ALICE),
    )


def secure_cfg(certs: Certs, port: int, **extra: str) -> dict[str, str | None]:
    cfg: dict[str, str | None] = {
        "serverCnxnFactory": NETTY_FACTORY,
        "secureClientPort": str(port),
        "secureClientPortAddress": "127.0.0.1",
        "ssl.keyStore.location": str(certs.key_store),
        "ssl.keyStore.password": PASSWORD,
        "ssl.trustStore.location": str(certs.trust_store),
        "ssl.trustStore.password": PASSWORD,
    }
    cfg.update(extra)
    return cfg


def tls_client(certs: Certs, port: int, client_pem: Path | None) -> RawClient:
    """A RawClient over TLS to the secure port (the server's certificate is checked)."""
    context = ssl.create_default_context(cafile=str(certs.ca_pem))
    context.check_hostname = False
    if client_pem is not None:
        context.load_cert_chain(str(client_pem))
    client = RawClient("127.0.0.1", port)
    client.sock = context.wrap_socket(client.sock, server_hostname="127.0.0.1")
    return client


def connected(certs: Certs, port: int, client_pem: Path | None) -> RawClient:
    client = tls_client(certs, port, client_pem)
    client.handshake()
    return client


def refused(certs: Certs, port: int, client_pem: Path | None) -> bool:
    """True when the server ends the connection instead of answering the ConnectRequest."""
    try:
        client = tls_client(certs, port, client_pem)
    except (ssl.SSLError, OSError):
        return True
    with client:
        try:
            client.handshake()
        except (ssl.SSLError, OSError, ConnectionError):
            return True
        return False


def who_am_i(client: RawClient, xid: int) -> set[tuple[str, str]]:
    client.send_request(xid, OP_WHO_AM_I)
    reply = client.recv_reply()
    assert reply.err == ERR_OK
    (count,) = struct.unpack_from(">i", reply.body)
    offset, infos = 4, set()
    for _ in range(count):
        scheme, offset = read_ustring(reply.body, offset)
        user, offset = read_ustring(reply.body, offset)
        infos.add((scheme or "", user or ""))
    return infos


def acl_create(path: str, scheme: str, acl_id: str) -> bytes:
    return (ustring(path) + buffer(b"v") + int32(1) + int32(PERMS_ALL) + ustring(scheme)
            + ustring(acl_id) + int32(0))


def request(client: RawClient, xid: int, op: int, record: bytes) -> int:
    client.send_request(xid, op, record)
    reply = client.recv_reply()
    assert reply.xid == xid
    return reply.err


def get_acl(client: RawClient, xid: int, path: str) -> list[tuple[int, str, str]]:
    client.send_request(xid, OP_GET_ACL, ustring(path))
    reply = client.recv_reply()
    assert reply.err == ERR_OK
    (count,) = struct.unpack_from(">i", reply.body)
    offset, acl = 4, []
    for _ in range(count):
        (perms,) = struct.unpack_from(">i", reply.body, offset)
        scheme, offset = read_ustring(reply.body, offset + 4)
        acl_id, offset = read_ustring(reply.body, offset)
        acl.append((perms, scheme or "", acl_id or ""))
    return acl


def set_data(path: str) -> bytes:
    return ustring(path) + buffer(b"w") + int32(-1)


@KINDS
def test_x509_ids_and_acls(kind: str, certs: Certs, tmp_path: Path) -> None:
    port = free_loopback_ports(1)[0]
    cfg = secure_cfg(certs, port, **{"authProvider.x509": X509_PROVIDER,
                                     "X509AuthenticationProvider.superUser": ADMIN_ID})
    with start_target(kind, 1, cfg, workdir=tmp_path) as ensemble:
        with connected(certs, port, certs.alice) as alice:
            assert who_am_i(alice, 1) == {("ip", "127.0.0.1"), ("x509", ALICE_ID)}
            assert request(alice, 2, OP_CREATE, acl_create("/alice", "x509", ALICE_ID)) == ERR_OK
            assert request(alice, 3, OP_GET_DATA, path_watch_request("/alice")) == ERR_OK
            assert request(alice, 4, OP_SET_DATA, set_data("/alice")) == ERR_OK
            assert get_acl(alice, 5, "/alice") == [(PERMS_ALL, "x509", ALICE_ID)]
            # `auth` expands to the ids whose provider authenticates: x509, not ip.
            assert request(alice, 6, OP_CREATE, acl_create("/by_auth", "auth", "")) == ERR_OK
            assert get_acl(alice, 7, "/by_auth") == [(PERMS_ALL, "x509", ALICE_ID)]
            # isValid is new X500Principal(id): a trailing ',' is no name, lower case is.
            assert request(alice, 8, OP_CREATE, acl_create("/bad", "x509", "CN=a,")) == ERR_INVALIDACL
            assert request(alice, 9, OP_CREATE, acl_create("/lower", "x509", "cn=x;o=y")) == ERR_OK
            # An auth packet of the scheme re-reads the certificate.
            alice.send_request(XID_AUTH, OP_AUTH, auth_packet("x509", b"ignored"))
            assert alice.recv_reply().err == ERR_OK
        with connected(certs, port, certs.bob) as bob:
            assert who_am_i(bob, 1) == {("ip", "127.0.0.1"), ("x509", BOB_ID)}
            assert request(bob, 2, OP_GET_DATA, path_watch_request("/alice")) == ERR_NOAUTH
            assert request(bob, 3, OP_SET_DATA, set_data("/alice")) == ERR_NOAUTH
        with connected(certs, port, certs.admin) as admin:  # the superUser
            assert who_am_i(admin, 1) == {("ip", "127.0.0.1"), ("x509", ADMIN_ID), ("super", "")}
            assert request(admin, 2, OP_GET_DATA, path_watch_request("/alice")) == ERR_OK
            assert request(admin, 3, OP_SET_DATA, set_data("/alice")) == ERR_OK
            assert request(admin, 4, OP_GET_DATA, path_watch_request("/lower")) == ERR_OK
        with RawClient.to(ensemble.hosts) as plain:  # the plain port: no certificate, no id
            plain.handshake()
            assert request(plain, 1, OP_GET_DATA, path_watch_request("/alice")) == ERR_NOAUTH
            plain.send_request(XID_AUTH, OP_AUTH, auth_packet("x509", b""))
            assert plain.recv_reply().err == ERR_AUTHFAILED
            assert plain.wait_closed(CLOSE_WAIT_S)
        # A certificate another CA signed fails the handshake.
        assert refused(certs, port, certs.stranger)
        assert refused(certs, port, None)  # clientAuth defaults to need


@KINDS
def test_client_auth_want_and_the_implicit_x509_provider(kind: str, certs: Certs, tmp_path: Path) -> None:
    """With secureClientPort, configureSSLAuth registers the x509 provider by itself; with
    clientAuth=want a client without a certificate is served with its ip id only."""
    port = free_loopback_ports(1)[0]
    with start_target(kind, 1, secure_cfg(certs, port, **{"ssl.clientAuth": "want"}), workdir=tmp_path):
        with connected(certs, port, None) as anonymous:
            assert who_am_i(anonymous, 1) == {("ip", "127.0.0.1")}
            assert request(anonymous, 2, OP_CREATE, acl_create("/bob", "x509", BOB_ID)) == ERR_OK
            assert request(anonymous, 3, OP_GET_DATA, path_watch_request("/bob")) == ERR_NOAUTH
        with connected(certs, port, certs.bob) as bob:
            assert who_am_i(bob, 1) == {("ip", "127.0.0.1"), ("x509", BOB_ID)}
            assert request(bob, 2, OP_GET_DATA, path_watch_request("/bob")) == ERR_OK
        assert refused(certs, port, certs.stranger)


@KINDS
def test_client_auth_none_gives_no_x509_id(kind: str, certs: Certs, tmp_path: Path) -> None:
    port = free_loopback_ports(1)[0]
    with start_target(kind, 1, secure_cfg(certs, port, **{"ssl.clientAuth": "none"}), workdir=tmp_path):
        with connected(certs, port, certs.alice) as alice:  # the certificate is not asked for
            assert who_am_i(alice, 1) == {("ip", "127.0.0.1")}


@KINDS
def test_ssl_auth_provider_without_its_provider_stops_start_up(kind: str, certs: Certs, tmp_path: Path) -> None:
    port = free_loopback_ports(1)[0]
    reason = "No auth provider configured for the SSL authentication scheme 'custom'."
    with pytest.raises(TargetStartError) as caught:
        start_target(kind, 1, secure_cfg(certs, port, **{"ssl.authProvider": "custom"}),
                     workdir=tmp_path, start_timeout_s=20.0).stop()
    logs = [log.read_text(errors="replace") for log in sorted(tmp_path.glob("*/server.log"))]
    assert reason in str(caught.value) or any(reason in log for log in logs), str(caught.value)
