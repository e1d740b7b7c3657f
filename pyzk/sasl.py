"""The server side of SASL DIGEST-MD5 (RFC 2831) as ZooKeeper runs it on the client port.

ZooKeeper creates Java's DigestMD5Server with protocol "zookeeper", server name and realm
"zk-sasl-md5", qop "auth" only, and its SaslServerCallbackHandler (passwords from the JAAS
`Server` section's user_<name> options). The exchange, one opcode-102 request each:
  1. client sends an empty token -> server sends the digest-challenge;
  2. client sends its digest-response -> server checks it and sends `rspauth=<hex>`.
Then the exchange is complete and the connection gains Id("sasl", authorized_id).

Rule 1: sans-I/O and pure: tokens in, tokens out; the nonce comes from the caller's
`nonce_source` (30 random bytes, base64 as Java does), never from a clock or PRNG here.
Rule 2: any violation raises SaslError; the caller answers AUTHFAILED and closes, as
ZooKeeperServer.processSasl does. Messages follow DigestMD5Server's wording, for logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping

SERVER_PROTOCOL = "zookeeper"
DEFAULT_REALM = "zk-sasl-md5"
RESPONSE_BYTES_MAX = 4096  # DigestMD5Server.MAX_RESPONSE_LENGTH
_QOP_AUTH = "auth"


class SaslError(Exception):
    """The client's SASL token is rejected; the reply is AUTHFAILED."""


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def _md5_hex(data: bytes) -> bytes:
    return hashlib.md5(data).hexdigest().encode("ascii")


def _rfc2831_bytes(text: str) -> bytes:
    """RFC 2831 / DigestMD5Base.stringToByte_8859_1 with UTF-8 on: ISO 8859-1 when every
    character fits, else UTF-8."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


_TOKEN_END = re.compile(rb"[,\s]")


def parse_directives(token: bytes) -> dict[str, bytes]:
    """`key=value, key="quoted \\" value"` -> {lower-case key: raw value bytes}.

    A repeated directive is an error (each may appear at most once in a response)."""
    directives: dict[str, bytes] = {}
    position = 0
    length = len(token)
    while True:
        while position < length and token[position : position + 1] in (
            b" ",
            b"\t",
            b"\r",
            b"\n",
            b",",
        ):
            position += 1
        if position >= length:
            return directives
        equals = token.find(b"=", position)
        if equals < 0:
            raise SaslError(
                "DIGEST-MD5: digest response format violation. Directive without value."
            )
        key = token[position:equals].strip().decode("latin-1").lower()
        position = equals + 1
        while position < length and token[position : position + 1] in (b" ", b"\t"):
            position += 1
        if token[position : position + 1] == b'"':
            value = bytearray()
            position += 1
            while True:
                if position >= length:
                    raise SaslError(
                        "DIGEST-MD5: digest response format violation. Unterminated quote."
                    )
                char = token[position : position + 1]
                if char == b"\\" and position + 1 < length:
                    value += token[position + 1 : position + 2]
                    position += 2
                elif char == b'"':
                    position += 1
                    break
                else:
                    value += char
                    position += 1
        else:
            match = _TOKEN_END.search(token, position)
            end = match.start() if match else length
            value = bytearray(token[position:end])
            position = end
        if key in directives:
            raise SaslError(f"DIGEST-MD5: Peer sent more than one {key} directive")
        directives[key] = bytes(value)


class DigestMD5Server:
    """One connection's DIGEST-MD5 server exchange; see the module docstring."""

    def __init__(
        self,
        users: Mapping[str, str],
        realm: str = DEFAULT_REALM,
        *,
        nonce_source: Callable[[], bytes],
        server_name: str = DEFAULT_REALM,
        protocol: str = SERVER_PROTOCOL,
    ) -> None:
        self._users = dict(users)
        self.realm = realm
        self._digest_uri = f"{protocol}/{server_name}"
        self._nonce_source = nonce_source
        self._nonce: bytes | None = None
        self.complete = False
        self.authorized_id: str | None = None

    def challenge(self) -> bytes:
        """The digest-challenge answering the client's initial empty token."""
        if self._nonce is not None:
            raise SaslError("DIGEST-MD5: challenge already sent")
        self._nonce = base64.b64encode(self._nonce_source())
        return (
            b'realm="'
            + _quote(self.realm.encode("utf-8"))
            + b'",nonce="'
            + self._nonce
            + b'",charset=utf-8,algorithm=md5-sess'
        )

    def evaluate(self, token: bytes) -> bytes:
        """The next server token for a client token (ZooKeeperSaslServer.evaluateResponse)."""
        if self._nonce is None:
            # JDK 17's DigestMD5Server ignores an initial response (RFC 2831 2.2: no
            # subsequent authentication) and sends its challenge; only the length is checked.
            if len(token) > RESPONSE_BYTES_MAX:
                raise SaslError(
                    f"DIGEST-MD5: Invalid digest response length. Got:  {len(token)} "
                    f"Expected < {RESPONSE_BYTES_MAX}"
                )
            return self.challenge()
        return self.step(token)

    def step(self, response: bytes) -> bytes:
        """Check the client's digest-response; return `rspauth=<hex>` and complete."""
        if self.complete:
            raise SaslError("DIGEST-MD5 authentication already complete")
        if self._nonce is None:
            raise SaslError("DIGEST-MD5: digest-response before the challenge")
        if len(response) > RESPONSE_BYTES_MAX:
            raise SaslError(
                f"DIGEST-MD5: Invalid digest response length. Got:  {len(response)} "
                f"Expected < {RESPONSE_BYTES_MAX}"
            )
        fields = parse_directives(response)
        violation = "DIGEST-MD5: digest response format violation. "
        encoding = "latin-1"
        if "charset" in fields:
            if fields["charset"].decode("latin-1").lower() != "utf-8":
                raise SaslError(
                    violation + "Incompatible charset value: " + fields["charset"].decode("latin-1")
                )
            encoding = "utf-8"

        def text(key: str) -> str | None:
            raw = fields.get(key)
            return None if raw is None else raw.decode(encoding, "replace")

        username = text("username")
        if username is None:
            raise SaslError(violation + "Missing username.")
        realm = text("realm")
        if realm is None:
            realm = ""
        elif realm != self.realm:
            raise SaslError(violation + "Nonexistent realm: " + realm)
        if fields.get("nonce") != self._nonce:
            raise SaslError(violation + "Mismatched nonce.")
        cnonce = fields.get("cnonce")
        if cnonce is None:
            raise SaslError(violation + "Missing cnonce.")
        nc_text = fields.get("nc", b"00000001").decode("latin-1")
        if not re.fullmatch(r"[0-9a-fA-F]{1,8}", nc_text) or int(nc_text, 16) != 1:
            raise SaslError(violation + "Nonce count does not match: " + nc_text)
        qop = text("qop") or _QOP_AUTH
        if qop != _QOP_AUTH:
            raise SaslError(violation + "Client selected unsupported protection: " + qop)
        if "maxbuf" in fields and not fields["maxbuf"].isdigit():
            raise SaslError(violation + "maxbuf is not a number.")
        digest_uri = text("digest-uri")
        if digest_uri is None:
            raise SaslError(violation + "Missing digest-uri.")
        if digest_uri.lower() != self._digest_uri.lower():
            raise SaslError(
                f"{violation}Mismatched URI: {digest_uri}; expecting: {self._digest_uri}"
            )
        client_response = fields.get("response")
        if client_response is None:
            raise SaslError(violation + "Missing response.")
        password = self._users.get(username)
        if password is None:
            raise SaslError(
                f"DIGEST-MD5: cannot acquire password for {username} in realm : {realm}"
            )
        authzid = text("authzid")

        session_key_hex = _session_key_hex(username, realm, password, self._nonce, cnonce, authzid)
        uri_bytes = _rfc2831_bytes(digest_uri)
        expected = _response_value(session_key_hex, self._nonce, cnonce, qop, b"AUTHENTICATE:" + uri_bytes)
        if not hmac.compare_digest(expected, client_response):
            raise SaslError(violation + "Mismatched response.")
        # SaslServerCallbackHandler authorizes any authzid but sets the authorized id from
        # the authenticated name (a JAAS user name, which cannot hold Kerberos '/' or '@').
        self.authorized_id = username
        self.complete = True
        return b"rspauth=" + _response_value(session_key_hex, self._nonce, cnonce, qop, b":" + uri_bytes)


def _session_key_hex(username: str, realm: str, password: str, nonce: bytes, cnonce: bytes,
                     authzid: str | None) -> bytes:
    """RFC 2831 2.1.2.1: hex(H(A1)), A1 = H(user:realm:password):nonce:cnonce[:authzid]."""
    user_hash = _md5(b":".join(_rfc2831_bytes(part) for part in (username, realm, password)))
    a1 = user_hash + b":" + nonce + b":" + cnonce
    if authzid is not None:
        a1 += b":" + _rfc2831_bytes(authzid)
    return _md5_hex(a1)


def _response_value(session_key_hex: bytes, nonce: bytes, cnonce: bytes, qop: str, a2: bytes) -> bytes:
    """RFC 2831's response-value (nc 1): the digest-response's `response` and `rspauth`."""
    return _md5_hex(b":".join((session_key_hex, nonce, b"00000001", cnonce, qop.encode("ascii"), _md5_hex(a2))))


class DigestMD5Client:
    """The client side, as Java's DigestMD5Client answers a quorum member's challenge
    (SaslQuorumAuthLearner): no initial response; the digest-response to the challenge;
    then the server's rspauth is checked and the exchange is complete."""

    def __init__(self, username: str, password: str, *, protocol: str, server_name: str,
                 cnonce_source: Callable[[], bytes]) -> None:
        self.username = username
        self._password = password
        self._digest_uri = f"{protocol}/{server_name}"
        self._cnonce_source = cnonce_source
        self._expected_rspauth: bytes | None = None
        self.complete = False

    def evaluate(self, token: bytes) -> bytes | None:
        """The response to a server token; None once the exchange is complete."""
        if self.complete:
            raise SaslError("DIGEST-MD5 authentication already complete")
        if self._expected_rspauth is not None:
            fields = parse_directives(token)
            if not hmac.compare_digest(fields.get("rspauth", b""), self._expected_rspauth):
                raise SaslError("DIGEST-MD5: Mismatched response from the server (rspauth)")
            self.complete = True
            return None
        fields = parse_directives(token)
        nonce = fields.get("nonce")
        if nonce is None:
            raise SaslError("DIGEST-MD5: digest-challenge format violation. Missing nonce.")
        qops = [q.strip() for q in fields.get("qop", b"auth").decode("latin-1").split(",")]
        if _QOP_AUTH not in qops:
            raise SaslError("DIGEST-MD5: No common protection layer between client and server")
        if fields.get("algorithm", b"md5-sess") != b"md5-sess":
            raise SaslError("DIGEST-MD5: digest-challenge format violation. Invalid algorithm.")
        utf8 = fields.get("charset", b"").lower() == b"utf-8"
        realm = fields.get("realm", b"").decode("utf-8" if utf8 else "latin-1")
        cnonce = base64.b64encode(self._cnonce_source())
        session_key_hex = _session_key_hex(self.username, realm, self._password, nonce, cnonce, None)
        uri_bytes = _rfc2831_bytes(self._digest_uri)
        response = _response_value(session_key_hex, nonce, cnonce, _QOP_AUTH, b"AUTHENTICATE:" + uri_bytes)
        self._expected_rspauth = _response_value(session_key_hex, nonce, cnonce, _QOP_AUTH, b":" + uri_bytes)
        parts = [b"charset=utf-8"] if utf8 else []
        parts += [
            b'username="' + _quote(_rfc2831_bytes(self.username)) + b'"',
            b'realm="' + _quote(_rfc2831_bytes(realm)) + b'"',
            b'nonce="' + nonce + b'"',
            b"nc=00000001",
            b'cnonce="' + cnonce + b'"',
            b'digest-uri="' + _quote(uri_bytes) + b'"',
            b"maxbuf=65536",
            b"response=" + response,
            b"qop=auth",
        ]
        return b",".join(parts)


def _quote(value: bytes) -> bytes:
    return value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
