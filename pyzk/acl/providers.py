"""Authentication providers: ip, digest, sasl and x509 (ZooKeeper's server/auth/*Provider.java).

Rule 1: each provider answers exactly what its Java class answers for `isValid`,
`matches`, `isAuthenticated`, `handleAuthentication` and `getUserName`, including Java's
string quirks (String.split drops trailing empty strings, Integer.parseInt takes a sign).
Rule 2: pure. A provider never sees a connection: `authenticate` gets the auth packet's
bytes and the client's IP string and returns the ids to add to the connection, or None
for AUTHFAILED.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from typing import Protocol

from jute.data import Id
from pyzk.acl.x500 import DerError, certificate_subject_name, is_valid_x500_name


class AuthProvider(Protocol):
    scheme: str

    def is_valid(self, id: str) -> bool: ...

    def matches(self, client_id: str, acl_id: str) -> bool: ...

    def is_authenticated(self) -> bool: ...

    def authenticate(self, auth_bytes: bytes | None, client_ip: str) -> list[Id] | None: ...

    def user_name(self, id: str) -> str: ...


def java_split(text: str, separator: str) -> list[str]:
    """Java's String.split(literal) with no limit: trailing empty strings are removed."""
    parts = text.split(separator)
    while parts and parts[-1] == "":
        parts.pop()
    # Java returns [""] (not []) for an empty input, since nothing matched.
    return parts if text else [""]


def java_parse_int(text: str) -> int | None:
    """Integer.parseInt(text, 10), or None where Java throws NumberFormatException."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not all(char.isdecimal() for char in digits):
        return None
    value = int(text)
    return value if -(1 << 31) <= value < 1 << 31 else None


def java_host_address(ip: str) -> str:
    """The client IP as Java's InetAddress.getHostAddress prints it, which is the id of
    the `ip` scheme: IPv6 as eight unpadded hex groups, IPv4-mapped IPv6 as IPv4."""
    address_text, _, scope = ip.partition("%")
    address = ipaddress.ip_address(address_text)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        groups = address.packed
        text = ":".join(f"{int.from_bytes(groups[i : i + 2], 'big'):x}" for i in range(0, 16, 2))
        return text + ("%" + scope if scope else "")
    return str(address)


class IPAuthenticationProvider:
    """Scheme `ip`: ids are IPv4 `a.b.c.d` or `a.b.c.d/bits` (IPv6 is not matched in 3.8)."""

    scheme = "ip"

    @staticmethod
    def _ipv4_bytes(address: str) -> bytes | None:
        parts = address.split(".")  # split("\\.", -1): empty parts are kept and fail
        if len(parts) != 4:
            return None
        values = [java_parse_int(part) for part in parts]
        if any(value is None or not 0 <= value <= 255 for value in values):
            return None
        return bytes(value for value in values if value is not None)

    def _parse_prefix(self, acl_id: str) -> tuple[int, int] | None:
        """(address as int, prefix bits) of an ACL id, or None if it is malformed."""
        address_text, has_bits, bits_text = acl_id.partition("/")
        address = self._ipv4_bytes(address_text)
        if address is None:
            return None
        bits = java_parse_int(bits_text) if has_bits else 32
        if bits is None or not 0 <= bits <= 32:
            return None
        return int.from_bytes(address, "big"), bits

    def is_valid(self, id: str) -> bool:
        return self._parse_prefix(id) is not None

    def matches(self, client_id: str, acl_id: str) -> bool:
        prefix = self._parse_prefix(acl_id)
        client = self._ipv4_bytes(client_id)
        if prefix is None or client is None:
            return False
        acl_address, bits = prefix
        mask = ((1 << bits) - 1) << (32 - bits)
        return int.from_bytes(client, "big") & mask == acl_address & mask

    def is_authenticated(self) -> bool:
        return False

    def authenticate(self, auth_bytes: bytes | None, client_ip: str) -> list[Id] | None:
        # The ip scheme ignores the auth data: the id is the connection's address.
        return [Id(self.scheme, client_ip)]

    def user_name(self, id: str) -> str:
        return id


_JAVA_DIGEST_ALGORITHMS = {
    # MessageDigest names and aliases (upper case, '-' and '_' removed) -> hashlib names.
    "SHA": "sha1",
    "SHA1": "sha1",
    "SHA224": "sha224",
    "SHA256": "sha256",
    "SHA384": "sha384",
    "SHA512": "sha512",
    "SHA512/224": "sha512_224",
    "SHA512/256": "sha512_256",
    "SHA3224": "sha3_224",
    "SHA3256": "sha3_256",
    "SHA3384": "sha3_384",
    "SHA3512": "sha3_512",
    "MD5": "md5",
}


class UnsupportedDigestAlgorithm(ValueError):
    """digestAlg names an algorithm we do not have (ZooKeeper refuses to start too)."""


def hashlib_name(java_algorithm: str) -> str:
    """The hashlib name of a Java MessageDigest algorithm name such as SHA1 or SHA-256."""
    key = java_algorithm.upper().replace("-", "").replace("_", "")
    try:
        return _JAVA_DIGEST_ALGORITHMS[key]
    except KeyError:
        raise UnsupportedDigestAlgorithm(
            f"don't support this ACL digest algorithm: {java_algorithm}"
        ) from None


def digest_id(user_password: str, algorithm: str = "SHA1") -> str:
    """DigestAuthenticationProvider.generateDigest: `user:password` -> `user:base64(hash)`,
    the hash over the whole `user:password` text in UTF-8 (a lone surrogate becomes '?',
    as in Java's getBytes)."""
    user = user_password.split(":", 1)[0]
    hashed = hashlib.new(hashlib_name(algorithm), user_password.encode("utf-8", "replace"))
    return user + ":" + base64.b64encode(hashed.digest()).decode("ascii")


class DigestAuthenticationProvider:
    """Scheme `digest`: ids are `user:base64(hash(user:password))`; matching is equality.

    A login whose id equals the superDigest also gets `super:` (added before the digest
    id, as handleAuthentication does)."""

    scheme = "digest"

    def __init__(self, super_digest: str | None = None, algorithm: str = "SHA1") -> None:
        hashlib_name(algorithm)  # fail at start-up, as the Java class initializer does
        self.super_digest = super_digest
        self.algorithm = algorithm

    def is_valid(self, id: str) -> bool:
        return len(java_split(id, ":")) == 2

    def matches(self, client_id: str, acl_id: str) -> bool:
        return client_id == acl_id

    def is_authenticated(self) -> bool:
        return True

    def authenticate(self, auth_bytes: bytes | None, client_ip: str) -> list[Id] | None:
        if auth_bytes is None:
            return None  # `new String(null)` throws: ZooKeeper answers AUTHFAILED and closes
        digest = digest_id(auth_bytes.decode("utf-8", "replace"), self.algorithm)
        ids = [Id("super", "")] if digest == self.super_digest else []
        ids.append(Id(self.scheme, digest))
        return ids

    def user_name(self, id: str) -> str:
        return id.split(":", 1)[0]


# KerberosName's nameParser: service[/host]@realm, each part free of '/' and '@'.
_KERBEROS_NAME = re.compile(r"([^/@]*)(/([^/@]*))?@([^/@]*)")


def is_valid_kerberos_name(name: str) -> bool:
    """new KerberosName(name) succeeds: a name with an '@' must be service[/host]@realm."""
    return "@" not in name or _KERBEROS_NAME.fullmatch(name) is not None


class SASLAuthenticationProvider:
    """Scheme `sasl`: ids are authorized principal names (added by the SASL exchange,
    opcode 102, never by an auth packet)."""

    scheme = "sasl"

    def __init__(self, let_any_sasl_user_do_x: str | None = None) -> None:
        # zookeeper.letAnySaslUserDoX: an ACL id that every SASL user matches.
        self.let_any_sasl_user_do_x = let_any_sasl_user_do_x

    def is_valid(self, id: str) -> bool:
        return is_valid_kerberos_name(id)

    def matches(self, client_id: str, acl_id: str) -> bool:
        if client_id == "super" or client_id == acl_id:
            return True
        return self.let_any_sasl_user_do_x is not None and acl_id == self.let_any_sasl_user_do_x

    def is_authenticated(self) -> bool:
        return True

    def authenticate(self, auth_bytes: bytes, client_ip: str) -> list[Id] | None:
        # SASLAuthenticationProvider.handleAuthentication always answers AUTHFAILED.
        return None

    def user_name(self, id: str) -> str:
        return id


class X509AuthenticationProvider:
    """Scheme `x509`: ids are the subject DN of a TLS client's certificate as Java's
    X500Principal.getName() prints it (pyzk.acl.x500); matching is equality, and a client
    whose id is zookeeper.X509AuthenticationProvider.superUser matches every x509 ACL.

    The id is added when the TLS handshake of the secure client port completes
    (pyzk.server.tls.authenticate_tls_client, NettyServerCnxnFactory's CertificateVerifier),
    and again by an auth packet with this scheme on that connection; without a certificate
    the answer is AUTHFAILED. Java's provider checks the chain against the trust store of
    zookeeper.ssl.trustStore.*, the one the handshake already checked it against; without a
    trust store every certificate fails ("No trust manager available")."""

    scheme = "x509"

    def __init__(self, super_user: str | None = None, trust_store_configured: bool = True) -> None:
        self.super_user = super_user
        self.trust_store_configured = trust_store_configured

    def is_valid(self, id: str) -> bool:
        return is_valid_x500_name(id)

    def matches(self, client_id: str, acl_id: str) -> bool:
        if self.super_user is not None and client_id == self.super_user:
            return True
        return client_id == acl_id

    def is_authenticated(self) -> bool:
        return True

    def authenticate(self, auth_bytes: bytes | None, client_ip: str) -> list[Id] | None:
        # No certificate chain known: handleAuthentication answers AUTHFAILED.
        return None

    def authenticate_certificate(self, certificate_der: bytes | None) -> list[Id] | None:
        """The ids for a connection whose verified client certificate is `certificate_der`
        (None: no certificate), or None for AUTHFAILED. `super:<dn>` comes first for the
        superUser, as handleAuthentication adds it."""
        if not certificate_der or not self.trust_store_configured:
            return None
        try:
            client_id = certificate_subject_name(certificate_der)
        except DerError:
            return None
        ids = [Id("super", client_id)] if client_id == self.super_user else []
        ids.append(Id(self.scheme, client_id))
        return ids

    def user_name(self, id: str) -> str:
        return id
