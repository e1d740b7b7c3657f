"""Txn entries and log records on bytes: round trips, Apache's bytes, torn tails, corruption."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from jute.codes import OpCode
from jute.data import OPEN_ACL_UNSAFE
from jute.txn import (
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    CreateTxnV0,
    ErrorTxn,
    MultiTxn,
    SetDataTxn,
    Txn,
    TxnDigest,
    TxnHeader,
)
from pyzk.storage.errors import StorageError
from pyzk.storage.format import (
    LOG_FILE_HEADER,
    LogFileReader,
    decode_txn_entry,
    encode_log_record,
    encode_txn_entry,
)

GOLDEN = Path(__file__).parent / "golden"
HDR = TxnHeader(0x100000B68870000, 0, 1, 1_700_000_000_000, OpCode.CREATE_SESSION)


def records(data: bytes) -> list[tuple[int, bytes]]:
    return list(LogFileReader(data, "log.1"))


def test_verified_create_session_entry_layout() -> None:
    # PROTOCOL.md 5.2: the first record of log.1 is 48 bytes: header, CreateSessionTxn, digest.
    entry = encode_txn_entry(HDR, CreateSessionTxn(30000), TxnDigest(2, 0x51C6D660))
    assert len(entry) == 48
    assert entry[32:36] == struct.pack(">i", 30000)
    assert entry[36:] == struct.pack(">iq", 2, 0x51C6D660)
    record = encode_log_record(entry)
    assert struct.unpack_from(">qi", record) == (zlib.adler32(entry), 48)
    assert record[-1:] == b"B"


@pytest.mark.parametrize("name", ["apache_log.1", "apache_log.e", "apache_log.33"])
def test_apache_log_files_decode_and_reencode_byte_for_byte(name: str) -> None:
    data = (GOLDEN / name).read_bytes()
    reader = LogFileReader(data, name)
    found = list(reader)
    assert found and reader.end_offset == len(data) and not reader.torn
    rebuilt = bytearray(LOG_FILE_HEADER)
    for _, entry in found:
        hdr, txn, digest = decode_txn_entry(entry)
        assert encode_txn_entry(hdr, txn, digest) == entry
        rebuilt += encode_log_record(entry)
    assert bytes(rebuilt) == data


def test_error_txn_has_no_digest_and_apache_agrees() -> None:
    entry = encode_txn_entry(TxnHeader(1, 2, 3, 4, OpCode.ERROR), ErrorTxn(-101), TxnDigest(2, 99))
    assert decode_txn_entry(entry) == (TxnHeader(1, 2, 3, 4, OpCode.ERROR), ErrorTxn(-101), None)
    data = (GOLDEN / "apache_log.e").read_bytes()
    errors = [decode_txn_entry(e) for _, e in records(data) if decode_txn_entry(e)[0].type == OpCode.ERROR]
    assert errors and all(digest is None for _, _, digest in errors)


@pytest.mark.parametrize("digest", [None, TxnDigest(2, 7)])
def test_close_session_without_record(digest: TxnDigest | None) -> None:
    hdr = TxnHeader(5, 0, 9, 1, OpCode.CLOSE_SESSION)
    assert decode_txn_entry(encode_txn_entry(hdr, None, digest)) == (hdr, None, digest)
    with_record = encode_txn_entry(hdr, CloseSessionTxn(["/e"]), digest)
    assert decode_txn_entry(with_record) == (hdr, CloseSessionTxn(["/e"]), digest)


def test_short_create_is_read_as_create_txn_v0() -> None:
    hdr = TxnHeader(5, 1, 9, 1, OpCode.CREATE)
    old = CreateTxnV0("/old", b"d", list(OPEN_ACL_UNSAFE), False)
    assert decode_txn_entry(encode_txn_entry(hdr, old, None)) == (hdr, old, None)


def test_multi_round_trip() -> None:
    hdr = TxnHeader(5, 1, 9, 1, OpCode.MULTI)
    multi = MultiTxn([Txn(OpCode.CREATE, CreateTxn("/b", b"", list(OPEN_ACL_UNSAFE), False, 1).encode()),
                      Txn(OpCode.ERROR, ErrorTxn(-101).encode())])
    assert decode_txn_entry(encode_txn_entry(hdr, multi, TxnDigest(2, 1))) == (hdr, multi, TxnDigest(2, 1))


def _log(*entries: bytes, fill: int = 0) -> bytes:
    return LOG_FILE_HEADER + b"".join(encode_log_record(e) for e in entries) + b"\x00" * fill


ENTRIES = [encode_txn_entry(TxnHeader(1, i, i, i, OpCode.SET_DATA), SetDataTxn("/a", b"x" * i, i), TxnDigest(2, i))
           for i in range(1, 4)]


def test_zero_fill_is_a_clean_end() -> None:
    reader = LogFileReader(_log(*ENTRIES, fill=4096), "log.1")
    assert [e for _, e in reader] == ENTRIES
    assert not reader.torn


def test_torn_tail_at_every_byte_of_the_last_record() -> None:
    whole = _log(*ENTRIES)
    last_start = len(_log(*ENTRIES[:2]))
    for cut in range(last_start, len(whole)):
        for fill in (0, 64):  # a bare EOF, or the cut followed by zero fill
            reader = LogFileReader(whole[:cut] + b"\x00" * fill, "log.1")
            assert [e for _, e in reader] == ENTRIES[:2], cut
            assert reader.end_offset == last_start
            assert reader.torn == (whole[last_start:cut].strip(b"\x00") != b"")


def test_flipped_byte_in_the_last_record() -> None:
    whole = _log(*ENTRIES)
    last_start = len(_log(*ENTRIES[:2]))
    for offset in range(last_start, len(whole)):
        data = bytearray(whole)
        data[offset] ^= 0x10
        reader = LogFileReader(bytes(data), "log.1")
        try:
            found = [e for _, e in reader]
        except StorageError as exc:
            assert "log.1" in str(exc) and "offset" in str(exc)
            continue
        # Only a damaged length or 'B' can end the file instead (as in FileTxnIterator).
        assert found == ENTRIES[:2] and offset in (*range(last_start + 8, last_start + 12), len(whole) - 1)


def test_crc_mismatch_names_file_and_offset() -> None:
    data = bytearray(_log(*ENTRIES))
    data[16 + 12 + 3] ^= 1  # inside the first entry
    with pytest.raises(StorageError, match=r"log\.1: CRC check failed for the record at offset 16"):
        records(bytes(data))


def test_unreasonable_length_is_an_error() -> None:
    data = LOG_FILE_HEADER + struct.pack(">qi", 0, 0x7FFFFFF0) + b"B"
    with pytest.raises(StorageError, match="unreasonable length"):
        records(data)


def test_bad_magic_and_short_header() -> None:
    with pytest.raises(StorageError, match="invalid magic"):
        records(b"ZKSN" + LOG_FILE_HEADER[4:])
    with pytest.raises(StorageError, match="shorter than its file header"):
        records(b"")
