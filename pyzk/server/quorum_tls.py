"""Quorum TLS (QuorumX509Util, UnifiedServerSocket): the ssl contexts of the election and
quorum ports, the peer address check, and the listener that tells TLS from plaintext.

Rule 1: both ends present this member's certificate and check the other's against the trust
        store; the accepting end requires one (ssl.quorum.clientAuth, default "need").
Rule 2: with hostname verification (the default), the certificate must name the address the
        other end connects from or to, as ZKTrustManager checks it: the IP address against the
        IP subject alternative names, else the reverse DNS name against the DNS ones (the
        common name only when there are no alternative names). The check runs right after the
        handshake, before a byte of the protocol is read or written; a failure closes the
        connection. Without a trust store there is no ZKTrustManager in Java: the system's
        CAs are trusted and no name is checked.
Rule 3: with portUnification the listener peeks at the first 5 bytes (at most
        handshakeDetectionTimeoutMillis): a TLS record header starts the handshake, anything
        else is plaintext; the bytes stay in the socket for whichever reads them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyzk.config.quorum_tls import QuorumTlsSettings
from pyzk.server.tls import TlsConfigError, load_key_store, store_type_of, truststore_pem

logger = logging.getLogger(__name__)

TLS_RECORD_HEADER_BYTES = 5
TLS_RECORD_BYTES_MAX = 16384 + 2048  # a TLSCiphertext fragment's bound (RFC 5246 6.2.3)
TLS_CONTENT_TYPES = range(20, 25)  # change_cipher_spec, alert, handshake, application_data, heartbeat
PEEK_POLL_S = 0.01
REVERSE_LOOKUP_TIMEOUT_S = 2.0
READ_LIMIT_BYTES = 1 << 16

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _password(inline: str, path: str) -> str:
    """X509Util.getPasswordFromConfigPropertyOrFile: the file wins, less one trailing newline."""
    if not path:
        return inline
    try:
        secret = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TlsConfigError(f"cannot read the password file {path}: {exc.strerror}") from None
    return secret[:-1] if secret.endswith("\n") else secret


_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def _context(settings: QuorumTlsSettings, purpose: int) -> ssl.SSLContext:
    context = ssl.SSLContext(purpose)
    if purpose == ssl.PROTOCOL_TLS_CLIENT:
        context.check_hostname = False  # Rule 2 checks the name, as ZKTrustManager does
    versions = sorted(_VERSIONS[name] for name in settings.enabled_protocols)
    context.minimum_version, context.maximum_version = versions[0], versions[-1]
    if settings.openssl_ciphers:
        try:
            context.set_ciphers(":".join(settings.openssl_ciphers))
        except ssl.SSLError:
            raise TlsConfigError("ssl.quorum.ciphersuites: OpenSSL offers none of "
                                 + ",".join(settings.cipher_suites)) from None
        offered = {cipher["name"] for cipher in context.get_ciphers()}
        missing = [name for name in settings.openssl_ciphers if name not in offered]
        if len(missing) == len(settings.openssl_ciphers):
            raise TlsConfigError("ssl.quorum.ciphersuites: OpenSSL offers none of " + ",".join(missing))
    if settings.key_store_location:
        try:
            load_key_store(context, settings.key_store_location,
                           _password(settings.key_store_password, settings.key_store_password_path),
                           store_type_of(settings.key_store_type, settings.key_store_location))
        except (OSError, ValueError) as exc:
            raise TlsConfigError(f"ssl.quorum.keyStore.location {settings.key_store_location}: {exc}") from None
    if settings.trust_store_location:
        try:
            trusted = truststore_pem(settings.trust_store_location,
                                     _password(settings.trust_store_password, settings.trust_store_password_path),
                                     store_type_of(settings.trust_store_type, settings.trust_store_location))
            context.load_verify_locations(cadata=trusted.decode("ascii"))
        except (OSError, ValueError) as exc:
            raise TlsConfigError(f"ssl.quorum.trustStore.location {settings.trust_store_location}: {exc}") from None
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH if purpose == ssl.PROTOCOL_TLS_CLIENT
                                   else ssl.Purpose.CLIENT_AUTH)
    if purpose == ssl.PROTOCOL_TLS_SERVER:
        context.verify_mode = {"none": ssl.CERT_NONE, "want": ssl.CERT_OPTIONAL}.get(
            settings.client_auth, ssl.CERT_REQUIRED)
    else:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True, slots=True)
class QuorumTls:
    """What the quorum driver needs: how to dial, how to accept, what to check."""

    settings: QuorumTlsSettings
    client: ssl.SSLContext
    server: ssl.SSLContext | None  # None: portUnification without a key store (TLS refused)

    @property
    def dial_tls(self) -> bool:
        return self.settings.ssl_quorum

    @property
    def check_names(self) -> bool:
        return self.settings.hostname_verification and bool(self.settings.trust_store_location)

    @property
    def detection_timeout_s(self) -> float:
        return self.settings.handshake_detection_timeout_ms / 1000.0


def quorum_tls(settings: QuorumTlsSettings | None) -> QuorumTls | None:
    """The contexts for `settings` (None: plaintext quorum). Stores are read now, so a bad
    store stops start-up (TlsConfigError)."""
    if settings is None:
        return None
    client = _context(settings, ssl.PROTOCOL_TLS_CLIENT)
    server = _context(settings, ssl.PROTOCOL_TLS_SERVER) if settings.key_store_location else None
    logger.info("Quorum TLS: %s, protocols %s, clientAuth %s, hostname verification %s",
                "TLS only" if not settings.port_unification else
                ("TLS and plaintext accepted, TLS dialed" if settings.ssl_quorum
                 else "TLS and plaintext accepted, plaintext dialed"),
                ",".join(settings.enabled_protocols), settings.client_auth.upper(),
                "on" if settings.hostname_verification else "off")
    return QuorumTls(settings, client, server)


# ---- Rule 2: ZKHostnameVerifier ------------------------------------------------------------


def _identity_matches(host: str, identity: str) -> bool:
    """RFC 2818 with one wildcard that matches within one label (matchIdentityStrict)."""
    host, identity = host.lower(), identity.lower()
    star = identity.find("*")
    if star == -1:
        return host == identity
    prefix, suffix = identity[:star], identity[star + 1:]
    if not host.startswith(prefix) or not host.endswith(suffix) or len(host) < len(prefix) + len(suffix):
        return False
    return "." not in host[len(prefix):len(host) - len(suffix)]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def certificate_names_host(cert: dict[str, Any], host: str) -> bool:
    """Whether the certificate (ssl's getpeercert() form) names `host`, an address or a name."""
    alt_names = [(kind, value) for kind, value in cert.get("subjectAltName", ())
                 if kind in ("DNS", "IP Address")]
    address = _ip(host)
    if alt_names:
        if address is not None:
            return any(kind == "IP Address" and _ip(value) == address for kind, value in alt_names)
        return any(kind == "DNS" and _identity_matches(host, value) for kind, value in alt_names)
    common_names = [value for rdn in cert.get("subject", ()) for name, value in rdn if name == "commonName"]
    return bool(common_names) and _identity_matches(host, common_names[-1])


async def verify_peer_name(writer: asyncio.StreamWriter, tls: QuorumTls) -> None:
    """Rule 2 on an established TLS connection; raises ssl.SSLCertVerificationError."""
    if not tls.check_names:
        return
    ssl_object = writer.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return  # clientAuth want/none and no certificate: nothing to check, as in Java
    peer = writer.get_extra_info("peername")
    address = str(peer[0]) if peer else ""
    if certificate_names_host(cert, address):
        return
    name = ""
    try:
        loop = asyncio.get_running_loop()
        name, _ = await asyncio.wait_for(loop.getnameinfo((address, 0), socket.NI_NAMEREQD),
                                         REVERSE_LOOKUP_TIMEOUT_S)
    except (OSError, TimeoutError):
        name = ""
    if name and certificate_names_host(cert, name):
        return
    raise ssl.SSLCertVerificationError(
        f"Failed to verify both host address and host name: certificate for <{address}>"
        f"{f' ({name})' if name else ''} names {cert.get('subjectAltName') or cert.get('subject')}")


def describe(writer: asyncio.StreamWriter) -> str:
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is None:
        return "plaintext"
    cipher = ssl_object.cipher()
    return f"{ssl_object.version()} - {cipher[0] if cipher else '?'}"


# ---- dialing -------------------------------------------------------------------------------


async def open_quorum_connection(host: str, port: int, tls: QuorumTls | None, timeout_s: float,
                                 ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to another member's election or quorum port: TLS when sslQuorum, checked
    by Rule 2. Raises OSError (ssl.SSLError included) or TimeoutError."""
    if tls is None or not tls.dial_tls:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=tls.client, server_hostname=host,
                                    ssl_handshake_timeout=timeout_s), timeout_s)
    except ssl.SSLError as exc:
        logger.warning("Cannot open secure channel to %s:%d: %s", host, port, exc)
        raise
    try:
        await verify_peer_name(writer, tls)
    except ssl.SSLError as exc:
        logger.warning("Cannot open secure channel to %s:%d: %s", host, port, exc)
        writer.close()
        raise
    logger.info("SSL handshake complete with %s:%d - %s", host, port, describe(writer))
    return reader, writer


# ---- accepting (Rule 3) --------------------------------------------------------------------


def looks_like_tls(header: bytes) -> bool:
    """Whether 5 bytes are a TLS record header (as Netty's SslHandler.isEncrypted decides)."""
    if len(header) < TLS_RECORD_HEADER_BYTES:
        return False
    length = int.from_bytes(header[3:5], "big")
    return header[0] in TLS_CONTENT_TYPES and header[1] == 3 and 0 < length <= TLS_RECORD_BYTES_MAX


async def _peek(conn: socket.socket, count: int, timeout_s: float) -> bytes:
    """Up to `count` bytes without consuming them: fewer on EOF or when the time is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    rounds_max = int(timeout_s / PEEK_POLL_S) + 2
    data = b""
    for _ in range(rounds_max):
        try:
            data = conn.recv(count, socket.MSG_PEEK)
        except BlockingIOError:
            data = b""
        else:
            if len(data) >= count or not data:
                return data  # enough, or EOF
        remaining = deadline - loop.time()
        if remaining <= 0:
            return data
        if data:
            await asyncio.sleep(min(PEEK_POLL_S, remaining))  # partial: readable until more comes
            continue
        readable = loop.create_future()
        loop.add_reader(conn.fileno(), _resolve, readable)
        try:
            await asyncio.wait_for(readable, remaining)
        except TimeoutError:
            return data
        finally:
            loop.remove_reader(conn.fileno())
    return data


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _streams_over(conn: socket.socket, context: ssl.SSLContext | None, handshake_timeout_s: float,
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_LIMIT_BYTES, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    if context is None:
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, conn)
    else:
        transport, _ = await loop.connect_accepted_socket(
            lambda: protocol, conn, ssl=context, ssl_handshake_timeout=handshake_timeout_s)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


class QuorumListener:
    """An election or quorum port listener with TLS as `tls` says; each accepted connection
    reaches `handler` as streams, after the handshake and Rule 2."""

    def __init__(self, tls: QuorumTls, handler: StreamHandler, spawn: Callable[[Any], None],
                 handshake_timeout_s: float) -> None:
        self.tls = tls
        self.handler = handler
        self.spawn = spawn
        self.handshake_timeout_s = handshake_timeout_s
        self.sock: socket.socket | None = None

    def bind(self, host: str, port: int) -> None:
        """Bind as asyncio.start_server would: the first address `host` resolves to (so an
        IPv6 literal or name binds an IPv6 socket), SO_REUSEADDR set."""
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
        self.sock = socket.create_server(address, family=family)
        self.sock.setblocking(False)

    async def serve(self) -> None:
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self.sock)
            except OSError as exc:
                if self.sock.fileno() == -1:
                    return  # closed
                logger.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            self.spawn(self._accepted(conn))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()

    async def _accepted(self, conn: socket.socket) -> None:
        settings = self.tls.settings
        peer = _peer_text(conn)
        try:
            secure = True
            if settings.plaintext_accepted:
                secure = looks_like_tls(await _peek(conn, TLS_RECORD_HEADER_BYTES, self.tls.detection_timeout_s))
            if secure and self.tls.server is None:
                raise ssl.SSLError("a TLS connection, but ssl.quorum.keyStore.location is not set")
            reader, writer = await _streams_over(conn, self.tls.server if secure else None,
                                                 self.handshake_timeout_s)
        except (OSError, TimeoutError) as exc:
            logger.warning("Refused a quorum connection from %s: %s", peer, exc)
            conn.close()
            return
        if secure:
            try:
                await verify_peer_name(writer, self.tls)
            except ssl.SSLError as exc:
                logger.warning("Refused a quorum connection from %s: %s", peer, exc)
                writer.close()
                return
            logger.info("Accepted TLS connection from %s - %s", peer, describe(writer))
        else:
            logger.info("Accepted plaintext connection from %s", peer)
        await self.handler(reader, writer)


def _peer_text(conn: socket.socket) -> str:
    try:
        host, port = conn.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"
