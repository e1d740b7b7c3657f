"""Auth providers, the registry, and the ACL rules (fixup, check, getACL masking).

The is_valid / matches tables were produced by ZooKeeper 3.8.0's own provider classes
(IPAuthenticationProvider, DigestAuthenticationProvider, SASLAuthenticationProvider) on
the same inputs."""

import pytest

from jute.codes import Err, Perms
from jute.data import ACL, CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, Id
from pyzk.acl import (
    AuthRegistry,
    DigestAuthenticationProvider,
    InvalidACL,
    IPAuthenticationProvider,
    SASLAuthenticationProvider,
    UnsupportedDigestAlgorithm,
    check_acl,
    digest_id,
    fixup_acl,
    java_host_address,
    mask_digest_acl,
)

ALICE = Id("digest", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0=")
SUPER_DIGEST = "super:lK75jTNcA+U9vtVEw5vB51mj/w4="
IP_LOCAL = Id("ip", "127.0.0.1")
REGISTRY = AuthRegistry.from_properties({})


# --- digest ---------------------------------------------------------------------------


def test_digest_vectors() -> None:
    assert digest_id("super:secret") == SUPER_DIGEST
    assert digest_id("alice:pw") == ALICE.id


def test_digest_without_colon_and_other_algorithms() -> None:
    # Expected values from ZooKeeper 3.8.0's DigestAuthenticationProvider.generateDigest
    # (with -Dzookeeper.DigestAuthenticationProvider.digestAlg for the other algorithms).
    assert digest_id("bob") == "bob:SBgazSKz7a68ikR4aKfffOYpkgo="
    assert digest_id("a:b:c") == "a:cLzgnoJ6mP5qz3w+mwvPE2vDgu0="
    assert digest_id("alice:pw", "SHA-256") == "alice:uoe2aAb9LQtvXhepi1lfNPruBxd4qoF/snHQYhTtJPk="
    assert digest_id("alice:pw", "SHA256") == "alice:uoe2aAb9LQtvXhepi1lfNPruBxd4qoF/snHQYhTtJPk="
    assert digest_id("alice:pw", "SHA3-256") == "alice:UP3pLMAsQOlB1EMeRhqfae4O4Yw1rDUsFISFg/aL+48="
    assert (
        digest_id("alice:pw", "sha-512/256") == "alice:DdCSHgpM6CRQrseF5VlG35H8PBle8VzTw3XAdJg9Ch8="
    )
    with pytest.raises(UnsupportedDigestAlgorithm):
        digest_id("alice:pw", "NOPE")


def test_digest_authentication_adds_super_before_digest() -> None:
    provider = DigestAuthenticationProvider(super_digest=SUPER_DIGEST)
    assert provider.authenticate(b"alice:pw", "127.0.0.1") == [ALICE]
    assert provider.authenticate(b"super:secret", "127.0.0.1") == [
        Id("super", ""),
        Id("digest", SUPER_DIGEST),
    ]


JAVA_DIGEST_IS_VALID = [
    ("a:b", True), ("a", False), ("a:b:c", False), (":b", True), ("a:", False), ("a:b:", True),
    (":", False), ("::", False), ("", False), ("a::", False), ("a:b::", True),
]  # fmt: skip


@pytest.mark.parametrize(("acl_id", "valid"), JAVA_DIGEST_IS_VALID)
def test_digest_is_valid_uses_java_split(acl_id: str, valid: bool) -> None:
    assert DigestAuthenticationProvider().is_valid(acl_id) is valid


# --- ip -------------------------------------------------------------------------------

JAVA_IP_IS_VALID = [
    ("1.2.3.4", True), ("1.2.3.4/0", True), ("1.2.3.4/32", True), ("1.2.3.4/33", False),
    ("1.2.3.4/-1", False), ("1.2.3.4/", False), ("1.2.3", False), ("1.2.3.4.5", False),
    ("1.2.3.256", False), ("1.2.3.-1", False), ("+1.2.3.4", True), ("1.2.3.4/+8", True),
    ("01.002.3.4", True), ("1..3.4", False), ("1.2.3.4.", False), (" 1.2.3.4", False),
    ("a.b.c.d", False), ("::1", False), ("1.2.3.4/8/2", False), ("\u0661.2.3.4", True),
    ("1.2.3.4/ 8", False), ("10.0.0.0/8", True), ("192.168.1.128/25", True), ("0.0.0.0/0", True),
]  # fmt: skip

JAVA_IP_MATCHES = [  # (acl id, client ip, matches)
    ("10.0.0.0/8", "10.1.2.3", True), ("10.0.0.0/8", "10.200.0.1", True),
    ("10.0.0.0/8", "192.168.1.200", False), ("10.0.0.0/9", "10.1.2.3", True),
    ("10.0.0.0/9", "10.200.0.1", False), ("192.168.1.128/25", "192.168.1.200", True),
    ("192.168.1.128/25", "192.168.1.100", False), ("0.0.0.0/0", "10.1.2.3", True),
    ("0.0.0.0/0", "0:0:0:0:0:0:0:1", False), ("0.0.0.0/0", "bad", False),
    ("127.0.0.1", "127.0.0.1", True), ("127.0.0.1", "127.0.0.3", False),
    ("127.0.0.1/32", "127.0.0.1", True), ("127.0.0.2/31", "127.0.0.3", True),
    ("127.0.0.2/31", "127.0.0.1", False), ("127.0.0.1/33", "127.0.0.1", False),
    ("bad", "127.0.0.1", False),
]  # fmt: skip


@pytest.mark.parametrize(("acl_id", "valid"), JAVA_IP_IS_VALID)
def test_ip_is_valid(acl_id: str, valid: bool) -> None:
    assert IPAuthenticationProvider().is_valid(acl_id) is valid


@pytest.mark.parametrize(("acl_id", "client_ip", "matches"), JAVA_IP_MATCHES)
def test_ip_matches(acl_id: str, client_ip: str, matches: bool) -> None:
    assert IPAuthenticationProvider().matches(client_ip, acl_id) is matches


def test_ip_authentication_uses_the_connection_address() -> None:
    assert IPAuthenticationProvider().authenticate(b"ignored", "10.0.0.7") == [Id("ip", "10.0.0.7")]
    assert IPAuthenticationProvider().authenticate(None, "10.0.0.7") == [Id("ip", "10.0.0.7")]
    assert not IPAuthenticationProvider().is_authenticated()


@pytest.mark.parametrize(
    ("address", "java_text"),
    [("127.0.0.1", "127.0.0.1"), ("::1", "0:0:0:0:0:0:0:1"), ("fe80::1%eth0", "fe80:0:0:0:0:0:0:1%eth0"),
     ("::ffff:10.0.0.1", "10.0.0.1"), ("2001:db8::ab:0", "2001:db8:0:0:0:0:ab:0")],
)  # fmt: skip
def test_java_host_address(address: str, java_text: str) -> None:
    assert java_host_address(address) == java_text


# --- sasl -----------------------------------------------------------------------------

JAVA_SASL_IS_VALID = [
    ("bob", True), ("bob@R", True), ("bob/h@R", True), ("a@b@c", False), ("a/b/c@R", False),
    ("@", True), ("/@", True), ("a/b/c", True), ("a@", True), ("bob/h", True),
]  # fmt: skip


@pytest.mark.parametrize(("acl_id", "valid"), JAVA_SASL_IS_VALID)
def test_sasl_is_valid_is_kerberos_name_syntax(acl_id: str, valid: bool) -> None:
    assert SASLAuthenticationProvider().is_valid(acl_id) is valid


def test_sasl_matches() -> None:
    provider = SASLAuthenticationProvider()
    assert provider.matches("bob", "bob")
    assert not provider.matches("bob", "alice")
    assert provider.matches("super", "alice")  # the sasl id "super" matches every sasl ACL
    assert SASLAuthenticationProvider(let_any_sasl_user_do_x="anyone").matches("bob", "anyone")
    assert provider.authenticate(b"bob", "127.0.0.1") is None  # no auth packets for sasl


# --- registry -------------------------------------------------------------------------


def test_default_registry_has_ip_and_digest_only() -> None:
    assert REGISTRY.schemes() == ["digest", "ip"]
    assert REGISTRY.authenticate("world", b"anyone", "127.0.0.1") is None
    assert REGISTRY.authenticate("digest", b"alice:pw", "127.0.0.1") == [ALICE]
    assert REGISTRY.authenticate("digest", None, "127.0.0.1") is None  # a null auth buffer


def test_registry_from_properties() -> None:
    registry = AuthRegistry.from_properties(
        {
            "zookeeper.DigestAuthenticationProvider.enabled": "False",
            "zookeeper.authProvider.1": "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            "zookeeper.authProvider.2": "com.example.CustomProvider",
            "zookeeper.superUser": "admin",
            "zookeeper.superUser.2": "root",
            "zookeeper.superUserX": "not-a-super-user",
        }
    )
    assert registry.schemes() == ["ip", "sasl"]
    assert registry.unsupported_provider_classes == (
        ("zookeeper.authProvider.2", "com.example.CustomProvider"),
    )
    assert registry.authenticate("digest", b"alice:pw", "127.0.0.1") is None
    assert registry.sasl_ids("bob") == [Id("sasl", "bob")]
    assert registry.sasl_ids("root") == [Id("sasl", "root"), Id("super", "")]
    assert registry.sasl_ids("not-a-super-user") == [Id("sasl", "not-a-super-user")]


def test_registry_digest_settings() -> None:
    registry = AuthRegistry.from_properties(
        {
            "zookeeper.DigestAuthenticationProvider.superDigest": SUPER_DIGEST,
            "zookeeper.DigestAuthenticationProvider.digestAlg": "SHA-256",
        }
    )
    assert registry.authenticate("digest", b"alice:pw", "1.2.3.4") == [
        Id("digest", digest_id("alice:pw", "SHA-256"))
    ]
    with pytest.raises(UnsupportedDigestAlgorithm):
        AuthRegistry.from_properties({"zookeeper.DigestAuthenticationProvider.digestAlg": "ROT13"})


def test_who_am_i_user_names() -> None:
    assert REGISTRY.user_name(IP_LOCAL) == "127.0.0.1"
    assert REGISTRY.user_name(ALICE) == "alice"
    assert REGISTRY.user_name(Id("super", "")) == ""


# --- fixup (PROTOCOL.md §2.9 and PrepRequestProcessor.fixupACL) ------------------------


def test_fixup_keeps_world_anyone_and_removes_duplicates_in_order() -> None:
    read_ip = ACL(Perms.READ, Id("ip", "10.0.0.0/8"))
    acls = [read_ip, *OPEN_ACL_UNSAFE, read_ip, *OPEN_ACL_UNSAFE]
    assert fixup_acl(acls, [IP_LOCAL], REGISTRY) == [read_ip, *OPEN_ACL_UNSAFE]


@pytest.mark.parametrize("acls", [None, [], [None]])
def test_fixup_rejects_empty_lists(acls: list[ACL | None] | None) -> None:
    with pytest.raises(InvalidACL) as failure:
        fixup_acl(acls, [IP_LOCAL], REGISTRY)
    assert failure.value.err == Err.INVALIDACL


@pytest.mark.parametrize(
    "bad_acl",
    [
        ACL(Perms.ALL, Id("world", "someone")),
        ACL(Perms.ALL, Id("super", "")),
        ACL(Perms.ALL, Id("digest", "no-colon")),
        ACL(Perms.ALL, Id("ip", "300.0.0.1")),
        ACL(Perms.ALL, Id("sasl", "bob")),  # no sasl provider configured
        ACL(Perms.ALL, Id("unknown", "x")),
    ],
)
def test_fixup_rejects_invalid_ids(bad_acl: ACL) -> None:
    with pytest.raises(InvalidACL):
        fixup_acl([*OPEN_ACL_UNSAFE, bad_acl], [IP_LOCAL, ALICE], REGISTRY)


def test_fixup_expands_auth_to_authenticated_ids_only() -> None:
    auth_ids = [IP_LOCAL, Id("super", ""), ALICE, Id("digest", "bob:x")]
    assert fixup_acl(list(CREATOR_ALL_ACL), auth_ids, REGISTRY) == [
        ACL(Perms.ALL, ALICE),
        ACL(Perms.ALL, Id("digest", "bob:x")),
    ]


def test_fixup_auth_without_authenticated_id_is_invalid() -> None:
    with pytest.raises(InvalidACL):
        fixup_acl(list(CREATOR_ALL_ACL), [IP_LOCAL, Id("super", "")], REGISTRY)


def test_fixup_auth_uses_sasl_ids_when_sasl_is_registered() -> None:
    registry = AuthRegistry.from_properties(
        {"zookeeper.authProvider.1": "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"}
    )
    assert fixup_acl(
        [ACL(Perms.READ, Id("auth", ""))], [IP_LOCAL, Id("sasl", "bob")], registry
    ) == [ACL(Perms.READ, Id("sasl", "bob"))]


# --- check (ZooKeeperServer.checkACL) ---------------------------------------------------


def test_check_acl_steps() -> None:
    alice_rw = [ACL(Perms.READ | Perms.WRITE, ALICE)]
    assert check_acl([], Perms.ADMIN, [IP_LOCAL], REGISTRY)  # empty ACL allows
    assert check_acl(alice_rw, Perms.READ, [IP_LOCAL, ALICE], REGISTRY)
    assert not check_acl(alice_rw, Perms.ADMIN, [IP_LOCAL, ALICE], REGISTRY)
    assert not check_acl(alice_rw, Perms.READ, [IP_LOCAL], REGISTRY)
    assert check_acl(alice_rw, Perms.ADMIN, [IP_LOCAL, Id("super", "")], REGISTRY)
    assert check_acl(alice_rw, Perms.ADMIN, [IP_LOCAL], REGISTRY, skip_acl=True)
    assert check_acl(list(OPEN_ACL_UNSAFE), Perms.DELETE, [], REGISTRY)


def test_check_acl_needs_any_requested_bit_and_matching_scheme() -> None:
    read_only = [ACL(Perms.READ, Id("world", "anyone"))]
    assert check_acl(read_only, Perms.READ | Perms.ADMIN, [], REGISTRY)  # getACL asks READ|ADMIN
    assert not check_acl(read_only, Perms.WRITE, [], REGISTRY)
    subnet = [ACL(Perms.ALL, Id("ip", "127.0.0.0/8"))]
    assert check_acl(subnet, Perms.WRITE, [IP_LOCAL], REGISTRY)
    assert not check_acl(subnet, Perms.WRITE, [Id("ip", "10.0.0.1")], REGISTRY)
    # An id of another scheme never matches, even with the same text.
    assert not check_acl(
        [ACL(Perms.ALL, Id("ip", "127.0.0.1"))], Perms.READ, [Id("digest", "127.0.0.1")], REGISTRY
    )


def test_check_acl_skips_schemes_without_provider() -> None:
    sasl_acl = [ACL(Perms.ALL, Id("sasl", "bob"))]
    assert not check_acl(sasl_acl, Perms.READ, [Id("sasl", "bob")], REGISTRY)
    registry = AuthRegistry.from_properties(
        {"zookeeper.authProvider.1": "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"}
    )
    assert check_acl(sasl_acl, Perms.READ, [Id("sasl", "bob")], registry)


# --- getACL masking --------------------------------------------------------------------


def test_mask_digest_acl() -> None:
    acl = [
        ACL(Perms.ALL, ALICE),
        ACL(Perms.READ, IP_LOCAL),
        *OPEN_ACL_UNSAFE,
        ACL(1, Id("digest", "a:b:c")),
    ]
    assert mask_digest_acl(acl) == [
        ACL(Perms.ALL, Id("digest", "alice:x")),
        ACL(Perms.READ, IP_LOCAL),
        *OPEN_ACL_UNSAFE,
        ACL(1, Id("digest", "a:x")),
    ]
    # Java's '.' stops at a line break; replaceAll then masks the next line's secret too.
    assert mask_digest_acl([ACL(1, Id("digest", "a:s1\nb:s2"))]) == [
        ACL(1, Id("digest", "a:x\nb:x"))
    ]


def test_auth_entry_with_null_id_expands_like_an_empty_one() -> None:
    """kazoo encodes CREATOR_ALL_ACL's empty id as a null string; fixupACL never reads it."""
    from jute.data import ACL, Id
    from pyzk.acl import AuthRegistry, fixup_acl

    registry = AuthRegistry.from_properties({})
    digest = Id("digest", "username:AgMi42rePFV36NiG/O2yXxAGWOE=")
    fixed = fixup_acl([ACL(31, Id("auth", None))], [Id("ip", "127.0.0.1"), digest], registry)  # type: ignore[arg-type]
    assert fixed == [ACL(31, digest)]
