"""module org.apache.zookeeper.proto (zookeeper.jute): the client protocol records.

The multi request/response are hand-serialized in ZooKeeper (MultiOperationRecord,
MultiResponse); they are framed here as runs of MultiHeader + sub-record, see jute/multi.py.
"""

from __future__ import annotations

from typing import Annotated

from jute.data import ACL, ClientInfo, Stat
from jute.primitives import Bool, Buffer, Int, Long, Trailing, UString, Vector
from jute.schema import record


@record
class ConnectRequest:
    protocolVersion: Annotated[int, Int]
    lastZxidSeen: Annotated[int, Long]
    timeOut: Annotated[int, Int]
    sessionId: Annotated[int, Long]
    passwd: Annotated[bytes | None, Buffer]
    readOnly: Annotated[bool | None, Trailing(Bool)]  # absent from "old clients" (<= 3.3)


@record
class ConnectResponse:
    protocolVersion: Annotated[int, Int]
    timeOut: Annotated[int, Int]
    sessionId: Annotated[int, Long]
    passwd: Annotated[bytes | None, Buffer]
    readOnly: Annotated[bool | None, Trailing(Bool)]  # echoed only if the client sent it


@record
class SetWatches:
    relativeZxid: Annotated[int, Long]
    dataWatches: Annotated[list[str] | None, Vector(UString)]
    existWatches: Annotated[list[str] | None, Vector(UString)]
    childWatches: Annotated[list[str] | None, Vector(UString)]


@record
class SetWatches2:
    relativeZxid: Annotated[int, Long]
    dataWatches: Annotated[list[str] | None, Vector(UString)]
    existWatches: Annotated[list[str] | None, Vector(UString)]
    childWatches: Annotated[list[str] | None, Vector(UString)]
    persistentWatches: Annotated[list[str] | None, Vector(UString)]
    persistentRecursiveWatches: Annotated[list[str] | None, Vector(UString)]


@record
class RequestHeader:
    xid: Annotated[int, Int]
    type: Annotated[int, Int]


@record
class MultiHeader:
    type: Annotated[int, Int]
    done: Annotated[bool, Bool]
    err: Annotated[int, Int]


@record
class AuthPacket:
    type: Annotated[int, Int]
    scheme: Annotated[str, UString]
    auth: Annotated[bytes | None, Buffer]


@record
class ReplyHeader:
    xid: Annotated[int, Int]
    zxid: Annotated[int, Long]
    err: Annotated[int, Int]


@record
class GetDataRequest:
    path: Annotated[str, UString]
    watch: Annotated[bool, Bool]


@record
class SetDataRequest:
    path: Annotated[str, UString]
    data: Annotated[bytes | None, Buffer]
    version: Annotated[int, Int]


@record
class ReconfigRequest:
    joiningServers: Annotated[str | None, UString]
    leavingServers: Annotated[str | None, UString]
    newMembers: Annotated[str | None, UString]
    curConfigId: Annotated[int, Long]


@record
class SetDataResponse:
    stat: Annotated[Stat, Stat]


@record
class GetSASLRequest:
    token: Annotated[bytes | None, Buffer]


@record
class SetSASLRequest:
    token: Annotated[bytes | None, Buffer]


@record
class SetSASLResponse:
    token: Annotated[bytes | None, Buffer]


@record
class CreateRequest:
    path: Annotated[str, UString]
    data: Annotated[bytes | None, Buffer]
    acl: Annotated[list[ACL] | None, Vector(ACL)]
    flags: Annotated[int, Int]


@record
class CreateTTLRequest:
    path: Annotated[str, UString]
    data: Annotated[bytes | None, Buffer]
    acl: Annotated[list[ACL] | None, Vector(ACL)]
    flags: Annotated[int, Int]
    ttl: Annotated[int, Long]


@record
class DeleteRequest:
    path: Annotated[str, UString]
    version: Annotated[int, Int]


@record
class GetChildrenRequest:
    path: Annotated[str, UString]
    watch: Annotated[bool, Bool]


@record
class GetAllChildrenNumberRequest:
    path: Annotated[str, UString]


@record
class GetChildren2Request:
    path: Annotated[str, UString]
    watch: Annotated[bool, Bool]


@record
class CheckVersionRequest:
    path: Annotated[str, UString]
    version: Annotated[int, Int]


@record
class SyncRequest:
    path: Annotated[str, UString]


@record
class SyncResponse:
    path: Annotated[str, UString]


@record
class GetACLRequest:
    path: Annotated[str, UString]


@record
class SetACLRequest:
    path: Annotated[str, UString]
    acl: Annotated[list[ACL] | None, Vector(ACL)]
    version: Annotated[int, Int]


@record
class SetACLResponse:
    stat: Annotated[Stat, Stat]


@record
class AddWatchRequest:
    path: Annotated[str, UString]
    mode: Annotated[int, Int]


@record
class WatcherEvent:
    type: Annotated[int, Int]
    state: Annotated[int, Int]
    path: Annotated[str, UString]


@record
class ErrorResponse:
    err: Annotated[int, Int]


@record
class CreateResponse:
    path: Annotated[str, UString]


@record
class Create2Response:
    path: Annotated[str, UString]
    stat: Annotated[Stat, Stat]


@record
class ExistsRequest:
    path: Annotated[str, UString]
    watch: Annotated[bool, Bool]


@record
class ExistsResponse:
    stat: Annotated[Stat, Stat]


@record
class GetDataResponse:
    data: Annotated[bytes | None, Buffer]
    stat: Annotated[Stat, Stat]


@record
class GetChildrenResponse:
    children: Annotated[list[str] | None, Vector(UString)]


@record
class GetAllChildrenNumberResponse:
    totalNumber: Annotated[int, Int]


@record
class GetChildren2Response:
    children: Annotated[list[str] | None, Vector(UString)]
    stat: Annotated[Stat, Stat]


@record
class GetACLResponse:
    acl: Annotated[list[ACL] | None, Vector(ACL)]
    stat: Annotated[Stat, Stat]


@record
class CheckWatchesRequest:
    path: Annotated[str, UString]
    type: Annotated[int, Int]


@record
class RemoveWatchesRequest:
    path: Annotated[str, UString]
    type: Annotated[int, Int]


@record
class GetEphemeralsRequest:
    prefixPath: Annotated[str | None, UString]


@record
class GetEphemeralsResponse:
    ephemerals: Annotated[list[str] | None, Vector(UString)]


@record
class WhoAmIResponse:
    clientInfo: Annotated[list[ClientInfo] | None, Vector(ClientInfo)]
