"""DataNode: one znode as stored (StatPersisted fields + data + ACL + children names).

Rule: the stored cversion counts creates only; clients see cversion*2 - numChildren
(DataNode.copyStat). ephemeral_owner is stored raw (session id, container or TTL marker) and
masked to 0 for containers/TTL nodes only when shown to clients.
"""

from __future__ import annotations

from jute.codes import EPHEMERAL_OWNER_CONTAINER
from jute.data import ACL, Stat, StatPersisted

TTL_TOP_BYTE = 0xFF


def is_container_owner(owner: int) -> bool:
    return owner == EPHEMERAL_OWNER_CONTAINER


def is_ttl_owner(owner: int, extended_types_enabled: bool) -> bool:
    # EphemeralType.get: the TTL form exists only with extended types enabled.
    return extended_types_enabled and owner < 0 and ((owner >> 56) & 0xFF) == TTL_TOP_BYTE and owner != EPHEMERAL_OWNER_CONTAINER


def ttl_owner(ttl_ms: int) -> int:
    """ephemeralOwner of a TTL node: top byte 0xFF, low 40 bits the TTL (signed long)."""
    return (ttl_ms & 0xFFFFFFFFFF) - (1 << 56)


def ttl_of_owner(owner: int) -> int:
    return owner & 0xFFFFFFFFFF


class DataNode:
    __slots__ = (
        "data",
        "acl",
        "czxid",
        "mzxid",
        "ctime",
        "mtime",
        "version",
        "cversion",
        "aversion",
        "ephemeral_owner",
        "pzxid",
        "children",
        "digest_cache",
    )

    def __init__(
        self,
        data: bytes | None,
        acl: tuple[ACL, ...],
        czxid: int = 0,
        mzxid: int = 0,
        ctime: int = 0,
        mtime: int = 0,
        version: int = 0,
        cversion: int = 0,
        aversion: int = 0,
        ephemeral_owner: int = 0,
        pzxid: int = 0,
    ) -> None:
        self.data = data
        self.acl = acl
        self.czxid = czxid
        self.mzxid = mzxid
        self.ctime = ctime
        self.mtime = mtime
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.ephemeral_owner = ephemeral_owner
        self.pzxid = pzxid
        # Child names in insertion order (a dict, not a set: deterministic iteration).
        self.children: dict[str, None] = {}
        # This node's last computed digest, -1 until computed (DataNode.digestCached):
        # saves recomputing it when the node changes again.
        self.digest_cache = -1

    def copy(self) -> DataNode:
        """A copy whose later changes do not show here (the children too)."""
        twin = DataNode(self.data, self.acl, self.czxid, self.mzxid, self.ctime, self.mtime, self.version,
                        self.cversion, self.aversion, self.ephemeral_owner, self.pzxid)
        twin.children = dict(self.children)
        return twin

    def stat(self, extended_types_enabled: bool) -> Stat:
        """The Stat a client sees (DataNode.copyStat)."""
        owner = self.ephemeral_owner
        if owner and (is_container_owner(owner) or is_ttl_owner(owner, extended_types_enabled)):
            owner = 0
        num_children = len(self.children)
        data = self.data
        return Stat(
            self.czxid,
            self.mzxid,
            self.ctime,
            self.mtime,
            self.version,
            self.cversion * 2 - num_children,
            self.aversion,
            owner,
            len(data) if data is not None else 0,
            num_children,
            self.pzxid,
        )

    def stat_persisted(self) -> StatPersisted:
        return StatPersisted(
            self.czxid,
            self.mzxid,
            self.ctime,
            self.mtime,
            self.version,
            self.cversion,
            self.aversion,
            self.ephemeral_owner,
            self.pzxid,
        )

    @classmethod
    def from_persisted(cls, data: bytes | None, acl: tuple[ACL, ...], st: StatPersisted) -> DataNode:
        return cls(
            data,
            acl,
            st.czxid,
            st.mzxid,
            st.ctime,
            st.mtime,
            st.version,
            st.cversion,
            st.aversion,
            st.ephemeralOwner,
            st.pzxid,
        )
