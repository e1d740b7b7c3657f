"""SASL GSSAPI (Kerberos) on the client port: the server side of RFC 4752, as Java's
GssKrb5Server runs it for ZooKeeper (JAAS section "Server" with Krb5LoginModule).

Rule 1: three stages. (1) accept the client's GSS tokens until the context is established,
        returning each output token; (2) on the client's next (empty) response, send the
        wrapped 4-byte offer: security layers (none) + max message size; (3) unwrap the
        client's choice + authorization id and complete, returning no token.
        When the context is established without an output token (the client asked for no
        mutual authentication, as Java's GssKrb5Client does), the offer goes out at once, as
        Java's GssKrb5Server sends it.
Rule 2: the authorized id is what ZooKeeper's SaslServerCallbackHandler makes of the
        authenticated principal: its short name, "/host" and "@REALM" kept unless
        zookeeper.kerberos.removeHostFromPrincipal / removeRealmFromPrincipal are true. An
        `authorize(authentication id, authorization id)` hook (the quorum's) may refuse it;
        the authorization id is the one the client sent, else the authenticated principal.
Rule 3: GssapiClient is the initiator (the quorum learner, as Java's GssKrb5Client): its first
        token is the initial response; once the context is established it unwraps the
        server's offer, picks "no security layer" (size 0) and sends it wrapped with its
        authorization id. Credentials come from a keytab (client_keytab credential store,
        a process-private MEMORY ticket cache) or a ticket cache.
The GSS-API library (python-gssapi over MIT Kerberos) is imported only when a Kerberos
JAAS section is configured.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
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
                 remove_realm: bool = False, authorize: Callable[[str, str], None] | None = None) -> None:
        gssapi = _gssapi()
        self._gssapi = gssapi
        try:
            creds = acceptor_credentials(keytab, principal)
        except gssapi.exceptions.GSSError as exc:
            raise SaslError(f"GSSAPI: no key for {principal} in {keytab}: {exc}") from None
        self._ctx: Any = gssapi.SecurityContext(creds=creds, usage="accept")
        self._stage = 1
        self._remove_host = remove_host
        self._remove_realm = remove_realm
        self._authorize = authorize
        self.complete = False
        self.authorized_id: str | None = None

    def _offer(self) -> bytes:
        offer = struct.pack(">I", (_NO_SECURITY_LAYER << 24) | _MAX_MESSAGE_BYTES)
        self._stage = 3
        return bytes(self._ctx.wrap(offer, False).message)

    def evaluate(self, token: bytes) -> bytes | None:
        gss_error = self._gssapi.exceptions.GSSError
        try:
            if self._stage == 1:
                out = self._ctx.step(token)
                if self._ctx.complete:
                    self._stage = 2
                    if not out:
                        return self._offer()
                return out or b""
            if self._stage == 2:
                return self._offer()
            if self._stage == 3:
                choice = bytes(self._ctx.unwrap(token).message)
                if len(choice) < 4 or not choice[0] & _NO_SECURITY_LAYER:
                    raise SaslError("GSSAPI: the client chose a security layer the server did not offer")
                peer = str(self._ctx.initiator_name)
                if self._authorize is not None:
                    requested = choice[4:].decode("utf-8", "replace") or peer
                    self._authorize(peer, requested)
                self.authorized_id = authorized_id(peer, self._remove_host, self._remove_realm)
                self.complete = True
                self._stage = 4
                return None
        except gss_error as exc:
            raise SaslError(f"GSSAPI: {exc}") from None
        raise SaslError("GSSAPI: authentication already complete")


def _gssapi() -> Any:
    try:
        import gssapi
    except ImportError:
        raise SaslError("GSSAPI needs the python-gssapi package (pip install gssapi)") from None
    return gssapi


def acceptor_credentials(keytab: str, principal: str) -> Any:
    """Accepting credentials for `principal` from `keytab` (GSSError when it holds no key)."""
    gssapi = _gssapi()
    name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
    try:
        return gssapi.Credentials(name=name, usage="accept", store={"keytab": keytab})
    except (AttributeError, NotImplementedError, TypeError):
        os.environ["KRB5_KTNAME"] = keytab  # no credential-store extension: the env var
        return gssapi.Credentials(name=name, usage="accept")


def initiator_credentials(principal: str, keytab: str | None, ccache: str | None) -> Any:
    """Initiating credentials for `principal`: from `keytab` (tickets kept in a MEMORY cache
    of this process, renewed from the keytab by the library), else from the ticket cache
    `ccache` (None: the default one). GSSError when neither holds them."""
    gssapi = _gssapi()
    name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
    store: dict[str, str] = {}
    if keytab is not None:
        store = {"client_keytab": keytab, "ccache": ccache or f"MEMORY:pyzk-{os.getpid()}-{id(name):x}"}
    elif ccache is not None:
        store = {"ccache": ccache}
    if not store:
        return gssapi.Credentials(name=name, usage="initiate")
    try:
        return gssapi.Credentials(name=name, usage="initiate", store=store)
    except (AttributeError, NotImplementedError, TypeError):
        if keytab is not None:
            os.environ["KRB5_CLIENT_KTNAME"] = keytab  # no credential-store extension
        if ccache is not None:
            os.environ["KRB5CCNAME"] = ccache
        return gssapi.Credentials(name=name, usage="initiate")


def credentials_name(creds: Any) -> str:
    """The principal the credentials are for, with its realm (Java's KerberosName.toString())."""
    return str(creds.name)


class GssapiClient:
    """The initiator's exchange: `evaluate(token) -> bytes | None`; the first call (with an
    empty token) makes the initial response."""

    initial_response = True

    def __init__(self, creds: Any, target_principal: str, authorization_id: str) -> None:
        gssapi = _gssapi()
        self._gssapi = gssapi
        target = gssapi.Name(target_principal, gssapi.NameType.kerberos_principal)
        flags = gssapi.RequirementFlag
        self._ctx: Any = gssapi.SecurityContext(
            name=target, creds=creds, usage="initiate", mech=gssapi.MechType.kerberos,
            flags=flags.mutual_authentication | flags.integrity)
        self._authorization_id = authorization_id
        self._stage = 1
        self.complete = False

    def evaluate(self, token: bytes) -> bytes | None:
        gss_error = self._gssapi.exceptions.GSSError
        try:
            if self._stage == 1:
                out = self._ctx.step(token or None)
                if self._ctx.complete:
                    self._stage = 2
                return out or b""
            if self._stage == 2:
                offer = bytes(self._ctx.unwrap(token).message)
                if len(offer) < 4:
                    raise SaslError("GSSAPI: the server's security layer offer is too short")
                if not offer[0] & _NO_SECURITY_LAYER:
                    raise SaslError("GSSAPI: the server does not offer 'no security layer'")
                choice = struct.pack(">I", _NO_SECURITY_LAYER << 24) + self._authorization_id.encode("utf-8")
                self.complete = True
                self._stage = 3
                return bytes(self._ctx.wrap(choice, False).message)
        except gss_error as exc:
            raise SaslError(f"GSSAPI: {exc}") from None
        raise SaslError("GSSAPI authentication already complete")
