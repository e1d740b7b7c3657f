"""Quorum TLS settings (sslQuorum, portUnification, ssl.quorum.*) as QuorumX509Util reads them.

Rule 1: pure. The settings are judged here, from strings; pyzk/server/tls.py loads the stores
        and builds the ssl contexts at start-up (files are only read there).
Rule 2: the defaults are Apache ZooKeeper 3.8's on Java 9+: protocol TLSv1.2 and only it
        enabled, the twelve ECDHE suites (GCM first), clientAuth "need" (a member without a
        certificate the trust store vouches for is refused), hostname verification on, and on
        both ends (QuorumX509Util verifies the connecting member's address too).
Rule 3: what pyzk cannot do as Apache does stops start-up with the key's name: certificate
        file reloading, CRL/OCSP revocation checks, an SSLContext supplier class, a protocol
        or cipher suite OpenSSL does not offer under that name.
"""

from __future__ import annotations

from dataclasses import dataclass

QUORUM_SSL_PREFIX = "ssl.quorum."

DEFAULT_PROTOCOL = "TLSv1.2"
SUPPORTED_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
CLIENT_AUTH_VALUES = ("none", "want", "need")
DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS = 5000
STORE_TYPES = ("JKS", "PEM", "PKCS12")

# X509Util.getDefaultCipherSuites on Java 9+: the GCM suites, then the CBC ones.
DEFAULT_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
)

# TLS 1.3 suites carry the same name in Java and OpenSSL; Python's ssl cannot choose among
# them, so a list naming some of them must name all that OpenSSL enables by default.
TLS13_CIPHER_SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256")

def openssl_cipher_name(java_name: str) -> str | None:
    """The OpenSSL name of a TLS 1.2 suite given by its Java (IANA) name; None if it has none
    pyzk knows (RFC 5246/5289/7905 ECDHE, DHE and RSA suites with AES or ChaCha20)."""
    if not java_name.startswith("TLS_") or "_WITH_" not in java_name:
        return None
    exchange, cipher = java_name[len("TLS_"):].split("_WITH_", 1)
    prefix = {"ECDHE_RSA": "ECDHE-RSA-", "ECDHE_ECDSA": "ECDHE-ECDSA-", "DHE_RSA": "DHE-RSA-",
              "RSA": ""}.get(exchange)
    if prefix is None:
        return None
    if cipher == "CHACHA20_POLY1305_SHA256":
        return prefix + "CHACHA20-POLY1305" if prefix else None
    parts = cipher.split("_")
    if len(parts) != 4 or parts[0] != "AES" or parts[1] not in ("128", "256"):
        return None
    aes, mode, mac = "AES" + parts[1], parts[2], parts[3]
    if mode == "GCM" and mac in ("SHA256", "SHA384"):
        return f"{prefix}{aes}-GCM-{mac}"
    if mode == "CBC" and mac in ("SHA", "SHA256", "SHA384"):
        return f"{prefix}{aes}-{mac}"
    return None


@dataclass(frozen=True, slots=True)
class QuorumTlsSettings:
    """What the election and quorum ports do: dial with TLS (ssl_quorum), accept TLS only
    (ssl_quorum without port_unification) or both (port_unification), with these stores."""

    ssl_quorum: bool
    port_unification: bool
    key_store_location: str
    key_store_password: str
    key_store_password_path: str
    key_store_type: str  # "" = from the file name, as X509Util does
    trust_store_location: str
    trust_store_password: str
    trust_store_password_path: str
    trust_store_type: str
    protocol: str
    enabled_protocols: tuple[str, ...]
    cipher_suites: tuple[str, ...]  # Java names
    openssl_ciphers: tuple[str, ...]  # the TLS 1.2 ones, OpenSSL names
    client_auth: str  # none | want | need
    hostname_verification: bool
    handshake_detection_timeout_ms: int

    @property
    def tls_accepted(self) -> bool:
        return self.ssl_quorum or self.port_unification

    @property
    def plaintext_accepted(self) -> bool:
        return not self.ssl_quorum or self.port_unification


class QuorumTlsError(ValueError):
    """A setting pyzk refuses: (the ssl.quorum.* name or zoo.cfg key, the reason)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def quorum_tls_settings(ssl_quorum: bool, port_unification: bool, values: dict[str, str],
                        warnings: list[str]) -> QuorumTlsSettings:
    """Judge the ssl.quorum.* values (names without the `zookeeper.` prefix, values as set)."""

    def get(name: str) -> str | None:
        return values.get(QUORUM_SSL_PREFIX + name)

    def flag(name: str, default: bool) -> bool:
        value = get(name)
        if value is None:
            return default
        if value.strip().lower() not in ("true", "false"):
            raise QuorumTlsError(QUORUM_SSL_PREFIX + name, f"invalid boolean '{value}' (true or false)")
        return value.strip().lower() == "true"

    for name in ("crl", "ocsp"):
        if flag(name, False):
            raise QuorumTlsError(QUORUM_SSL_PREFIX + name, "certificate revocation checks (CRL/OCSP) are"
                                 " not implemented by pyzk; refusing to start rather than run without them")
    if get("context.supplier.class") is not None:
        raise QuorumTlsError(QUORUM_SSL_PREFIX + "context.supplier.class",
                             "an SSLContext supplier class is Java code pyzk cannot run; configure the key"
                             " and trust stores instead")
    key_location = get("keyStore.location") or ""
    if ssl_quorum and not key_location:
        raise QuorumTlsError(QUORUM_SSL_PREFIX + "keyStore.location",
                             "sslQuorum=true needs a key store (this member's certificate and key)")
    for store in ("keyStore", "trustStore"):
        store_type = (get(f"{store}.type") or "").strip().upper()
        if store_type and store_type not in STORE_TYPES:
            raise QuorumTlsError(QUORUM_SSL_PREFIX + f"{store}.type",
                                 f"store type {store_type} is not supported (JKS, PEM or PKCS12)")

    protocol = get("protocol")
    protocol = DEFAULT_PROTOCOL if protocol is None else protocol
    if protocol not in SUPPORTED_PROTOCOLS:
        raise QuorumTlsError(QUORUM_SSL_PREFIX + "protocol",
                             f"protocol '{protocol}' is not supported (TLSv1.2 or TLSv1.3)")
    enabled_text = get("enabledProtocols")
    enabled = (protocol,) if enabled_text is None else tuple(enabled_text.split(","))
    for name in enabled:
        if name not in SUPPORTED_PROTOCOLS:
            raise QuorumTlsError(QUORUM_SSL_PREFIX + "enabledProtocols",
                                 f"protocol '{name}' is not supported (TLSv1.2 or TLSv1.3)")
    if protocol == "TLSv1.2" and "TLSv1.3" in enabled:
        # An SSLContext for TLSv1.2 cannot speak 1.3; Java would fail every handshake.
        raise QuorumTlsError(QUORUM_SSL_PREFIX + "enabledProtocols",
                             "TLSv1.3 is enabled but ssl.quorum.protocol is TLSv1.2")

    suites_text = get("ciphersuites")
    suites = DEFAULT_CIPHER_SUITES if suites_text is None else tuple(suites_text.split(","))
    openssl: list[str] = []
    tls13 = [name for name in suites if name in TLS13_CIPHER_SUITES]
    for name in suites:
        if name in TLS13_CIPHER_SUITES:
            continue
        converted = openssl_cipher_name(name)
        if converted is None:
            raise QuorumTlsError(QUORUM_SSL_PREFIX + "ciphersuites", f"cipher suite '{name}' is not supported")
        openssl.append(converted)
    if tls13 and set(tls13) != set(TLS13_CIPHER_SUITES):
        raise QuorumTlsError(QUORUM_SSL_PREFIX + "ciphersuites",
                             "pyzk cannot choose among the TLS 1.3 suites: name all of "
                             + ",".join(TLS13_CIPHER_SUITES) + " or none")
    usable = {"TLSv1.2": bool(openssl), "TLSv1.3": bool(tls13)}
    wanted, enabled = enabled, tuple(name for name in dict.fromkeys(enabled) if usable[name])
    if not enabled:
        culprit = "ciphersuites" if suites_text is not None else \
            "enabledProtocols" if enabled_text is not None else "protocol"
        raise QuorumTlsError(QUORUM_SSL_PREFIX + culprit,
                             f"no cipher suite is listed for {','.join(wanted)}"
                             + ("" if suites_text is not None else " (the default suites are TLS 1.2 ones)"))

    client_auth = (get("clientAuth") or "need").strip().lower() or "need"
    if client_auth not in CLIENT_AUTH_VALUES:
        raise QuorumTlsError(QUORUM_SSL_PREFIX + "clientAuth",
                             f"invalid value '{get('clientAuth')}' (NONE, WANT or NEED)")
    timeout_text = get("handshakeDetectionTimeoutMillis")
    timeout_ms = DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS
    if timeout_text is not None:
        try:
            timeout_ms = int(timeout_text.strip())
        except ValueError:
            raise QuorumTlsError(QUORUM_SSL_PREFIX + "handshakeDetectionTimeoutMillis",
                                 f"invalid integer '{timeout_text}'") from None
        if timeout_ms < 1:
            warnings.append(f"Invalid value for zookeeper.{QUORUM_SSL_PREFIX}handshakeDetectionTimeoutMillis:"
                            f" {timeout_ms}, using the default value of {DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS}")
            timeout_ms = DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS
    return QuorumTlsSettings(
        ssl_quorum=ssl_quorum,
        port_unification=port_unification,
        key_store_location=key_location,
        key_store_password=get("keyStore.password") or "",
        key_store_password_path=get("keyStore.passwordPath") or "",
        key_store_type=(get("keyStore.type") or "").strip().upper(),
        trust_store_location=get("trustStore.location") or "",
        trust_store_password=get("trustStore.password") or "",
        trust_store_password_path=get("trustStore.passwordPath") or "",
        trust_store_type=(get("trustStore.type") or "").strip().upper(),
        protocol=protocol,
        enabled_protocols=enabled,
        cipher_suites=suites,
        openssl_ciphers=tuple(openssl),
        client_auth=client_auth,
        hostname_verification=flag("hostnameVerification", True),
        handshake_detection_timeout_ms=timeout_ms,
    )
