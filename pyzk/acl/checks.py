"""ACL rules: fixup on create/setACL, the permission check, and getACL's digest masking.

Rule 1: fixup_acl is PrepRequestProcessor.fixupACL, check_acl is ZooKeeperServer.checkACL
and mask_digest_acl is FinalRequestProcessor's getACL masking, step for step, because the
error a client sees (INVALIDACL vs NOAUTH vs OK) depends on the order of the steps.
Rule 2: `world:anyone` is matched by value, never through a provider; `auth` exists only
in requests (it is expanded here and never stored); holding `super:` passes every check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from jute.codes import Err
from jute.data import ACL, Id
from pyzk.acl.registry import AuthRegistry


class InvalidACL(Exception):
    """The request's ACL list is rejected: the reply is INVALIDACL (-114)."""

    err = Err.INVALIDACL


def _is_world_anyone(acl_id: Id) -> bool:
    return acl_id.scheme == "world" and acl_id.id == "anyone"


def fixup_acl(
    acls: Sequence[ACL | None] | None, auth_ids: Sequence[Id], registry: AuthRegistry
) -> list[ACL]:
    """The ACL to store for a create or setACL request, or raise InvalidACL.

    Exact duplicates go (first one kept); an empty list is invalid; world:anyone stays;
    each `auth` entry becomes one entry per connection id whose provider identifies
    creators (none: invalid); any other id needs a provider that finds it valid."""
    # PrepRequestProcessor.removeDuplicates keeps the first of equal entries, in order; a
    # dict does the same in linear time (its list scan is quadratic: a 1 MiB request holds
    # ~43,000 entries). ACL and Id hash and compare by value, a None entry included.
    acls = acls or ()
    # (One entry, the usual case, has nothing to de-duplicate: no hashing of ACL and Id.)
    unique: list[ACL | None] = list(acls) if len(acls) < 2 else list(dict.fromkeys(acls))
    if not unique:
        raise InvalidACL("empty ACL")
    fixed: list[ACL] = []
    for acl in unique:
        if acl is None or acl.id is None or acl.id.scheme is None:
            raise InvalidACL(f"malformed ACL entry {acl!r}")
        # The id of an `auth` entry is never read (kazoo sends it as null); any other
        # scheme needs one.
        if acl.id.id is None and acl.id.scheme != "auth":
            raise InvalidACL(f"malformed ACL entry {acl!r}")
        if _is_world_anyone(acl.id):
            fixed.append(acl)
        elif acl.id.scheme == "auth":
            expanded = [
                ACL(acl.perms, auth_id)
                for auth_id in auth_ids
                if (provider := registry.provider(auth_id.scheme)) is not None
                and provider.is_authenticated()
            ]
            if not expanded:
                raise InvalidACL("auth ACL without an authenticated id")
            fixed.extend(expanded)
        else:
            provider = registry.provider(acl.id.scheme)
            if provider is None or not provider.is_valid(acl.id.id):
                raise InvalidACL(f"invalid ACL id {acl.id.scheme}:{acl.id.id}")
            fixed.append(acl)
    return fixed


def check_acl(
    node_acl: Sequence[ACL] | None,
    perm: int,
    auth_ids: Iterable[Id],
    registry: AuthRegistry,
    skip_acl: bool = False,
) -> bool:
    """True when a connection holding auth_ids has `perm` (any of its bits) on a node.

    skip_acl is zookeeper.skipACL=yes. An empty ACL allows all; `super:` allows all."""
    if skip_acl or not node_acl:
        return True
    # world:anyone first: it is the common case and needs no look at the connection's ids.
    for acl in node_acl:
        if acl.perms & perm and acl.id.scheme == "world" and acl.id.id == "anyone":
            return True
    auth_ids = list(auth_ids)
    for auth_id in auth_ids:
        if auth_id.scheme == "super":
            return True
    for acl in node_acl:
        if acl.perms & perm == 0:
            continue
        provider = registry.provider(acl.id.scheme)
        if provider is None:
            continue
        for auth_id in auth_ids:
            if auth_id.scheme == acl.id.scheme and provider.matches(auth_id.id, acl.id.id):
                return True
    return False


# Java's replaceAll(":.*", ":x"): '.' stops at Java's line terminators.
_DIGEST_SECRET = re.compile(":[^\n\r\u0085\u2028\u2029]*")


def mask_digest_acl(acl: Iterable[ACL]) -> list[ACL]:
    """getACL's reply to a caller without ADMIN: each digest id `user:hash` reads `user:x`."""
    return [
        ACL(entry.perms, Id(entry.id.scheme, _DIGEST_SECRET.sub(":x", entry.id.id)))
        if entry.id.scheme == "digest"
        else entry
        for entry in acl
    ]
