"""Quorum SASL (quorum.auth.*): members authenticate each other with DIGEST-MD5, as Apache 3.8's
SaslQuorumAuthLearner and SaslQuorumAuthServer do, on the election port (after the initial
message) and on the quorum port (before FOLLOWERINFO).

Rule 1: the exchange is QuorumAuthPacket records (long magic 0x5f2435013501edcc, int status
        IN_PROGRESS 0 / SUCCESS 1 / ERROR -1, buffer token): the dialing member ("learner")
        sends an empty token, the accepting member answers the challenge, the learner its
        digest-response, the server SUCCESS with rspauth, which the learner checks.
Rule 2: the learner authenticates only with quorum.auth.learnerRequireSasl; the server reads
        the next 8 bytes and, when they are not the magic, hands them on to whoever reads
        the connection: a member that does not authenticate is let through unless
        quorum.auth.serverRequireSasl (then the connection is closed). A failed exchange is
        answered ERROR; it closes the connection only with serverRequireSasl, as Apache.
Rule 3: passwords come from the JAAS file (java.security.auth.login.config): the server
        section's user_<name>="<password>" options, the learner section's username/password
        (DigestLoginModule). A Kerberos login in either section stops start-up: pyzk does not
        do quorum GSSAPI.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from dataclasses import dataclass

from pyzk.config import ServerConfig
from pyzk.jaas import JaasError, parse_jaas, server_users
from pyzk.sasl import DigestMD5Client, DigestMD5Server, SaslError

logger = logging.getLogger(__name__)

QUORUM_AUTH_MAGIC = 0x5F2435013501EDCC  # Java's -0xa0dbcafecafe1234L
STATUS_IN_PROGRESS, STATUS_SUCCESS, STATUS_ERROR = 0, 1, -1
PROTOCOL = "zookeeper-quorum"  # QuorumAuth.QUORUM_SERVER_PROTOCOL_NAME
SERVER_NAME = "zk-quorum-sasl-md5"  # QuorumAuth.QUORUM_SERVER_SASL_DIGEST, also the realm
SERVER_ROUNDS_MAX = 5  # SaslQuorumAuthServer.MAX_RETRIES
LEARNER_ROUNDS_MAX = 10
TOKEN_BYTES_MAX = 64 * 1024
PEEK_TIMEOUT_S = 10.0
EXCHANGE_TIMEOUT_S = 10.0
_HEADER = struct.Struct(">qi")
_LENGTH = struct.Struct(">i")


class QuorumAuthConfigError(ValueError):
    """Quorum SASL is on but cannot be set up as configured: start-up stops."""


class QuorumAuthFailed(Exception):
    """The exchange failed (or was required and skipped): close the connection."""


@dataclass(frozen=True, slots=True)
class QuorumSasl:
    learner_required: bool
    server_required: bool
    users: dict[str, str]  # the server section's DIGEST-MD5 users
    username: str  # the learner section's login
    password: str

    def learner(self) -> DigestMD5Client:
        return DigestMD5Client(self.username, self.password, protocol=PROTOCOL, server_name=SERVER_NAME,
                               cnonce_source=lambda: os.urandom(30))

    def server(self) -> DigestMD5Server:
        return DigestMD5Server(self.users, realm=SERVER_NAME, server_name=SERVER_NAME, protocol=PROTOCOL,
                               nonce_source=lambda: os.urandom(30))


def _kerberos(options: dict[str, str]) -> bool:
    return any(key in options for key in ("keyTab", "principal", "useKeyTab", "useTicketCache"))


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
        if _kerberos(sections[section]):
            raise QuorumAuthConfigError(
                f"JAAS section '{section}' logs in with Kerberos: quorum SASL GSSAPI is not implemented"
                " by pyzk; refusing to start rather than run without it (use DigestLoginModule)")
    learner = sections[learner_section]
    if "username" not in learner or "password" not in learner:
        raise QuorumAuthConfigError(f"JAAS section '{learner_section}' needs username and password")
    users = server_users(sections, server_section)
    logger.info("Quorum SASL DIGEST-MD5: learner %s, learnerRequireSasl=%s, serverRequireSasl=%s, %d users",
                learner["username"], config.quorum_learner_require_sasl, config.quorum_server_require_sasl,
                len(users))
    return QuorumSasl(config.quorum_learner_require_sasl, config.quorum_server_require_sasl, users,
                      learner["username"], learner["password"])


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
                               peer: str) -> None:
    """SaslQuorumAuthLearner.authenticate on a fresh connection; raises QuorumAuthFailed."""
    if not sasl.learner_required:
        return
    client = sasl.learner()
    try:
        async with asyncio.timeout(EXCHANGE_TIMEOUT_S):
            await _send(writer, STATUS_IN_PROGRESS, b"")
            for _ in range(LEARNER_ROUNDS_MAX):
                status, token = await _read_packet(reader)
                if status == STATUS_SUCCESS:
                    if client.evaluate(token) is not None:
                        raise QuorumAuthFailed("Protocol error: attempting to send response after completion")
                    break
                if status != STATUS_IN_PROGRESS:
                    raise QuorumAuthFailed(f"Authentication failed against server addr: {peer}")
                response = client.evaluate(token)
                await _send(writer, STATUS_IN_PROGRESS, response)
    except (SaslError, asyncio.IncompleteReadError, OSError, TimeoutError) as exc:
        raise QuorumAuthFailed(f"Authentication failed against server addr: {peer}: {exc}") from None
    if not client.complete:
        raise QuorumAuthFailed(f"Authentication failed against server addr: {peer}: no SUCCESS")
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
    server = sasl.server()
    challenge = b""
    try:
        async with asyncio.timeout(EXCHANGE_TIMEOUT_S):
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
