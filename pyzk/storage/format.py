"""Txn log format (FileTxnLog, Util.marshallTxnEntry, SerializeUtils.deserializeTxn): pure bytes.

Rule 1: a txn entry is TxnHeader || txn record || [TxnDigest]. Error txns carry no digest; a
        closeSession written with zookeeper.closeSessionTxn.enabled=false has no record; a
        reader treats every trailing part as optional, as ZooKeeper does.
Rule 2: a log file is FileHeader{ZKLG, 2, 0} then records {long adler32, int length, entry,
        byte 'B'}; the file is preallocated with zeros.
Rule 3: reading stops, without error, at the end of a file: EOF inside a record, a length of
        0 or -1, or a missing 'B' (a torn tail or the zero fill). A CRC mismatch or an
        unreasonable length is corruption: StorageError naming the file and offset.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Any

from jute.codes import OpCode
from jute.persistence import FILE_FORMAT_VERSION, TXNLOG_MAGIC, FileHeader
from jute.primitives import JuteError
from jute.txn import CloseSessionTxn, CreateTxn, CreateTxnV0, TxnDigest, TxnHeader
from pyzk.storage.errors import StorageError
from pyzk.tree.datatree import TXN_RECORDS

LOG_FILE_HEADER = FileHeader(TXNLOG_MAGIC, FILE_FORMAT_VERSION, 0).encode()
LOG_FILE_HEADER_BYTES = len(LOG_FILE_HEADER)
END_OF_RECORD = 0x42  # 'B'
# BinaryInputArchive.checkLength: jute.maxbuffer (0xfffff) + its extra size (same default).
ENTRY_BYTES_MAX = 0xFFFFF + 0xFFFFF
TXN_DIGEST_BYTES = 12
TXN_HEADER_BYTES = 32

_RECORD_PREFIX = struct.Struct(">qi")
_TXN_HEADER = struct.Struct(">qiqqi")
_ENTRY_ZXID = struct.Struct(">q")
_ENTRY_ZXID_OFFSET = 12  # TxnHeader: long clientId, int cxid, long zxid


def encode_txn_entry(hdr: TxnHeader, txn: Any | None, digest: TxnDigest | None) -> bytes:
    """Util.marshallTxnEntry: header, then the record and the digest when present."""
    out = bytearray(_TXN_HEADER.pack(hdr.clientId, hdr.cxid, hdr.zxid, hdr.time, hdr.type))
    if txn is not None:
        txn.encode_into(out)
    if digest is not None and hdr.type != OpCode.ERROR:
        digest.encode_into(out)
    return bytes(out)


def entry_zxid(entry: bytes) -> int:
    """The zxid of a txn entry, read from its TxnHeader without decoding the rest (-1 if short)."""
    if len(entry) < TXN_HEADER_BYTES:
        return -1
    return _ENTRY_ZXID.unpack_from(entry, _ENTRY_ZXID_OFFSET)[0]


def decode_txn_entry(entry: bytes) -> tuple[TxnHeader, Any | None, TxnDigest | None]:
    """SerializeUtils.deserializeTxn; raises JuteError for an entry ZooKeeper cannot read."""
    end = len(entry)
    if end < TXN_HEADER_BYTES:
        raise JuteError(f"txn entry of {end} bytes is shorter than a TxnHeader")
    hdr = TxnHeader(*_TXN_HEADER.unpack_from(entry, 0))
    pos = TXN_HEADER_BYTES
    txn: Any | None
    if hdr.type == OpCode.CLOSE_SESSION:
        # Before CloseSessionTxn existed (or with it disabled) the entry may end here or carry
        # only a digest; anything that does not parse as the record means "no record".
        txn = None
        if end - pos not in (0, TXN_DIGEST_BYTES):
            txn, pos = CloseSessionTxn.decode_from(entry, pos, end)
        elif end - pos == TXN_DIGEST_BYTES:
            try:
                candidate, after = CloseSessionTxn.decode_from(entry, pos, end)
            except JuteError:
                pass
            else:
                txn, pos = candidate, after
    elif hdr.type == OpCode.CHECK or hdr.type not in TXN_RECORDS:
        raise JuteError(f"unsupported txn type {hdr.type}")
    else:
        record_cls = TXN_RECORDS[hdr.type]
        try:
            txn, pos = record_cls.decode_from(entry, pos, end)
        except JuteError:
            if record_cls is not CreateTxn or hdr.type != OpCode.CREATE:
                raise
            # A create from a very old log: no parentCVersion (apply fixes the cversion up).
            txn, pos = CreateTxnV0.decode_from(entry, pos, end)
    digest = None
    if end - pos >= TXN_DIGEST_BYTES:
        digest, pos = TxnDigest.decode_from(entry, pos, end)
    return hdr, txn, digest


def encode_log_record(entry: bytes) -> bytes:
    """One log record: Adler32 of the entry (as a long), its length, the entry, 'B'."""
    return _RECORD_PREFIX.pack(zlib.adler32(entry), len(entry)) + entry + b"B"


class LogFileReader:
    """Yields (offset, entry) for each good record of one log file's bytes, in order.

    After iteration, `end_offset` is where the good records end and `torn` says whether
    non-zero bytes follow them (a torn tail, as opposed to the zero fill or a clean EOF).
    """

    def __init__(self, data: bytes, file_name: str) -> None:
        self.data = data
        self.file_name = file_name
        self.end_offset = LOG_FILE_HEADER_BYTES
        self.torn = False

    def check_header(self) -> None:
        if len(self.data) < LOG_FILE_HEADER_BYTES:
            raise StorageError(
                f"txn log {self.file_name}: {len(self.data)} bytes, shorter than its file header")
        magic, version, _ = struct.unpack_from(">iiq", self.data, 0)
        if magic != TXNLOG_MAGIC:
            raise StorageError(
                f"txn log {self.file_name} has invalid magic number {magic} != {TXNLOG_MAGIC} "
                "at offset 0")
        if version != FILE_FORMAT_VERSION:
            raise StorageError(f"txn log {self.file_name}: unsupported version {version} at offset 4")

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        self.check_header()
        data = self.data
        size = len(data)
        pos = LOG_FILE_HEADER_BYTES
        while True:
            self.end_offset = pos
            if pos + _RECORD_PREFIX.size > size:
                break
            crc, length = _RECORD_PREFIX.unpack_from(data, pos)
            if length in (0, -1):
                break
            if length < 0 or length > ENTRY_BYTES_MAX:
                raise StorageError(
                    f"txn log {self.file_name}: unreasonable length {length} at offset {pos + 8}")
            start = pos + _RECORD_PREFIX.size
            stop = start + length
            if stop + 1 > size or data[stop] != END_OF_RECORD:
                break
            entry = bytes(data[start:stop])
            if zlib.adler32(entry) != crc:
                raise StorageError(f"txn log {self.file_name}: CRC check failed for the record at offset {pos}")
            yield pos, entry
            pos = stop + 1
        # Non-zero bytes after the good records (counted in place: no copy of a 64 MB file).
        self.torn = data.count(0, self.end_offset) < size - self.end_offset
