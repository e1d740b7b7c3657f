"""SASL GSSAPI (Kerberos) on the client port: the server side of RFC 4752, as Java's
GssKrb5Server runs it for ZooKeeper (JAAS section "Server" with Krb5LoginModule).

Rule 1: three stages. (1) accept the client's GSS tokens until the context is established,
        returning each output token; (2) on the client's next (empty) response, send the
        wrapped 4-byte offer: security layers (none) + max message size; (3) unwrap the
        client's choice + authorization id and complete, returning no token.
Rule 2: the authorized id is what ZooKeeper's SaslServerCallbackHandler makes of the
        authenticated principal: its short name, "/host" and "@REALM" kept unless
        zookeeper.kerberos.removeHostFromPrincipal / removeRealmFromPrincipal are true.
The GSS-API library (python-gssapi over MIT Kerberos) is imported only when a Kerberos
JAAS section is configured.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from pyzk.sasl import SaslError

_NO_SECURITY_LAYER = 1
_MAX_MESSAGE_BYTES = 0xFFFFFF


def authorized_id(principal: str, remove_host: bool, remove_realm: bool) -> str:
    """SaslServerCallbackHandler: shortName [+ "/" + host] [+ "@" + realm]."""
    name, _, realm = principal.partition("@")
    short, _, host = name.partition("/")
    out = short
    if host and not remove_host:
        out += "/" + host
    if realm and not remove_realm:
        out += "@" + realm
    return out


class GssapiServer:
    """One connection's GSSAPI exchange: `evaluate(token) -> bytes | None`."""

    def __init__(self, keytab: str, principal: str, *, remove_host: bool = False,
                 remove_realm: bool = False) -> None:
        try:
            import gssapi
        except ImportError:
            raise SaslError("GSSAPI needs the python-gssapi package (pip install gssapi)") from None
        self._gssapi = gssapi
        name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
        try:
            creds = gssapi.Credentials(name=name, usage="accept", store={"keytab": keytab})
        except (AttributeError, NotImplementedError, TypeError):
            os.environ["KRB5_KTNAME"] = keytab  # no credential-store extension: the env var
            creds = gssapi.Credentials(name=name, usage="accept")
        self._ctx: Any = gssapi.SecurityContext(creds=creds, usage="accept")
        self._stage = 1
        self._remove_host = remove_host
        self._remove_realm = remove_realm
        self.complete = False
        self.authorized_id: str | None = None

    def evaluate(self, token: bytes) -> bytes | None:
        gss_error = self._gssapi.exceptions.GSSError
        try:
            if self._stage == 1:
                out = self._ctx.step(token)
                if self._ctx.complete:
                    self._stage = 2
                return out or b""
            if self._stage == 2:
                offer = struct.pack(">I", (_NO_SECURITY_LAYER << 24) | _MAX_MESSAGE_BYTES)
                self._stage = 3
                return bytes(self._ctx.wrap(offer, False).message)
            if self._stage == 3:
                choice = bytes(self._ctx.unwrap(token).message)
                if len(choice) < 4 or not choice[0] & _NO_SECURITY_LAYER:
                    raise SaslError("GSSAPI: the client chose a security layer the server did not offer")
                self.authorized_id = authorized_id(
                    str(self._ctx.initiator_name), self._remove_host, self._remove_realm)
                self.complete = True
                self._stage = 4
                return None
        except gss_error as exc:
            raise SaslError(f"GSSAPI: {exc}") from None
        raise SaslError("GSSAPI: authentication already complete")
