"""JAAS login configuration files (the file named by java.security.auth.login.config).

Grammar, as Java's ConfigFile reads it:
    Section { module.Class flag key=value key="quoted value" ... ; ... };
with // and /* */ comments, flag one of required|requisite|sufficient|optional. Unquoted
words are Java StreamTokenizer words: a letter (or $ _ - * or a non-ASCII character)
followed by those, digits and dots; so a user name in `user_<name>` has no '@' or '/'.

Rule: pure text in, {section: {option: value}} out (the options of all login modules of a
section merged in file order); a malformed file raises JaasError naming the line, never a
partial result.
"""

from __future__ import annotations

import re

SERVER_SECTION = "Server"  # ZooKeeperSaslServer.DEFAULT_LOGIN_CONTEXT_NAME
USER_OPTION_PREFIX = "user_"  # SaslServerCallbackHandler.USER_PREFIX
_FLAGS = ("required", "requisite", "sufficient", "optional")


class JaasError(ValueError):
    """The JAAS file does not parse."""


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | "(?P<quoted>(?:[^"\\]|\\.)*)"
  | (?P<punct>[{};=])
  | (?P<word>[A-Za-z$_*\-\u00a0-\U0010ffff][A-Za-z0-9$_*.\-\u00a0-\U0010ffff]*)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text, flags=re.DOTALL)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, value, line) for each token: kind is "word", "quoted" or "punct"."""
    tokens: list[tuple[str, str, int]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        line = text.count("\n", 0, position) + 1
        if match is None:
            raise JaasError(f"line {line}: unexpected character {text[position]!r}")
        kind = match.lastgroup
        if kind == "quoted":
            tokens.append(("quoted", _unescape(match.group("quoted")), line))
        elif kind in ("punct", "word"):
            tokens.append((kind, match.group(kind), line))
        position = match.end()
    return tokens


def parse_jaas(text: str) -> dict[str, dict[str, str]]:
    """Parse a JAAS configuration into {section name: {option: value}}."""
    tokens = _tokens(text)
    sections: dict[str, dict[str, str]] = {}
    index = 0

    def expect(kinds: tuple[str, ...], value: str | None = None) -> str:
        nonlocal index
        if index >= len(tokens):
            raise JaasError(f"unexpected end of file, expected {value or ' or '.join(kinds)}")
        kind, token, line = tokens[index]
        if kind not in kinds or (value is not None and token != value):
            raise JaasError(f"line {line}: expected {value or ' or '.join(kinds)}, got {token!r}")
        index += 1
        return token

    def peek(value: str) -> bool:
        return index < len(tokens) and tokens[index][0] == "punct" and tokens[index][1] == value

    while index < len(tokens):
        name = expect(("word", "quoted"))
        options = sections.setdefault(name, {})
        expect(("punct",), "{")
        while not peek("}"):
            expect(("word",))  # login module class name
            flag = expect(("word",))
            if flag.lower() not in _FLAGS:
                raise JaasError(f"line {tokens[index - 1][2]}: invalid control flag {flag!r}")
            while not peek(";"):
                key = expect(("word",))
                expect(("punct",), "=")
                options[key] = expect(("word", "quoted"))
            expect(("punct",), ";")
        expect(("punct",), "}")
        expect(("punct",), ";")
    return sections


def server_users(
    sections: dict[str, dict[str, str]],
    section: str = SERVER_SECTION,
    super_password: str | None = None,
) -> dict[str, str]:
    """The DIGEST-MD5 user -> password map: the section's user_<name>="<password>" options.

    super_password is zookeeper.SASLAuthenticationProvider.superPassword: it replaces the
    password of user "super", and only when the section defines that user (the callback
    handler looks the name up first). Raises JaasError when the section is missing
    (ZooKeeper then cannot start SASL)."""
    if section not in sections:
        raise JaasError(f"Could not find a '{section}' entry in this configuration")
    users = {
        key[len(USER_OPTION_PREFIX) :]: value
        for key, value in sections[section].items()
        if key.startswith(USER_OPTION_PREFIX)
    }
    if super_password is not None and "super" in users:
        users["super"] = super_password
    return users
