"""module org.apache.zookeeper.server.quorum (zookeeper.jute): Zab packets on the quorum port."""

from __future__ import annotations

from typing import Annotated

from jute.data import Id
from jute.primitives import Buffer, Int, Long, Vector
from jute.schema import record


@record
class LearnerInfo:
    serverid: Annotated[int, Long]
    protocolVersion: Annotated[int, Int]
    configVersion: Annotated[int, Long]


@record
class QuorumPacket:
    type: Annotated[int, Int]
    zxid: Annotated[int, Long]
    data: Annotated[bytes | None, Buffer]
    authinfo: Annotated[list[Id] | None, Vector(Id)]


@record
class QuorumAuthPacket:
    magic: Annotated[int, Long]
    status: Annotated[int, Int]
    token: Annotated[bytes | None, Buffer]
