"""Quorum SASL (quorum.auth.*): members authenticate each other with DIGEST-MD5 or Kerberos
(GSSAPI), as Apache 3.8's SaslQuorumAuthLearner and SaslQuorumAuthServer do, on the election
port (after the initial message) and on the quorum port (before FOLLOWERINFO).

Rule 1: the exchange is QuorumAuthPacket records (long magic 0x5f2435013501edcc, int status
        IN_PROGRESS 0 / SUCCESS 1 / ERROR -1, buffer token): the dialing member ("learner")
        sends its initial response (DIGEST-MD5: empty; GSSAPI: its first GSS token), the
        server answers IN_PROGRESS until its mechanism completes, then SUCCESS with the last
        challenge (DIGEST-MD5: rspauth, which the learner checks; GSSAPI: none). The learner
        loops while its mechanism is incomplete and then needs SUCCESS.
Rule 2: the learner authenticates only with quorum.auth.learnerRequireSasl; the server reads
        the next 8 bytes and, when they are not the magic, hands them on to whoever reads
        the connection: a member that does not authenticate is let through unless
        quorum.auth.serverRequireSasl (then the connection is closed). A failed exchange is
        answered ERROR; it closes the connection only with serverRequireSasl, as Apache.
Rule 3: logins come from the JAAS file (java.security.auth.login.config), each section on its
        own: a Kerberos one (Krb5LoginModule options keyTab/principal/useKeyTab/
        useTicketCache) makes that side GSSAPI, else the server section's user_<name>=
        "<password>" options and the learner section's username/password (DigestLoginModule).
        Kerberos: the server accepts for its section's principal (service/host[@REALM],
        useKeyTab, keyTab, storeKey) and authorizes a learner only when the id it asks for is
        its authenticated principal and, for a three-part principal, the host part is a
        server.N host (SaslQuorumServerCallbackHandler); the learner logs in from its keyTab
        (or a ticket cache) and asks a ticket for quorum.auth.kerberos.servicePrincipal, its
        "_HOST" replaced by the server.N host it dials (lower-cased) and the realm, when
        missing, zookeeper.server.realm or its own. A login that cannot work stops start-up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from pyzk.config import ServerConfig
from pyzk.jaas import JaasError, parse_jaas, server_users
from pyzk.sasl import DigestMD5Client, DigestMD5Server, SaslError

logger = logging.getLogger(__name__)

QUORUM_AUTH_MAGIC = 0x5F2435013501EDCC  # Java's -0xa0dbcafecafe1234L
STATUS_IN_PROGRESS, STATUS_SUCCESS, STATUS_ERROR = 0, 1, -1
PROTOCOL = "zookeeper-quorum"  # QuorumAuth.QUORUM_SERVER_PROTOCOL_NAME
SERVER_NAME = "zk-quorum-sasl-md5"  # QuorumAuth.QUORUM_SERVER_SASL_DIGEST, also the realm
HOST_PATTERN = "_HOST"  # SecurityUtils.QUORUM_HOSTNAME_PATTERN
SERVER_ROUNDS_MAX = 5  # SaslQuorumAuthServer.MAX_RETRIES
LEARNER_ROUNDS_MAX = 10
TOKEN_BYTES_MAX = 64 * 1024
PEEK_TIMEOUT_S = 10.0
EXCHANGE_TIMEOUT_S = 10.0
_HEADER = struct.Struct(">qi")
_LENGTH = struct.Struct(">i")
_KERBEROS_OPTIONS = ("keyTab", "principal", "useKeyTab", "useTicketCache")


class QuorumAuthConfigError(ValueError):
    """Quorum SASL is on but cannot be set up as configured: start-up stops."""


class QuorumAuthFailed(Exception):
    """The exchange failed (or was required and skipped): close the connection."""


@dataclass(frozen=True, slots=True)
class KerberosLogin:
    """A Krb5LoginModule section: whose principal, from which keytab or ticket cache."""

    principal: str
    keytab: str | None = None
    ccache: str | None = None


def server_principal(principal_config: str, hostname: str) -> str:
    """SecurityUtils.getServerPrincipal: "service/_HOST" (exactly two '/' parts, the second
    "_HOST") becomes "service/<hostname lower-cased>"; anything else is kept as it is."""
    components = principal_config.split("/")
    while len(components) > 1 and components[-1] == "":
        components.pop()  # Java's String.split drops trailing empty strings
    if len(components) != 2 or components[1] != HOST_PATTERN:
        return principal_config
    return f"{components[0]}/{hostname.lower()}"


def principal_realm(principal: str) -> str | None:
    return principal.rpartition("@")[2] if "@" in principal else None


def learner_target(service_principal: str, hostname: str, client_principal: str,
                   server_realm: str | None) -> str:
    """The principal a learner asks a ticket for (SecurityUtils.createSaslClient): the
    _HOST-substituted service principal, with zookeeper.server.realm or the client's realm
    appended when it has none."""
    principal = server_principal(service_principal, hostname)
    if "@" not in principal:
        realm = server_realm or principal_realm(client_principal)
        if realm:
            principal += "@" + realm
    return principal


def authorize_learner(authentication_id: str, authorization_id: str, hosts: frozenset[str]) -> None:
    """SaslQuorumServerCallbackHandler.handleAuthorizeCallback: raises SaslError unless the
    learner asks for its own principal and a "name/host@REALM" principal's host is one of the
    server.N hosts."""
    if authentication_id != authorization_id:
        raise SaslError(f"{authentication_id} is not authorized to connect as {authorization_id}")
    components = re.split("[/@]", authorization_id)
    while len(components) > 1 and components[-1] == "":
        components.pop()
    if len(components) == 3 and components[1] not in hosts:
        raise SaslError(f"SASL authorization completed, {authorization_id} is not authorized to connect"
                        f" (host {components[1]} is no server.N host)")


@dataclass(frozen=True, slots=True)
class QuorumSasl:
    learner_required: bool
    server_required: bool
    users: dict[str, str]  # the server section's DIGEST-MD5 users
    username: str  # the learner section's login
    password: str
    server_kerberos: KerberosLogin | None = None
    learner_kerberos: KerberosLogin | None = None
    service_principal: str = "zkquorum/localhost"
    server_realm: str | None = None
    authz_hosts: frozenset[str] = frozenset()
    learner_credentials: Any = field(default=None, compare=False, repr=False)

    def learner(self, hostname: str = "localhost") -> Any:
        """The SASL client for a connection to the server.N host `hostname`."""
        if self.learner_kerberos is not None:
            from pyzk.server.sasl_gssapi import GssapiClient, credentials_name

            me = credentials_name(self.learner_credentials)
            target = learner_target(self.service_principal, hostname, me, self.server_realm)
            return GssapiClient(self.learner_credentials, target, me)
        return DigestMD5Client(self.username, self.password, protocol=PROTOCOL, server_name=SERVER_NAME,
                               cnonce_source=lambda: os.urandom(30))

    def server(self) -> Any:
        if self.server_kerberos is not None:
            from pyzk.server.sasl_gssapi import GssapiServer

            hosts = self.authz_hosts
            return GssapiServer(self.server_kerberos.keytab or "", self.server_kerberos.principal,
                                authorize=lambda authn, authz: authorize_learner(authn, authz, hosts))
        return DigestMD5Server(self.users, realm=SERVER_NAME, server_name=SERVER_NAME, protocol=PROTOCOL,
                               nonce_source=lambda: os.urandom(30))


def _kerberos(options: dict[str, str]) -> bool:
    return any(key in options for key in _KERBEROS_OPTIONS)


def _true(options: dict[str, str], key: str) -> bool:
    return options.get(key, "false").strip().lower() == "true"


def kerberos_login(section: str, options: dict[str, str], *, accept: bool) -> KerberosLogin:
    """The Krb5LoginModule options of `section` as a login pyzk can run, or
    QuorumAuthConfigError naming the option and why. `accept`: the server section (it
    needs the service key: useKeyTab, keyTab, storeKey and a service/host principal)."""
    principal = options.get("principal", "").strip()
    if not principal:
        raise QuorumAuthConfigError(f"JAAS section '{section}' (Krb5LoginModule) needs principal")
    keytab = options.get("keyTab", "").strip() or None
    if _true(options, "useKeyTab") and keytab is None:
        raise QuorumAuthConfigError(
            f"JAAS section '{section}': useKeyTab=true needs keyTab (pyzk does not guess Java's default keytab)")
    if accept:
        if not _true(options, "useKeyTab") or keytab is None:
            raise QuorumAuthConfigError(
                f"JAAS section '{section}' (Krb5LoginModule) needs useKeyTab=true and keyTab: the quorum"
                " server accepts with its service key")
        if not _true(options, "storeKey"):
            raise QuorumAuthConfigError(
                f"JAAS section '{section}' (Krb5LoginModule) needs storeKey=true: without it Java keeps no"
                " service key and no learner could authenticate")
        if "/" not in principal.partition("@")[0]:
            raise QuorumAuthConfigError(
                f"JAAS section '{section}': principal {principal!r} must be service/host[@REALM]"
                " (SecurityUtils.createSaslServer splits it)")
        return KerberosLogin(principal, keytab)
    if _true(options, "useKeyTab"):
        return KerberosLogin(principal, keytab)
    if _true(options, "useTicketCache"):
        return KerberosLogin(principal, None, options.get("ticketCache", "").strip() or None)
    raise QuorumAuthConfigError(
        f"JAAS section '{section}' (Krb5LoginModule) needs useKeyTab=true with keyTab, or useTicketCache=true:"
        " pyzk cannot prompt for a password")


def _krb5_environment(config: ServerConfig) -> None:
    """-Djava.security.krb5.conf points the Kerberos library at the same profile as a JVM."""
    krb5_conf = config.system_properties.get("java.security.krb5.conf")
    if krb5_conf and "KRB5_CONFIG" not in os.environ:
        os.environ["KRB5_CONFIG"] = krb5_conf


def _acquire(section: str, login: KerberosLogin, *, accept: bool) -> Any:
    from pyzk.server.sasl_gssapi import acceptor_credentials, initiator_credentials

    try:
        if accept:
            return acceptor_credentials(login.keytab or "", login.principal)
        return initiator_credentials(login.principal, login.keytab, login.ccache)
    except SaslError as exc:
        raise QuorumAuthConfigError(f"JAAS section '{section}': {exc}") from None
    except Exception as exc:  # gssapi's GSSError (the module is imported only for Kerberos)
        source = login.keytab and f"keytab {login.keytab}" or f"ticket cache {login.ccache or '(default)'}"
        raise QuorumAuthConfigError(
            f"JAAS section '{section}': no Kerberos credentials for {login.principal} in {source}: {exc}") from None


def quorum_sasl(config: ServerConfig) -> QuorumSasl | None:
    """The quorum SASL settings with their JAAS logins (None: quorum.auth.enableSasl off)."""
    if not config.quorum_sasl_enabled:
        return None
    server_section = config.quorum_server_login_context
    learner_section = config.quorum_learner_login_context
    path = config.jaas_config_path
    if path is None:
        raise QuorumAuthConfigError(
            "quorum.auth.enableSasl=true needs a JAAS file (-Djava.security.auth.login.config) with the"
            f" '{server_section}' and '{learner_section}' sections")
    try:
        sections = parse_jaas(path.read_text())
    except OSError as exc:
        raise QuorumAuthConfigError(f"cannot read the JAAS file {path}: {exc.strerror}") from None
    except JaasError as exc:
        raise QuorumAuthConfigError(f"JAAS file {path}: {exc}") from None
    for section in (server_section, learner_section):
        if section not in sections:
            raise QuorumAuthConfigError(
                f"SASL-authentication failed because the specified JAAS configuration section"
                f" '{section}' could not be found.")
    learner = sections[learner_section]
    server_kerberos = learner_kerberos = learner_credentials = None
    if _kerberos(sections[server_section]):
        server_kerberos = kerberos_login(server_section, sections[server_section], accept=True)
    if _kerberos(learner):
        learner_kerberos = kerberos_login(learner_section, learner, accept=False)
        if "/" not in server_principal(config.quorum_service_principal, "h").partition("@")[0]:
            raise QuorumAuthConfigError(
                f"quorum.auth.kerberos.servicePrincipal={config.quorum_service_principal} must be"
                " service/host[@REALM] or service/_HOST")
    elif "username" not in learner or "password" not in learner:
        raise QuorumAuthConfigError(f"JAAS section '{learner_section}' needs username and password")
    if server_kerberos is not None or learner_kerberos is not None:
        _krb5_environment(config)
    if server_kerberos is not None:
        _acquire(server_section, server_kerberos, accept=True)
    if learner_kerberos is not None:
        learner_credentials = _acquire(learner_section, learner_kerberos, accept=False)
    users = {} if server_kerberos is not None else server_users(sections, server_section)
    hosts = frozenset(server.host for server in config.servers.values())
    logger.info("Quorum SASL: server %s, learner %s, learnerRequireSasl=%s, serverRequireSasl=%s",
                f"GSSAPI as {server_kerberos.principal}" if server_kerberos else f"DIGEST-MD5 ({len(users)} users)",
                f"GSSAPI as {learner_kerberos.principal} for {config.quorum_service_principal}"
                if learner_kerberos else f"DIGEST-MD5 as {learner['username']}",
                config.quorum_learner_require_sasl, config.quorum_server_require_sasl)
    return QuorumSasl(config.quorum_learner_require_sasl, config.quorum_server_require_sasl, dict(users),
                      learner.get("username", ""), learner.get("password", ""),
                      server_kerberos=server_kerberos, learner_kerberos=learner_kerberos,
                      service_principal=config.quorum_service_principal,
                      server_realm=config.system_properties.get("zookeeper.server.realm") or None,
                      authz_hosts=hosts, learner_credentials=learner_credentials)


def encode_auth_packet(status: int, token: bytes | None) -> bytes:
    body = b"" if token is None else token
    return _HEADER.pack(QUORUM_AUTH_MAGIC, status) + _LENGTH.pack(-1 if token is None else len(body)) + body


async def _read_packet(reader: asyncio.StreamReader, head: bytes | None = None) -> tuple[int, bytes]:
    header = head + await reader.readexactly(_HEADER.size - len(head)) if head else \
        await reader.readexactly(_HEADER.size)
    magic, status = _HEADER.unpack(header)
    if magic != QUORUM_AUTH_MAGIC:
        raise QuorumAuthFailed(f"not a quorum auth packet (magic {magic:#x})")
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > TOKEN_BYTES_MAX:
        raise QuorumAuthFailed(f"auth token of {length} bytes")
    return status, (await reader.readexactly(length) if length > 0 else b"")


async def _send(writer: asyncio.StreamWriter, status: int, token: bytes | None) -> None:
    writer.write(encode_auth_packet(status, token))
    await writer.drain()


async def authenticate_learner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sasl: QuorumSasl,
                               peer: str, hostname: str = "localhost") -> None:
    """SaslQuorumAuthLearner.authenticate on a fresh connection to the server.N host
    `hostname`; raises QuorumAuthFailed. The mechanism runs in a thread (Kerberos may ask
    the KDC for tickets)."""
    if not sasl.learner_required:
        return
    try:
        async with asyncio.timeout(EXCHANGE_TIMEOUT_S):
            client = await asyncio.to_thread(sasl.learner, hostname)
            response = b""
            if getattr(client, "initial_response", False):
                response = await asyncio.to_thread(client.evaluate, b"")
            await _send(writer, STATUS_IN_PROGRESS, response)
            status, token = await _read_packet(reader)
            for _ in range(LEARNER_ROUNDS_MAX):
                if client.complete:
                    break
                if status == STATUS_SUCCESS:
                    if await asyncio.to_thread(client.evaluate, token) is not None:
                        raise QuorumAuthFailed("Protocol error: attempting to send response after completion")
                    continue
                if status != STATUS_IN_PROGRESS:
                    raise QuorumAuthFailed(f"Authentication failed against server addr: {peer}")
                response = await asyncio.to_thread(client.evaluate, token)
                await _send(writer, STATUS_IN_PROGRESS, response)
                status, token = await _read_packet(reader)
    except (SaslError, asyncio.IncompleteReadError, OSError, TimeoutError) as exc:
        raise QuorumAuthFailed(f"Authentication failed against server addr: {peer}: {exc}") from None
    if not client.complete:
        raise QuorumAuthFailed(f"Authentication failed against server addr: {peer}: incomplete exchange")
    if status != STATUS_SUCCESS:
        raise QuorumAuthFailed(f"Authentication failed against server addr: {peer}, qpStatus: {status}")
    logger.info("Successfully completed the authentication using SASL. server addr: %s", peer)


async def _read_upto(reader: asyncio.StreamReader, count: int, timeout_s: float) -> bytes:
    data = b""
    try:
        async with asyncio.timeout(timeout_s):
            for _ in range(count):
                if len(data) >= count:
                    break
                chunk = await reader.read(count - len(data))
                if not chunk:
                    break
                data += chunk
    except TimeoutError:
        pass
    return data


async def authenticate_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sasl: QuorumSasl,
                              peer: str) -> bytes:
    """SaslQuorumAuthServer.authenticate: returns the bytes read that are not an auth packet
    (to be read as the connection's protocol); raises QuorumAuthFailed to close it."""
    head = await _read_upto(reader, _HEADER.size, PEEK_TIMEOUT_S)
    if len(head) < 8 or struct.unpack(">q", head[:8])[0] != QUORUM_AUTH_MAGIC:
        if sasl.server_required:
            raise QuorumAuthFailed(f"Learner {peer} not trying to authenticate and authentication is required")
        return head
    challenge = b""
    server: Any = None
    try:
        async with asyncio.timeout(EXCHANGE_TIMEOUT_S):
            server = sasl.server()
            _, token = await _read_packet(reader, head)
            for tries in range(1, SERVER_ROUNDS_MAX + 2):
                challenge = server.evaluate(token)
                if server.complete:
                    break
                if tries > SERVER_ROUNDS_MAX:
                    await _send(writer, STATUS_ERROR, challenge)
                    raise SaslError("retries exceeded")
                await _send(writer, STATUS_IN_PROGRESS, challenge)
                _, token = await _read_packet(reader)
            await _send(writer, STATUS_SUCCESS, challenge)
    except (SaslError, QuorumAuthFailed, asyncio.IncompleteReadError, OSError, TimeoutError) as exc:
        try:
            writer.write(encode_auth_packet(STATUS_ERROR, b""))
        except (OSError, RuntimeError):
            pass
        if sasl.server_required:
            raise QuorumAuthFailed(f"Failed to authenticate using SASL: {exc}") from None
        logger.warning("Failed to authenticate using SASL (learner %s): %s; maintaining the connection"
                       " as quorum.auth.serverRequireSasl is false", peer, exc)
        return b""
    logger.info("Successfully completed the authentication using SASL. learner addr: %s (%s)",
                peer, server.authorized_id)
    return b""
