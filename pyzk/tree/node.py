"""DataNode: one znode as stored (StatPersisted fields + data + ACL + children names).

Rule 1: the stored cversion counts creates only; clients see cversion*2 - numChildren
        (DataNode.copyStat). ephemeral_owner is stored raw (session id, container or TTL
        marker) and masked to 0 for containers/TTL nodes only when shown to clients.
Rule 2: children are listed in Apache's order (the iteration order of DataNode's
        HashSet<String>, javaorder Rule 1), computed when listed and kept for the next
        listing (`children_listing`, javaorder.ChildrenListing). `children` changes only
        through add_child and remove_child (DataNode.addChild/removeChild), which keep what
        that needs; DataTree's create_node and delete_node inline them, and bulk_load, which
        only adds, sets each capacity once at the end.
"""

from __future__ import annotations

from jute.codes import EPHEMERAL_OWNER_CONTAINER
from jute.data import ACL, Stat, StatPersisted
from pyzk.tree.javaorder import (
    CHILDREN_CAPACITY_INITIAL,
    RELOCATED_NAMES_MIN,
    ChildrenListing,
    children_capacity,
    relocated,
)

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
        "children_capacity",
        "children_listing",
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
        # Child names in insertion order (a dict, not a set: deterministic iteration); the
        # values cache each name's bucket index in Apache's set, None until listed (Rule 2).
        self.children: dict[str, int | None] = {}
        self.children_capacity = CHILDREN_CAPACITY_INITIAL  # the table length of Apache's set
        self.children_listing: ChildrenListing | None = None
        # This node's last computed digest, -1 until computed (DataNode.digestCached):
        # saves recomputing it when the node changes again.
        self.digest_cache = -1

    def copy(self) -> DataNode:
        """A copy whose later changes do not show here (the children too)."""
        twin = DataNode(self.data, self.acl, self.czxid, self.mzxid, self.ctime, self.mtime, self.version,
                        self.cversion, self.aversion, self.ephemeral_owner, self.pzxid)
        twin.children = dict(self.children)
        twin.children_capacity = self.children_capacity
        if self.children_listing is not None:
            twin.children_listing = self.children_listing.copy()
        return twin

    def add_child(self, name: str) -> None:
        """Add a name that is not a child yet (the caller checked)."""
        children = self.children
        children[name] = None  # not listed yet
        if len(children) * 4 > self.children_capacity * 3:  # over the load factor
            self.child_added()

    def remove_child(self, name: str) -> None:
        bucket = self.children.pop(name, None)
        if bucket is not None and self.children_listing is not None:  # a listed name
            self.children_listing.removed[name] = bucket

    def child_added(self) -> None:
        """Grow the set's table if its size passed the load factor (HashMap.resize)."""
        capacity = children_capacity(len(self.children), self.children_capacity)
        if capacity != self.children_capacity:
            self.children_capacity = capacity
            self.children_listing = None  # every bucket index changes

    def list_children(self) -> list[str]:
        """The child names in the order Apache's getChildren lists them (Rule 2)."""
        children = self.children
        listing = self.children_listing
        if listing is not None:
            order = listing.order
            if len(order) == len(children) and not listing.removed:
                return order[:]  # nothing removed, so nothing added: ChildrenListing.current's first case
            return listing.current(children, self.children_capacity)
        if len(children) < 2:
            return list(children)
        listing = self.children_listing = ChildrenListing(children, self.children_capacity)
        if len(children) >= RELOCATED_NAMES_MIN:
            self.children, listing.order = relocated(children, listing.order)
        return listing.order[:]

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
