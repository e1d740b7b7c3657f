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
    ) -> None:
        self._users = dict(users)
        self.realm = realm
        self._digest_uri = f"{SERVER_PROTOCOL}/{server_name}"
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

        user_hash = _md5(b":".join(_rfc2831_bytes(part) for part in (username, realm, password)))
        a1 = user_hash + b":" + self._nonce + b":" + cnonce
        if authzid is not None:
            a1 += b":" + _rfc2831_bytes(authzid)
        session_key_hex = _md5_hex(a1)

        def response_value(a2: bytes) -> bytes:
            return _md5_hex(
                b":".join(
                    (
                        session_key_hex,
                        self._nonce or b"",
                        b"00000001",
                        cnonce,
                        qop.encode("ascii"),
                        _md5_hex(a2),
                    )
                )
            )

        uri_bytes = _rfc2831_bytes(digest_uri)
        expected = response_value(b"AUTHENTICATE:" + uri_bytes)
        if not hmac.compare_digest(expected, client_response):
            raise SaslError(violation + "Mismatched response.")
        # SaslServerCallbackHandler authorizes any authzid but sets the authorized id from
        # the authenticated name (a JAAS user name, which cannot hold Kerberos '/' or '@').
        self.authorized_id = username
        self.complete = True
        return b"rspauth=" + response_value(b":" + uri_bytes)


def _quote(value: bytes) -> bytes:
    return value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
