"""SASL DIGEST-MD5 server exchange, and JAAS file parsing."""

import pytest
from puresasl.client import SASLClient

from pyzk.jaas import JaasError, parse_jaas, server_users
from pyzk.sasl import DigestMD5Server, SaslError, parse_directives

FIXED_NONCE = bytes(range(30))
NONCE_TEXT = b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"  # base64 of FIXED_NONCE


def new_server(users: dict[str, str] | None = None) -> DigestMD5Server:
    return DigestMD5Server(users or {"bob": "bobsecret"}, nonce_source=lambda: FIXED_NONCE)


def kazoo_style_client(username: str, password: str) -> SASLClient:
    # What kazoo builds for DIGEST-MD5: service "zookeeper", host fixed to "zk-sasl-md5".
    return SASLClient(
        "zk-sasl-md5",
        service="zookeeper",
        mechanism="DIGEST-MD5",
        username=username,
        password=password,
    )


def test_challenge_has_java_layout() -> None:
    # Java's DigestMD5Server (as ZooKeeper creates it) sends exactly these directives.
    assert new_server().evaluate(b"") == (
        b'realm="zk-sasl-md5",nonce="' + NONCE_TEXT + b'",charset=utf-8,algorithm=md5-sess'
    )


def test_round_trip_with_pure_sasl_as_kazoo_drives_it() -> None:
    server = new_server({"jaasuser": "jaas_password", "super": "super_secret"})
    client = kazoo_style_client("jaasuser", "jaas_password")
    token = client.process(None) or b""  # kazoo sends b"" first
    response = client.process(server.evaluate(token))
    assert not server.complete
    rspauth = server.evaluate(response)
    assert rspauth.startswith(b"rspauth=")
    assert server.complete and server.authorized_id == "jaasuser"
    assert client.process(rspauth) is None  # the client checks rspauth and completes
    assert client.complete


def test_wrong_password_is_rejected() -> None:
    server = new_server()
    client = kazoo_style_client("bob", "wrong")
    client.process(None)
    with pytest.raises(SaslError, match="Mismatched response"):
        server.evaluate(client.process(server.evaluate(b"")))
    assert not server.complete and server.authorized_id is None


def test_unknown_user_is_rejected() -> None:
    server = new_server()
    client = kazoo_style_client("mallory", "bobsecret")
    client.process(None)
    with pytest.raises(SaslError, match="cannot acquire password for mallory"):
        server.evaluate(client.process(server.evaluate(b"")))


# digest-responses made by Java's own DIGEST-MD5 client (Sasl.createSaslClient with
# protocol "zookeeper", server "zk-sasl-md5") to the FIXED_NONCE challenge above; Java's
# client accepted each rspauth listed (isComplete() true).
JAVA_CLIENT_EXCHANGES = [
    (
        "bob", "bobsecret",
        b'charset=utf-8,username="bob",realm="zk-sasl-md5",nonce="' + NONCE_TEXT + b'",nc=00000001,'
        b'cnonce="bHN0Qeaj2a9ta+DQSc9QylH/ukc8CMk0YtTZKlgH",digest-uri="zookeeper/zk-sasl-md5",'
        b"maxbuf=65536,response=8094b7ab6e04caf5e8af7f1783c3abfd,qop=auth",
        b"rspauth=2664afec00ad8c03d042baa26b4fdd25",
    ),
    (  # with authzid "alice": ZooKeeper's callback handler authorizes the authenticated name
        "bob", "bobsecret",
        b'charset=utf-8,username="bob",realm="zk-sasl-md5",nonce="' + NONCE_TEXT + b'",nc=00000001,'
        b'cnonce="grtPupqUJ9xnxn9R6kWYDVuQ4WFCN/p0SYEap8fK",digest-uri="zookeeper/zk-sasl-md5",'
        b'maxbuf=65536,response=0846c2bff6c7dfc5b30fd094545cbbe7,qop=auth,authzid="alice"',
        b"rspauth=7a32ef977c80d8fa408d7c7fb3b4dab5",
    ),
    (  # a password outside ASCII is hashed in ISO 8859-1 (RFC 2831)
        "jaasuser", "jaas_p\xe4ss",
        b'charset=utf-8,username="jaasuser",realm="zk-sasl-md5",nonce="' + NONCE_TEXT + b'",nc=00000001,'
        b'cnonce="ELhvxTIWA0d7sbAOFx0jT6vonxIHxDEcfU4skv8R",digest-uri="zookeeper/zk-sasl-md5",'
        b"maxbuf=65536,response=49ff5d87e3c666335379b3a907851093,qop=auth",
        b"rspauth=9e3d56ebef120d11effd76109698fdaa",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("user", "password", "response", "rspauth"), JAVA_CLIENT_EXCHANGES)
def test_java_client_responses(user: str, password: str, response: bytes, rspauth: bytes) -> None:
    server = new_server({user: password})
    server.evaluate(b"")
    assert server.evaluate(response) == rspauth
    assert server.authorized_id == user


def _java_response(**changes: bytes | None) -> bytes:
    fields = parse_directives(JAVA_CLIENT_EXCHANGES[0][2])
    for key, value in changes.items():
        if value is None:
            del fields[key.replace("_", "-")]
        else:
            fields[key.replace("_", "-")] = value
    return b",".join(key.encode() + b'="' + value + b'"' for key, value in fields.items())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nonce": b"other"}, "Mismatched nonce"),
        ({"realm": b"elsewhere"}, "Nonexistent realm"),
        ({"digest_uri": b"zookeeper/other"}, "Mismatched URI"),
        ({"digest_uri": None}, "Missing digest-uri"),
        ({"cnonce": None}, "Missing cnonce"),
        ({"username": None}, "Missing username"),
        ({"response": None}, "Missing response"),
        ({"nc": b"00000002"}, "Nonce count does not match"),
        ({"qop": b"auth-conf"}, "unsupported protection"),
        ({"charset": b"latin1"}, "Incompatible charset"),
    ],
)
def test_bad_responses(changes: dict[str, bytes | None], message: str) -> None:
    server = new_server()
    server.evaluate(b"")
    with pytest.raises(SaslError, match=message):
        server.evaluate(_java_response(**changes))


def test_requoted_java_response_still_verifies() -> None:
    server = new_server()
    server.evaluate(b"")
    assert server.evaluate(_java_response()) == JAVA_CLIENT_EXCHANGES[0][3]


def test_initial_response_is_ignored_like_jdk17() -> None:
    """JDK 17's DigestMD5Server answers a non-empty first token with its challenge."""
    server = new_server()
    assert server.evaluate(b"username=bob").startswith(b'realm="')
    with pytest.raises(SaslError, match="length"):
        new_server().evaluate(b"x" * 4097)


def test_protocol_order_errors() -> None:
    with pytest.raises(SaslError, match="before the challenge"):
        new_server().step(b"username=bob")
    server = new_server()
    server.evaluate(b"")
    with pytest.raises(SaslError, match="length"):
        server.evaluate(b"x" * 4097)
    server.evaluate(JAVA_CLIENT_EXCHANGES[0][2])
    with pytest.raises(SaslError, match="already complete"):
        server.evaluate(b"")


def test_parse_directives() -> None:
    assert parse_directives(b' a=1 , b="x\\"y,z",C=tok') == {"a": b"1", "b": b'x"y,z', "c": b"tok"}
    with pytest.raises(SaslError, match="more than one"):
        parse_directives(b"a=1,a=2")
    with pytest.raises(SaslError, match="Unterminated"):
        parse_directives(b'a="open')


# --- JAAS --------------------------------------------------------------------------------

KAZOO_JAAS = """
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};"""


def test_parse_kazoo_jaas_file() -> None:
    sections = parse_jaas(KAZOO_JAAS)
    assert sections == {"Server": {"user_super": "super_secret", "user_jaasuser": "jaas_password"}}
    assert server_users(sections) == {"super": "super_secret", "jaasuser": "jaas_password"}


def test_parse_jaas_comments_several_modules_and_sections() -> None:
    text = """
    // the server side
    Server {
        /* digest users */
        org.apache.zookeeper.server.auth.DigestLoginModule required user_bob="b\\"ob" debug=true;
        com.example.Other optional user_eve=evepw;
    };
    Client { org.apache.zookeeper.server.auth.DigestLoginModule required username="bob" password="x"; };
    """
    sections = parse_jaas(text)
    assert server_users(sections) == {"bob": 'b"ob', "eve": "evepw"}
    assert sections["Server"]["debug"] == "true"
    assert sections["Client"] == {"username": "bob", "password": "x"}


@pytest.mark.parametrize(
    "text",
    [
        'Server { m.Module required user_a="x"; }',  # missing final ';'
        'Server { m.Module sometimes user_a="x"; };',  # bad flag
        "Server { m.Module required user_a; };",  # option without value
        'Server { m.Module required user_a="x; };',  # unterminated quote
    ],
)
def test_malformed_jaas_is_rejected(text: str) -> None:
    with pytest.raises(JaasError):
        parse_jaas(text)


def test_super_password_property_replaces_the_super_users_password() -> None:
    sections = parse_jaas(KAZOO_JAAS)
    assert server_users(sections, super_password="p")["super"] == "p"
    no_super = parse_jaas("Server { m.M required user_bob=x; };")
    assert server_users(no_super, super_password="p") == {"bob": "x"}


@pytest.mark.parametrize("key", ["user_a@b", "user_svc/host", "2user"])
def test_jaas_words_follow_java_tokenizer(key: str) -> None:
    # Java's ConfigFile rejects these unquoted keys ("expected [=]").
    with pytest.raises(JaasError):
        parse_jaas(f'Server {{ m.M required {key}="pw"; }};')


def test_missing_server_section() -> None:
    with pytest.raises(JaasError, match="Could not find a 'Server' entry"):
        server_users(parse_jaas("Client { m.M required; };"))
