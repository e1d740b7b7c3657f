"""The server's view of storage: restore at start-up, txn log sink, snapshots every snapCount.

This adapter is the only place the server touches pyzk.storage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from jute.txn import TxnDigest
from pyzk.config import ServerConfig
from pyzk.storage.errors import StorageError
from pyzk.storage.format import encode_txn_entry
from pyzk.tree.datatree import DataTree

logger = logging.getLogger(__name__)

__all__ = ["Database", "StorageError", "open_database"]


@dataclass
class Database:
    tree: DataTree
    txn_log: Any
    digest_enabled: bool

    def encode_entry(self, prepared: Any) -> bytes:
        # The per-txn digest needs the tree after this txn; it is optional for readers
        # (Apache logs it, and accepts logs without it), so pyzk does not write it yet.
        return encode_txn_entry(prepared.hdr, prepared.txn, None)

    def after_commit(self, count: int, tree: DataTree) -> None:
        pass

    def close(self) -> None:
        if self.txn_log is not None:
            self.txn_log.close()


def open_database(config: ServerConfig) -> Database:
    tree = DataTree(digest_enabled=config.digest_enabled, extended_types_enabled=config.extended_types_enabled)
    logger.warning("pyzk storage is not wired in yet: running in memory only")
    return Database(tree, None, config.digest_enabled)


_ = TxnDigest
