"""Request records for operations kazoo 2.11 has no method for, sent through kazoo's own queue.

Rule: each class follows kazoo's request protocol (a `type` opcode, `serialize() -> bytes`,
`deserialize(buffer, offset) -> result`), so kazoo frames them, matches the reply by xid and
maps an error code to its exception class exactly as it does for its own requests. Request
objects must be truthy (kazoo drops the reply to a falsy one, e.g. an empty tuple), hence
dataclasses rather than namedtuples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from kazoo.protocol.serialization import (
    Create2,
    int_struct,
    long_struct,
    read_string,
    write_string,
)


class CreateContainer(Create2):
    """createContainer (19): a CreateRequest with flags 4, answered like create2."""

    type: ClassVar[int] = 19


class CreateTtl(Create2):
    """createTTL (21): a CreateTTLRequest, the create record plus `long ttl`."""

    type: ClassVar[int] = 21
    ttl_ms: int = 0

    def serialize(self) -> bytearray:
        body = super().serialize()
        body.extend(long_struct.pack(self.ttl_ms))
        return body


def create_ttl(path: str, data: bytes | None, acl: list[Any], flags: int, ttl_ms: int) -> CreateTtl:
    request = CreateTtl(path, data, acl, flags)
    request.ttl_ms = ttl_ms
    return request


def _read_strings(buffer: bytes, offset: int) -> list[str]:
    count = int_struct.unpack_from(buffer, offset)[0]
    offset += int_struct.size
    items = []
    for _ in range(max(count, 0)):
        item, offset = read_string(buffer, offset)
        items.append(item)
    return items


@dataclass(frozen=True)
class AddWatch:
    """addWatch (106): mode 0 = PERSISTENT, 1 = PERSISTENT_RECURSIVE; the reply body is err=0."""

    path: str
    mode: int
    type: ClassVar[int] = 106

    def serialize(self) -> bytes:
        return write_string(self.path) + int_struct.pack(self.mode)

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> int:
        return int(int_struct.unpack_from(buffer, offset)[0])


@dataclass(frozen=True)
class CheckWatches:
    """checkWatches (17): NOWATCHER unless this connection holds a matching watch."""

    path: str
    watcher_type: int
    type: ClassVar[int] = 17

    def serialize(self) -> bytes:
        return write_string(self.path) + int_struct.pack(self.watcher_type)

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> bool:
        return True


class RemoveWatches(CheckWatches):
    """removeWatches (18): same record as checkWatches; removes the server-side watches."""

    type: ClassVar[int] = 18


@dataclass(frozen=True)
class GetAllChildrenNumber:
    """getAllChildrenNumber (104): the count of all descendants."""

    path: str
    type: ClassVar[int] = 104

    def serialize(self) -> bytes:
        return write_string(self.path)

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> int:
        return int(int_struct.unpack_from(buffer, offset)[0])


@dataclass(frozen=True)
class GetEphemerals:
    """getEphemerals (103): the calling session's ephemeral paths under a prefix."""

    prefix_path: str
    type: ClassVar[int] = 103

    def serialize(self) -> bytes:
        return write_string(self.prefix_path)

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> list[str]:
        return _read_strings(buffer, offset)


class WhoAmI:
    """whoAmI (107): no request body; one (scheme, user) pair per auth id of the connection."""

    type: ClassVar[int] = 107

    def serialize(self) -> bytes:
        return b""

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> list[tuple[str, str]]:
        count = int_struct.unpack_from(buffer, offset)[0]
        offset += int_struct.size
        pairs = []
        for _ in range(max(count, 0)):
            scheme, offset = read_string(buffer, offset)
            user, offset = read_string(buffer, offset)
            pairs.append((scheme, user))
        return pairs
