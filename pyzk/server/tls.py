"""TLS for secureClientPort (X509Util): an SSLContext from ZooKeeper's ssl.* settings.

Rule 1: the store types 3.8 accepts are read as they are: JKS (via pyjks), PKCS12 and PEM;
        the type comes from ssl.keyStore.type / ssl.trustStore.type, else the file extension
        (.jks, .p12/.pfx, .pem), else JKS (Java's default).
Rule 2: ssl.clientAuth is "need" by default: a client without a certificate signed by the
        trust store is refused during the handshake; "want" asks, "none" does not.
Rule 3: private key material is only ever written to a 0600 file in a private temporary
        directory, removed as soon as the context has loaded it (ssl needs file paths).
Rule 4: once a client's handshake completes, authenticate_tls_client does what Netty's
        CertificateVerifier does: with clientAuth need or want, a client that presented a
        certificate gets the ids of the ssl.authProvider scheme's provider (x509: its subject
        DN), or is closed if there is no such provider or it refuses; a client without one
        (want) is served with its ip id only.
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyzk.acl import AuthRegistry
    from pyzk.pipeline.clientsession import ClientSession

logger = logging.getLogger(__name__)


class TlsConfigError(ValueError):
    pass


def _pem(kind: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN " + kind.encode() + b"-----\n" + b"\n".join(lines) + b"\n-----END " + kind.encode() + b"-----\n"


def _store_type(settings: dict[str, str], prefix: str, location: str) -> str:
    return store_type_of(settings.get(f"{prefix}.type", ""), location)


def store_type_of(explicit: str, location: str) -> str:
    """KeyStoreFileType.fromPropertyValueOrFileName: the type if set, else by extension."""
    explicit = explicit.strip().upper()
    if explicit:
        return explicit
    lower = location.lower()
    if lower.endswith((".p12", ".pfx")):
        return "PKCS12"
    if lower.endswith(".pem"):
        return "PEM"
    return "JKS"


def _keystore_pem(location: str, password: str, store_type: str) -> tuple[bytes, bytes]:
    """(private key PEM, certificate chain PEM) from a key store."""
    data = Path(location).read_bytes()
    if store_type == "PEM":
        return data, data
    if store_type == "PKCS12":
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
            pkcs12,
        )

        key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() or None)
        if key is None or cert is None:
            raise TlsConfigError(f"{location}: no private key entry")
        chain = cert.public_bytes(Encoding.PEM) + b"".join(c.public_bytes(Encoding.PEM) for c in extra or [])
        return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), chain
    if store_type == "JKS":
        try:
            import jks
        except ImportError:
            raise TlsConfigError("a JKS key store needs the pyjks package (pip install pyjks)") from None
        store = jks.KeyStore.load(location, password)
        for entry in store.private_keys.values():
            if not entry.is_decrypted():
                entry.decrypt(password)
            key = _pem("PRIVATE KEY", entry.pkey_pkcs8)
            chain = b"".join(_pem("CERTIFICATE", der) for _, der in entry.cert_chain)
            return key, chain
        raise TlsConfigError(f"{location}: no private key entry")
    raise TlsConfigError(f"unsupported key store type {store_type}")


def truststore_pem(location: str, password: str, store_type: str) -> bytes:
    data = Path(location).read_bytes()
    if store_type == "PEM":
        return data
    if store_type == "PKCS12":
        from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

        _, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() or None)
        certs = ([cert] if cert is not None else []) + list(extra or [])
        return b"".join(c.public_bytes(Encoding.PEM) for c in certs)
    if store_type == "JKS":
        try:
            import jks
        except ImportError:
            raise TlsConfigError("a JKS trust store needs the pyjks package (pip install pyjks)") from None
        store = jks.KeyStore.load(location, password)
        return b"".join(_pem("CERTIFICATE", entry.cert) for entry in store.certs.values())
    raise TlsConfigError(f"unsupported trust store type {store_type}")


def load_key_store(context: ssl.SSLContext, location: str, password: str, store_type: str) -> None:
    """Rule 3: the key and chain reach the context through a private 0600 file, then vanish."""
    key_pem, chain_pem = _keystore_pem(location, password, store_type)
    with tempfile.TemporaryDirectory(prefix="pyzk-tls-") as private_dir:
        os.chmod(private_dir, 0o700)
        key_path = os.path.join(private_dir, "key.pem")
        chain_path = os.path.join(private_dir, "chain.pem")
        for path, content in ((key_path, key_pem), (chain_path, chain_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(content)
        context.load_cert_chain(chain_path, key_path)


def server_ssl_context(settings: dict[str, str]) -> ssl.SSLContext:
    """The server-side context for secureClientPort from the ssl.* settings."""
    key_location = settings.get("ssl.keyStore.location", "")
    if not key_location:
        raise TlsConfigError("secureClientPort needs ssl.keyStore.location")
    key_password = settings.get("ssl.keyStore.password", "")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_key_store(context, key_location, key_password, _store_type(settings, "ssl.keyStore", key_location))
    trust_location = settings.get("ssl.trustStore.location", "")
    if trust_location:
        trust_pem = truststore_pem(
            trust_location, settings.get("ssl.trustStore.password", ""),
            _store_type(settings, "ssl.trustStore", trust_location),
        )
        context.load_verify_locations(cadata=trust_pem.decode("ascii"))
    client_auth = settings.get("ssl.clientAuth", "need").strip().lower()
    context.verify_mode = {"none": ssl.CERT_NONE, "want": ssl.CERT_OPTIONAL}.get(client_auth, ssl.CERT_REQUIRED)
    return context


def authenticate_tls_client(registry: AuthRegistry, session: ClientSession,
                            ssl_object: ssl.SSLObject) -> bool:
    """Rule 4: False when the connection must be closed."""
    verify_mode = ssl_object.context.verify_mode
    if verify_mode == ssl.CERT_NONE:
        return True  # clientAuth=none: no certificate asked for, none checked
    certificate = ssl_object.getpeercert(binary_form=True)
    if not certificate:
        # want: the certificate was optional (with need the handshake has failed already)
        return verify_mode != ssl.CERT_REQUIRED
    ids = registry.tls_client_ids(certificate)
    if ids is None:
        if registry.provider(registry.tls_auth_scheme) is None:
            logger.error("X509 Auth provider not found: %s", registry.tls_auth_scheme)
        else:
            logger.error("Authentication failed for the TLS client /%s:%d",
                         session.remote_ip, session.remote_port)
        return False
    session.client_certificate = certificate
    for auth_id in ids:
        session.auth_info.add(auth_id)
    logger.info("Authenticated Id '%s' for Scheme '%s'", ids[-1].id, ids[-1].scheme)
    return True
