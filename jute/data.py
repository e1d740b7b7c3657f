"""module org.apache.zookeeper.data (zookeeper.jute): Id, ACL, Stat, StatPersisted, ClientInfo."""

from __future__ import annotations

from typing import Annotated

from jute.primitives import Int, Long, UString
from jute.schema import record


@record
class Id:
    scheme: Annotated[str, UString]
    id: Annotated[str, UString]


@record
class ACL:
    perms: Annotated[int, Int]
    id: Annotated[Id, Id]


@record
class Stat:
    czxid: Annotated[int, Long]
    mzxid: Annotated[int, Long]
    ctime: Annotated[int, Long]
    mtime: Annotated[int, Long]
    version: Annotated[int, Int]
    cversion: Annotated[int, Int]
    aversion: Annotated[int, Int]
    ephemeralOwner: Annotated[int, Long]
    dataLength: Annotated[int, Int]
    numChildren: Annotated[int, Int]
    pzxid: Annotated[int, Long]


@record
class StatPersisted:
    czxid: Annotated[int, Long]
    mzxid: Annotated[int, Long]
    ctime: Annotated[int, Long]
    mtime: Annotated[int, Long]
    version: Annotated[int, Int]
    cversion: Annotated[int, Int]
    aversion: Annotated[int, Int]
    ephemeralOwner: Annotated[int, Long]
    pzxid: Annotated[int, Long]


@record
class ClientInfo:
    authScheme: Annotated[str, UString]
    user: Annotated[str, UString]


# ZooDefs.Ids
ANYONE_ID_UNSAFE = Id("world", "anyone")
AUTH_IDS = Id("auth", "")
OPEN_ACL_UNSAFE = (ACL(31, ANYONE_ID_UNSAFE),)
CREATOR_ALL_ACL = (ACL(31, AUTH_IDS),)
READ_ACL_UNSAFE = (ACL(1, ANYONE_ID_UNSAFE),)
