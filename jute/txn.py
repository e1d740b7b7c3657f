"""module org.apache.zookeeper.txn (zookeeper.jute): txns as logged, proposed and applied."""

from __future__ import annotations

from typing import Annotated

from jute.data import ACL
from jute.primitives import Bool, Buffer, Int, Long, UString, Vector
from jute.schema import record


@record
class TxnDigest:
    version: Annotated[int, Int]
    treeDigest: Annotated[int, Long]


@record
class TxnHeader:
    clientId: Annotated[int, Long]
    cxid: Annotated[int, Int]
    zxid: Annotated[int, Long]
    time: Annotated[int, Long]
    type: Annotated[int, Int]


@record
class CreateTxnV0:
    path: Annotated[str, UString]
    data: Annotated[bytes | None, Buffer]
    acl: Annotated[list[ACL] | None, Vector(ACL)]
    ephemeral: Annotated[bool, Bool]


@record
class CreateTxn:
    path: Annotated[str, UString]
    data: Annotated[bytes | None, Buffer]
    acl: Annotated[list[ACL] | None, Vector(ACL)]
    ephemeral: Annotated[bool, Bool]
    parentCVersion: Annotated[int, Int]


@record
class CreateTTLTxn:
    path: Annotated[str, UString]
    data: Annotated[bytes | None, Buffer]
    acl: Annotated[list[ACL] | None, Vector(ACL)]
    parentCVersion: Annotated[int, Int]
    ttl: Annotated[int, Long]


@record
class CreateContainerTxn:
    path: Annotated[str, UString]
    data: Annotated[bytes | None, Buffer]
    acl: Annotated[list[ACL] | None, Vector(ACL)]
    parentCVersion: Annotated[int, Int]


@record
class DeleteTxn:
    path: Annotated[str, UString]


@record
class SetDataTxn:
    path: Annotated[str, UString]
    data: Annotated[bytes | None, Buffer]
    version: Annotated[int, Int]


@record
class CheckVersionTxn:
    path: Annotated[str, UString]
    version: Annotated[int, Int]


@record
class SetACLTxn:
    path: Annotated[str, UString]
    acl: Annotated[list[ACL] | None, Vector(ACL)]
    version: Annotated[int, Int]


@record
class SetMaxChildrenTxn:
    path: Annotated[str, UString]
    max: Annotated[int, Int]


@record
class CreateSessionTxn:
    timeOut: Annotated[int, Int]


@record
class CloseSessionTxn:
    paths2Delete: Annotated[list[str] | None, Vector(UString)]


@record
class ErrorTxn:
    err: Annotated[int, Int]


@record
class Txn:
    type: Annotated[int, Int]
    data: Annotated[bytes | None, Buffer]


@record
class MultiTxn:
    txns: Annotated[list[Txn] | None, Vector(Txn)]
