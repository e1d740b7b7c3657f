"""The auth provider registry (ZooKeeper's ProviderRegistry), built from system properties.

Rule 1: the scheme -> provider map holds what ProviderRegistry.initialize would hold: `ip`
always, `digest` unless zookeeper.DigestAuthenticationProvider.enabled is false, plus one
provider per zookeeper.authProvider.N property naming a class we implement. `world`,
`auth` and `super` are not providers: the ACL rules treat them specially.
Rule 2: a zookeeper.authProvider.N class we do not implement is reported in
`unsupported_provider_classes` (ZooKeeper logs "Problems loading" and goes on), never
silently dropped.
Rule 3: properties use their Java names; a zoo.cfg key the config parser does not know
arrives here as "zookeeper." + key, as QuorumPeerConfig sets it (and, with secureClientPort,
zookeeper.authProvider.x509 as QuorumPeerConfig.configureSSLAuth sets it: pyzk.config).
Rule 4: the x509 provider authenticates from the connection's client certificate, not from
the auth packet's bytes: `authenticate` takes the certificate for it.
"""

from __future__ import annotations

from collections.abc import Mapping

from jute.data import Id
from pyzk.acl.providers import (
    AuthProvider,
    DigestAuthenticationProvider,
    IPAuthenticationProvider,
    SASLAuthenticationProvider,
    X509AuthenticationProvider,
)

AUTH_PROVIDER_PROPERTY_PREFIX = "zookeeper.authProvider."
DIGEST_ENABLED_PROPERTY = "zookeeper.DigestAuthenticationProvider.enabled"
SUPER_DIGEST_PROPERTY = "zookeeper.DigestAuthenticationProvider.superDigest"
DIGEST_ALGORITHM_PROPERTY = "zookeeper.DigestAuthenticationProvider.digestAlg"
LET_ANY_SASL_USER_DO_X_PROPERTY = "zookeeper.letAnySaslUserDoX"
SASL_SUPER_USER_PROPERTY = "zookeeper.superUser"
X509_SUPER_USER_PROPERTY = "zookeeper.X509AuthenticationProvider.superUser"
SSL_TRUST_STORE_LOCATION_PROPERTY = "zookeeper.ssl.trustStore.location"
# ClientX509Util's ssl.authProvider: the scheme of the provider that authenticates TLS clients.
SSL_AUTH_PROVIDER_PROPERTY = "zookeeper.ssl.authProvider"

_AUTH_PACKAGE = "org.apache.zookeeper.server.auth."
KNOWN_PROVIDER_SCHEMES = {
    _AUTH_PACKAGE + "IPAuthenticationProvider": "ip",
    _AUTH_PACKAGE + "DigestAuthenticationProvider": "digest",
    _AUTH_PACKAGE + "SASLAuthenticationProvider": "sasl",
    _AUTH_PACKAGE + "X509AuthenticationProvider": "x509",
}


def _java_parse_boolean(text: str) -> bool:
    return text.lower() == "true"


class AuthRegistry:
    """Scheme -> provider, and the super-user rules that ride on authentication."""

    def __init__(
        self,
        providers: Mapping[str, AuthProvider],
        sasl_super_users: tuple[str, ...] = (),
        unsupported_provider_classes: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._providers = dict(providers)
        self.sasl_super_users = sasl_super_users
        # (property name, class name) pairs of zookeeper.authProvider.N we cannot load.
        self.unsupported_provider_classes = unsupported_provider_classes
        # The scheme whose provider authenticates a TLS client's certificate (ssl.authProvider).
        self.tls_auth_scheme = "x509"

    @classmethod
    def from_properties(cls, properties: Mapping[str, str]) -> AuthRegistry:
        digest_algorithm = properties.get(DIGEST_ALGORITHM_PROPERTY, "SHA1")
        super_digest = properties.get(SUPER_DIGEST_PROPERTY)
        providers: dict[str, AuthProvider] = {"ip": IPAuthenticationProvider()}
        if _java_parse_boolean(properties.get(DIGEST_ENABLED_PROPERTY, "true")):
            providers["digest"] = DigestAuthenticationProvider(super_digest, digest_algorithm)
        unsupported: list[tuple[str, str]] = []
        for key in sorted(properties):
            if not key.startswith(AUTH_PROVIDER_PROPERTY_PREFIX):
                continue
            class_name = properties[key].strip()
            scheme = KNOWN_PROVIDER_SCHEMES.get(class_name)
            if scheme == "ip":
                providers["ip"] = IPAuthenticationProvider()
            elif scheme == "digest":
                # Named explicitly, the class loads even when digest is disabled.
                providers["digest"] = DigestAuthenticationProvider(super_digest, digest_algorithm)
            elif scheme == "sasl":
                providers["sasl"] = SASLAuthenticationProvider(
                    properties.get(LET_ANY_SASL_USER_DO_X_PROPERTY)
                )
            elif scheme == "x509":
                providers["x509"] = X509AuthenticationProvider(
                    properties.get(X509_SUPER_USER_PROPERTY),
                    # Java's constructor: no trust manager when the location is empty.
                    bool(properties.get(SSL_TRUST_STORE_LOCATION_PROPERTY, "")),
                )
            else:
                unsupported.append((key, class_name))
        # ZooKeeperServer.isSaslSuperUser: zookeeper.superUser and zookeeper.superUser.*
        sasl_super_users = tuple(
            properties[key]
            for key in sorted(properties)
            if key == SASL_SUPER_USER_PROPERTY or key.startswith(SASL_SUPER_USER_PROPERTY + ".")
        )
        registry = cls(providers, sasl_super_users, tuple(unsupported))
        registry.tls_auth_scheme = properties.get(SSL_AUTH_PROVIDER_PROPERTY, "x509")
        return registry

    def provider(self, scheme: str) -> AuthProvider | None:
        return self._providers.get(scheme)

    def schemes(self) -> list[str]:
        return sorted(self._providers)

    def authenticate(self, scheme: str, auth_bytes: bytes | None, client_ip: str,
                     client_certificate: bytes | None = None) -> list[Id] | None:
        """An auth packet (xid -4): the ids to add to the connection, or None for
        AUTHFAILED (unknown scheme or rejected credentials; the server then closes).
        `auth_bytes` is None for a null buffer: each provider decides (ip ignores it).
        `client_certificate` is the connection's verified TLS client certificate (DER), if
        any: the x509 provider reads it and ignores the bytes."""
        provider = self._providers.get(scheme)
        if provider is None:
            return None
        if isinstance(provider, X509AuthenticationProvider):
            return provider.authenticate_certificate(client_certificate)
        return provider.authenticate(auth_bytes, client_ip)

    def tls_client_ids(self, client_certificate: bytes) -> list[Id] | None:
        """NettyServerCnxnFactory's CertificateVerifier for a client that presented a
        certificate: the ids of the ssl.authProvider scheme's provider, or None (the
        connection is then closed: no such provider, or AUTHFAILED)."""
        provider = self._providers.get(self.tls_auth_scheme)
        if not isinstance(provider, X509AuthenticationProvider):
            return None
        return provider.authenticate_certificate(client_certificate)

    def sasl_ids(self, authorization_id: str) -> list[Id]:
        """The ids a completed SASL exchange adds: `sasl:<id>`, then `super:` if the id is
        a zookeeper.superUser (ZooKeeperServer.processSasl)."""
        ids = [Id("sasl", authorization_id)]
        if authorization_id and authorization_id in self.sasl_super_users:
            ids.append(Id("super", ""))
        return ids

    def user_name(self, auth_id: Id) -> str:
        """whoAmI's `user` for a connection id (AuthUtil.getUser; "" without a provider)."""
        provider = self._providers.get(auth_id.scheme)
        return "" if provider is None else provider.user_name(auth_id.id)
