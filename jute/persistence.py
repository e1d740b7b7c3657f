"""module org.apache.zookeeper.server.persistence (zookeeper.jute): file headers."""

from __future__ import annotations

from typing import Annotated

from jute.primitives import Int, Long
from jute.schema import record

TXNLOG_MAGIC = 0x5A4B4C47  # "ZKLG"
SNAP_MAGIC = 0x5A4B534E  # "ZKSN"
FILE_FORMAT_VERSION = 2


@record
class FileHeader:
    magic: Annotated[int, Int]
    version: Annotated[int, Int]
    dbid: Annotated[int, Long]
