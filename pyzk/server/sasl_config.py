"""Which SASL mechanism the client port offers, from the JAAS file's "Server" section.

Rule (ZooKeeperSaslServer): a Kerberos login (Krb5LoginModule: keyTab + principal) gives
GSSAPI; `user_<name>="<password>"` entries (DigestLoginModule) give DIGEST-MD5; no "Server"
section, no SASL server (the client gets empty tokens back).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from pyzk.config import ServerConfig

logger = logging.getLogger(__name__)

SaslFactory = Callable[[], Any]


def _true(config: ServerConfig, name: str) -> bool:
    return config.system_properties.get(name, "false").strip().lower() == "true"


def sasl_mechanism_factory(config: ServerConfig) -> SaslFactory | None:
    """A factory making one per-connection SASL server (`evaluate(token)`), or None."""
    path = config.jaas_config_path
    if path is None:
        return None
    from pyzk.jaas import JaasError, parse_jaas, server_users

    try:
        sections = parse_jaas(path.read_text())
    except (OSError, JaasError) as exc:
        logger.error("Cannot read JAAS configuration %s: %s", path, exc)
        return None
    options = sections.get("Server")
    if options is None:
        return None
    if "keyTab" in options and "principal" in options:
        from pyzk.server.sasl_gssapi import GssapiServer

        keytab, principal = options["keyTab"], options["principal"]
        remove_host = _true(config, "zookeeper.kerberos.removeHostFromPrincipal")
        remove_realm = _true(config, "zookeeper.kerberos.removeRealmFromPrincipal")
        logger.info("SASL mechanism GSSAPI for %s (keytab %s)", principal, keytab)
        return lambda: GssapiServer(keytab, principal, remove_host=remove_host, remove_realm=remove_realm)
    from pyzk.sasl import DigestMD5Server

    users = dict(server_users(
        sections,
        super_password=config.system_properties.get("zookeeper.SASLAuthenticationProvider.superPassword"),
    ))
    return lambda: DigestMD5Server(users, nonce_source=lambda: os.urandom(30))
