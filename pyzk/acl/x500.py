"""X.500 distinguished names as Java's X500Principal reads and prints them (the `x509` scheme).

Rule 1: `rfc2253_name` is X500Principal.getName() (RFC 2253 form) of a DER-encoded Name: the
        RDNs in reverse order of the encoding, joined by ","; the AVAs of a multi-valued RDN in
        their encoded order, joined by "+"; the keywords CN, C, L, ST, O, OU, STREET, DC and
        UID, any other type as its dotted OID with the value as "#" and the lower-case hex of
        its DER encoding (also a value whose type is not a string type Java decodes); in a
        string value each of , = + < > # ; " \\ is escaped with a backslash, NUL becomes \\00,
        leading and trailing spaces and CRs are escaped, anything else (non-ASCII included)
        is written as it is.
Rule 2: `is_valid_x500_name` is "new X500Principal(text) does not throw" (the x509 provider's
        isValid, which decides INVALIDACL): Java's lenient DEFAULT parser, RDNs split on
        unescaped "," or ";" outside quotes, AVAs on unescaped "+", any keyword Java knows
        or a dotted OID (optionally "OID."), values plain, quoted, or "#" + hex DER.
Rule 3: pure and dependency-free: the certificate is read with a minimal DER reader (only
        the subject Name of an already verified certificate is needed), so the server needs
        no cryptography package for the x509 provider.
"""

from __future__ import annotations

import codecs


class DerError(ValueError):
    """Bytes that are not the DER this module expects."""


# ---- DER reading -------------------------------------------------------------------------

def _read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag byte, content start, content end) of the TLV at `pos`."""
    if pos + 2 > len(data):
        raise DerError("truncated DER")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte DER tags are not supported")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DerError("bad DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise DerError("DER content runs past its container")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, content start, content end, TLV start) of each element in data[start:end]."""
    out = []
    pos = start
    while pos < end:
        tag, body_start, body_end = _read_tlv(data, pos)
        if body_end > end:
            raise DerError("DER element runs past its container")
        out.append((tag, body_start, body_end, pos))
        pos = body_end
    return out


_SEQUENCE, _SET, _OID = 0x30, 0x31, 0x06


def certificate_subject(certificate_der: bytes) -> bytes:
    """The DER of a certificate's subject Name (tbsCertificate's sixth field, after an
    optional [0] version)."""
    tag, start, end = _read_tlv(certificate_der, 0)
    if tag != _SEQUENCE:
        raise DerError("a certificate is a SEQUENCE")
    tbs = _children(certificate_der, start, end)
    if not tbs or tbs[0][0] != _SEQUENCE:
        raise DerError("no tbsCertificate")
    fields = _children(certificate_der, tbs[0][1], tbs[0][2])
    if fields and fields[0][0] == 0xA0:  # [0] EXPLICIT version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject
    if len(fields) < 5 or fields[4][0] != _SEQUENCE:
        raise DerError("no subject in tbsCertificate")
    _, _, body_end, tlv_start = fields[4]
    return certificate_der[tlv_start:body_end]


def _oid_text(body: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or body[-1] & 0x80:
        raise DerError("bad OID")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


# OID -> the keyword X500Principal.getName() prints (AVAKeyword's RFC 2253 compliant ones).
RFC2253_KEYWORDS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}

# The string tags AVA.isDerString accepts (non-canonical). Whatever the tag, getName() reads
# the value's bytes as UTF-8 (new String(bytes, UTF_8)): a BMPString's zero bytes become NULs.
_STRING_TAGS = frozenset({
    0x0C,  # UTF8String
    0x13,  # PrintableString
    0x14,  # T61String
    0x16,  # IA5String
    0x1B,  # GeneralString
    0x1E,  # BMPString
})


def _java_utf8_replace(error: UnicodeError) -> tuple[str, int]:
    """Java's UTF-8 decoder replaces as Python's does (one U+FFFD per maximal ill-formed
    subpart), except an encoded surrogate (ED A0..BF), which it replaces as one sequence."""
    assert isinstance(error, UnicodeDecodeError)
    data, start = error.object, error.start
    if data[start] == 0xED and start + 1 < len(data) and 0xA0 <= data[start + 1] <= 0xBF:
        has_third = start + 2 < len(data) and data[start + 2] & 0xC0 == 0x80
        return "\ufffd", start + (3 if has_third else 2)
    return "\ufffd", error.end


_JAVA_UTF8_REPLACE = "pyzk-java-utf8-replace"
codecs.register_error(_JAVA_UTF8_REPLACE, _java_utf8_replace)
_ESCAPED = frozenset(',=+<>#;"\\')


def _escape_value(text: str) -> str:
    chars: list[str] = []
    for char in text:
        if char in _ESCAPED:
            chars.append("\\" + char)
        elif char == "\0":
            chars.append("\\00")
        else:
            chars.append(char)
    # After the escaping above: leading and trailing ' ' and '\r' get a backslash each.
    flat = "".join(chars)
    lead = 0
    while lead < len(flat) and flat[lead] in " \r":
        lead += 1
    trail = len(flat) - 1
    while trail >= 0 and flat[trail] in " \r":
        trail -= 1
    return "".join("\\" + char if index < lead or index > trail else char
                   for index, char in enumerate(flat))


def _ava_text(data: bytes, start: int, end: int) -> str:
    parts = _children(data, start, end)
    if len(parts) != 2 or parts[0][0] != _OID:
        raise DerError("an AttributeTypeAndValue is (OID, value)")
    oid = _oid_text(data[parts[0][1]:parts[0][2]])
    value_tag, value_start, value_end, value_tlv = parts[1]
    keyword = RFC2253_KEYWORDS.get(oid)
    if keyword is None or value_tag not in _STRING_TAGS:
        return (keyword or oid) + "=#" + data[value_tlv:value_end].hex()
    value = data[value_start:value_end].decode("utf-8", _JAVA_UTF8_REPLACE)
    return keyword + "=" + _escape_value(value)


def rfc2253_name(name_der: bytes) -> str:
    """X500Principal(name_der).getName(): the RFC 2253 text of a DER Name."""
    tag, start, end = _read_tlv(name_der, 0)
    if tag != _SEQUENCE:
        raise DerError("a Name is a SEQUENCE")
    rdns = []
    for rdn_tag, rdn_start, rdn_end, _ in _children(name_der, start, end):
        if rdn_tag != _SET:
            raise DerError("an RDN is a SET")
        avas = [_ava_text(name_der, ava_start, ava_end)
                for ava_tag, ava_start, ava_end, _ in _children(name_der, rdn_start, rdn_end)]
        rdns.append("+".join(avas))
    return ",".join(reversed(rdns))


def certificate_subject_name(certificate_der: bytes) -> str:
    """X509Certificate.getSubjectX500Principal().getName() of a DER certificate."""
    return rfc2253_name(certificate_subject(certificate_der))


# ---- X500Principal(String): is the text a name Java accepts? ------------------------------

# Every AVAKeyword Java knows; in the DEFAULT format all of them are accepted.
_KNOWN_KEYWORDS = frozenset({
    "CN", "C", "L", "S", "ST", "O", "OU", "T", "IP", "STREET", "DC", "DNQUALIFIER", "DNQ",
    "SURNAME", "GIVENNAME", "INITIALS", "GENERATION", "EMAIL", "EMAILADDRESS", "UID",
    "SERIALNUMBER",
})
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_SPECIAL_DEFAULT = frozenset(',=\n+<>#;\\" ')  # may follow a backslash in a plain value
_SPECIAL_1779 = frozenset(',=\n+<>#;\\"')  # ... in a quoted value
_UNESCAPED_FORBIDDEN = frozenset(',+<>;"')  # may not appear bare in a plain value
_INT_MAX = (1 << 31) - 1


class _Invalid(Exception):
    pass


# String.trim() strips every char <= U+0020.
_JAVA_TRIMMED = "".join(chr(code) for code in range(0x21))


def _oid_component(text: str) -> int:
    """Integer.parseInt / new BigInteger: an optional sign, then decimal digits."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not all("0" <= char <= "9" for char in digits):
        raise _Invalid
    value = int(text)
    if len(text) <= 9 and not -_INT_MAX - 1 <= value <= _INT_MAX:
        raise _Invalid
    return value


def _check_keyword(raw: str) -> None:
    """AVAKeyword.getOID in the DEFAULT format."""
    keyword = raw.upper().strip(_JAVA_TRIMMED)
    if keyword in _KNOWN_KEYWORDS:
        return
    if keyword.startswith("OID."):
        keyword = keyword[4:]
    if not keyword or not "0" <= keyword[0] <= "9":
        raise _Invalid
    components = [_oid_component(part) for part in keyword.split(".")]
    if len(components) < 2 or not 0 <= components[0] <= 2:
        raise _Invalid
    if components[0] < 2 and not 0 <= components[1] <= 39:
        raise _Invalid
    if any(value < 0 for value in components[1:]):
        raise _Invalid


def _check_der(data: bytes) -> None:
    """new DerValue(bytes): one TLV (BER lengths allowed), nothing after it."""
    if len(data) < 2 or data[0] & 0x1F == 0x1F:  # multi-byte tags are refused too
        raise _Invalid
    first = data[1]
    if first == 0x80:
        # BER indefinite length: a constructed value closed by an end-of-contents octets pair.
        if not data[0] & 0x20 or len(data) < 4 or data[-2:] != b"\0\0":
            raise _Invalid
        return
    pos = 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count > 4 or len(data) < 2 + count:
            raise _Invalid
        length = int.from_bytes(data[2:2 + count], "big")
        if length >= 1 << 31:
            raise _Invalid
        pos += count
    if len(data) - pos != length:
        raise _Invalid


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def read(self) -> str | None:
        if self.pos >= len(self.text):
            return None
        char = self.text[self.pos]
        self.pos += 1
        return char

    def read_char(self) -> str:
        char = self.read()
        if char is None:
            raise _Invalid
        return char


def _hex_pair(first: str, reader: _Reader) -> bool:
    """An escaped hex pair (\\4a): True if `first` starts one (the second digit is read)."""
    if first not in _HEX_DIGITS:
        return False
    if reader.read_char() not in _HEX_DIGITS:
        raise _Invalid
    return True


def _is_terminator(char: str | None) -> bool:
    return char is None or char in "+,;"


def _check_hex_value(reader: _Reader) -> None:
    digits = []
    while True:
        char = reader.read()
        if _is_terminator(char):
            break
        assert char is not None
        if char not in _HEX_DIGITS:
            raise _Invalid
        digits.append(char)
    if not digits or len(digits) % 2:
        raise _Invalid
    _check_der(bytes.fromhex("".join(digits)))


def _check_quoted_value(reader: _Reader) -> None:
    char: str | None = reader.read_char()
    while char != '"':
        if char is None:
            raise _Invalid
        if char == "\\":
            char = reader.read_char()
            if _hex_pair(char, reader):
                char = reader.read()
                continue
            if char not in _SPECIAL_1779:
                raise _Invalid
        char = reader.read_char()
    char = reader.read()
    while char in ("\n", " "):
        char = reader.read()
    if char is not None:
        raise _Invalid


def _check_plain_value(reader: _Reader, char: str | None) -> None:
    while True:
        if char == "\\":
            char = reader.read_char()
            if _hex_pair(char, reader):
                char = reader.read()
                if _is_terminator(char):
                    return
                continue
            if char not in _SPECIAL_DEFAULT:
                raise _Invalid
        elif char in _UNESCAPED_FORBIDDEN:
            raise _Invalid
        char = reader.read()
        if _is_terminator(char):
            return


def _check_ava(text: str) -> None:
    """new AVA(reader, DEFAULT): keyword '=' value."""
    reader = _Reader(text)
    keyword = []
    while (char := reader.read_char()) != "=":
        keyword.append(char)
    _check_keyword("".join(keyword))
    char = reader.read()
    while char in (" ", "\n"):
        char = reader.read()
    if char is None:
        return
    if char == "#":
        _check_hex_value(reader)
    elif char == '"':
        _check_quoted_value(reader)
    else:
        _check_plain_value(reader, char)


def _count_quotes(text: str, start: int, end: int) -> int:
    """X500Name.countQuotes: quotes not preceded by an odd run of backslashes."""
    count = 0
    escapes = 0
    for char in text[start:end]:
        if char == '"' and escapes % 2 == 0:
            count += 1
        escapes = escapes + 1 if char == "\\" else 0
    return count


def _escaped(end: int, search_from: int, text: str) -> bool:
    """X500Name.escaped: is the delimiter at `end` escaped by backslashes before it?"""
    if end == 1 and text[0] == "\\":
        return True
    if end > 1 and text[end - 1] == "\\" and text[end - 2] != "\\":
        return True
    if end > 1 and text[end - 1] == "\\" and text[end - 2] == "\\":
        # As Java counts them: every backslash from search_from up to the delimiter.
        return text.count("\\", search_from, end) % 2 != 0
    return False


def _check_rdn(text: str) -> None:
    """new RDN(text): AVAs split on '+' not right after a backslash and outside quotes."""
    quotes = 0
    search_from = 0
    ava_from = 0
    plus = text.find("+")
    while plus >= 0:
        quotes += _count_quotes(text, search_from, plus)
        if plus > 0 and text[plus - 1] != "\\" and quotes != 1:
            if plus == ava_from:
                raise _Invalid
            _check_ava(text[ava_from:plus])
            ava_from = plus + 1
            quotes = 0
        search_from = plus + 1
        plus = text.find("+", search_from)
    if ava_from == len(text):
        raise _Invalid
    _check_ava(text[ava_from:])


def _next_delimiter(text: str, start: int) -> int:
    comma, semicolon = text.find(",", start), text.find(";", start)
    if comma < 0 or semicolon < 0:
        return max(comma, semicolon)
    return min(comma, semicolon)


def is_valid_x500_name(text: str) -> bool:
    """True when `new X500Principal(text)` accepts the text (X500Name.parseDN, DEFAULT)."""
    if text == "":
        return True
    try:
        rdn_from = 0
        search_from = 0
        quotes = 0
        end = _next_delimiter(text, 0)
        while end >= 0:
            quotes += _count_quotes(text, search_from, end)
            if quotes != 1 and not _escaped(end, search_from, text):
                _check_rdn(text[rdn_from:end])
                rdn_from = end + 1
                quotes = 0
            search_from = end + 1
            end = _next_delimiter(text, search_from)
        _check_rdn(text[rdn_from:])
    except (_Invalid, ValueError):
        return False
    return True
