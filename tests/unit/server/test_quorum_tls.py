"""Quorum TLS contexts and checks (pyzk/server/quorum_tls.py) without sockets: handshakes run
over memory BIOs between the contexts pyzk builds from Java-style key and trust stores."""

from __future__ import annotations

import ssl
from dataclasses import replace
from pathlib import Path

import pytest

from pyzk.config import parse_config
from pyzk.config.quorum_tls import QuorumTlsSettings
from pyzk.quorum.messages import encode_initial_message
from pyzk.server.quorum_tls import QuorumTls, certificate_names_host, looks_like_tls, quorum_tls
from pyzk.server.tls import TlsConfigError
from tests.compat.tls_certs import PASSWORD, authority

ENSEMBLE = (
    "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/lib/zk\nclientPort=2181\n"
    "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"
)
HANDSHAKE_ROUNDS_MAX = 20


class Stores:
    def __init__(self, workdir: Path) -> None:
        ca, rogue = authority("Quorum CA"), authority("Rogue CA")
        self.trust = ca.trust_store(workdir / "trust.jks")
        self.good = ca.member(workdir / "member.p12", "member")
        self.other = ca.member(workdir / "other.p12", "other")
        self.rogue = rogue.member(workdir / "rogue.p12", "member")
        self.workdir = workdir


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return Stores(tmp_path_factory.mktemp("quorum-tls-stores"))


def settings(stores: Stores, key_store: Path | None = None, **lines: str) -> QuorumTlsSettings:
    text = ENSEMBLE + "sslQuorum=true\n" + "".join(f"{key}={value}\n" for key, value in {
        "ssl.quorum.keyStore.location": str(key_store or stores.good),
        "ssl.quorum.keyStore.password": PASSWORD,
        "ssl.quorum.trustStore.location": str(stores.trust),
        "ssl.quorum.trustStore.password": PASSWORD,
        **lines,
    }.items())
    tls = parse_config(text, myid_text="1").quorum_tls
    assert tls is not None
    return tls


def contexts(tls_settings: QuorumTlsSettings) -> QuorumTls:
    built = quorum_tls(tls_settings)
    assert built is not None
    return built


def handshake(client_context: ssl.SSLContext, server_context: ssl.SSLContext) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a handshake over memory BIOs; raises ssl.SSLError when one side refuses."""
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(client_in, client_out, server_hostname="127.0.0.1")
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(HANDSHAKE_ROUNDS_MAX):
        done = 0
        for end in (client, server):
            try:
                end.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if done == 2:
            return client, server
    raise AssertionError("handshake did not finish")


def test_members_of_one_ca_agree_on_tls12_and_a_java_default_suite(stores: Stores) -> None:
    one, other = contexts(settings(stores)), contexts(settings(stores, stores.other))
    assert other.server is not None
    client, server = handshake(one.client, other.server)
    assert client.version() == server.version() == "TLSv1.2"
    assert client.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256"  # Java's first RSA suite
    # Both ends saw the other's certificate (mutual TLS): the names Rule 2 checks are there.
    assert certificate_names_host(server.getpeercert(), "127.0.0.1")
    assert certificate_names_host(client.getpeercert(), "localhost")


def test_the_accepting_end_requires_a_trusted_certificate(stores: Stores) -> None:
    server = contexts(settings(stores)).server
    assert server is not None
    rogue = contexts(settings(stores, stores.rogue)).client
    with pytest.raises(ssl.SSLError):
        handshake(rogue, server)
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.check_hostname, anonymous.verify_mode = False, ssl.CERT_NONE
    with pytest.raises(ssl.SSLError):
        handshake(anonymous, server)
    # clientAuth=none: the certificate is not asked for.
    lenient = contexts(settings(stores, **{"ssl.quorum.clientAuth": "none"})).server
    assert lenient is not None
    _, accepted = handshake(anonymous, lenient)
    assert accepted.getpeercert() is None


def test_the_dialing_end_refuses_an_untrusted_server(stores: Stores) -> None:
    rogue_server = contexts(settings(stores, stores.rogue)).server
    assert rogue_server is not None
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(contexts(settings(stores)).client, rogue_server)


def test_tls13_when_asked(stores: Stores) -> None:
    tls13 = {"ssl.quorum.protocol": "TLSv1.3", "ssl.quorum.ciphersuites":
             "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256"}
    one = contexts(settings(stores, **tls13))
    assert one.server is not None
    client, _ = handshake(one.client, one.server)
    assert client.version() == "TLSv1.3"
    with pytest.raises(ssl.SSLError):  # a TLSv1.2-only member cannot talk to it
        handshake(contexts(settings(stores)).client, one.server)


def test_password_file_and_bad_stores(stores: Stores) -> None:
    secret = stores.workdir / "secret"
    secret.write_text(PASSWORD + "\n")  # SecretUtils drops one trailing line separator
    built = contexts(replace(settings(stores), key_store_password="", key_store_password_path=str(secret)))
    assert built.server is not None
    with pytest.raises(TlsConfigError, match="ssl.quorum.keyStore.location"):
        quorum_tls(replace(settings(stores), key_store_password="wrong"))
    with pytest.raises(TlsConfigError, match="cannot read the password file"):
        quorum_tls(replace(settings(stores), trust_store_password_path=str(stores.workdir / "missing")))
    with pytest.raises(TlsConfigError, match="missing.p12"):
        quorum_tls(replace(settings(stores), key_store_location=str(stores.workdir / "missing.p12")))


def test_port_unification_without_a_key_store_dials_plaintext_and_refuses_tls() -> None:
    tls_settings = parse_config(ENSEMBLE + "portUnification=true\n", myid_text="1").quorum_tls
    built = quorum_tls(tls_settings)
    assert built is not None and built.server is None and not built.dial_tls


# ---- ZKHostnameVerifier's rules --------------------------------------------------------------

SANS = {"subject": ((("commonName", "ignored.example"),),),
        "subjectAltName": (("DNS", "zk1.example"), ("DNS", "*.zk.example"), ("IP Address", "10.0.0.1"),
                           ("IP Address", "0:0:0:0:0:0:0:1"))}
CN_ONLY = {"subject": ((("organizationName", "x"),), (("commonName", "first.example"),),
                       (("commonName", "zk2.example"),))}


@pytest.mark.parametrize(("cert", "host", "named"), [
    (SANS, "10.0.0.1", True),
    (SANS, "10.0.0.2", False),
    (SANS, "::1", True),  # IPv6 compared as addresses
    (SANS, "[::1]", True),
    (SANS, "zk1.example", True),
    (SANS, "ZK1.Example", True),
    (SANS, "a.zk.example", True),
    (SANS, "a.b.zk.example", False),  # a wildcard matches within one label
    (SANS, "ignored.example", False),  # the common name only counts without alternative names
    (CN_ONLY, "zk2.example", True),  # the most specific (last) common name
    (CN_ONLY, "first.example", False),
    ({"subject": ()}, "zk2.example", False),
])
def test_certificate_names_host(cert: dict, host: str, named: bool) -> None:
    assert certificate_names_host(cert, host) is named


def test_tls_is_told_from_the_quorum_protocols(stores: Stores) -> None:
    client = contexts(settings(stores)).client
    client_out = ssl.MemoryBIO()
    hello = client.wrap_bio(ssl.MemoryBIO(), client_out, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        hello.do_handshake()
    assert looks_like_tls(client_out.read()[:5])
    assert not looks_like_tls(encode_initial_message(1, "127.0.0.1:3888")[:5])  # election port
    assert not looks_like_tls(b"\x00\x00\x00\x1c\x00")  # a quorum packet's length
    assert not looks_like_tls(b"\x16\x03")  # too short to tell
    assert not looks_like_tls(b"ruok\n")
