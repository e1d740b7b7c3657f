"""AuthInfo: a connection's ids iterate in ZooKeeper 3.8's ConcurrentHashMap order.

Expected orders were printed by Java 17 iterating a `newSetFromMap(ConcurrentHashMap)` of
org.apache.zookeeper.data.Id filled in the same insertion order.
"""

from __future__ import annotations

from jute.data import Id
from pyzk.pipeline.authinfo import AuthInfo, id_hash
from pyzk.tree.javaorder import java_string_hash

IP_LOCAL = Id("ip", "127.0.0.1")


def _filled(ids: list[Id]) -> AuthInfo:
    info = AuthInfo(ids[0])
    for auth_id in ids[1:]:
        info.add(auth_id)
    return info


def test_java_string_hash() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("digest") == -1331913276
    assert java_string_hash("é\U0001D11E") == 1996307  # a surrogate pair counts as two units


def test_id_hash_is_jutes_record_hash() -> None:
    assert id_hash(IP_LOCAL) == 1506146057


def test_bob_digest_is_listed_before_ip_as_zookeeper_does() -> None:
    bob = Id("digest", "bob:BuGSPjXx3+iJ6EkfXHBuJ3TpOjw=")
    assert _filled([IP_LOCAL, bob]).ids == (bob, IP_LOCAL)


def test_alice_digest_is_listed_after_ip() -> None:
    alice = Id("digest", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0=")
    assert _filled([IP_LOCAL, alice]).ids == (IP_LOCAL, alice)


def test_duplicates_are_kept_once() -> None:
    info = _filled([IP_LOCAL, IP_LOCAL, Id("ip", "127.0.0.1")])
    assert info.ids == (IP_LOCAL,)
    assert len(info) == 1


def test_order_across_two_resizes_matches_java() -> None:
    ids = [IP_LOCAL] + [Id("digest", f"u{i}:{i * 7919 % 1000}") for i in range(29)]
    java_order = (
        "digest=u27:813 digest=u28:732 ip=127.0.0.1 digest=u8:352 digest=u26:894 "
        "digest=u3:757 digest=u17:623 digest=u20:380 digest=u16:704 digest=u11:109 "
        "digest=u7:433 digest=u23:137 digest=u1:919 digest=u0:0 digest=u2:838 digest=u22:218 "
        "digest=u6:514 digest=u14:866 digest=u24:56 digest=u5:595 digest=u10:190 "
        "digest=u25:975 digest=u15:785 digest=u12:28 digest=u13:947 digest=u4:676 "
        "digest=u21:299 digest=u19:461 digest=u18:542 digest=u9:271"
    )
    got = " ".join(f"{i.scheme}={i.id}" for i in _filled(ids))
    assert got == java_order
