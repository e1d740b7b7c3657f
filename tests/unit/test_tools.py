"""The operator tools' pure parts: Java's text for values, txn rendering, log walking, arguments.

The expected strings marked "Apache" were printed by Apache ZooKeeper 3.8.0's TxnLogToolkit /
SnapshotFormatter / PurgeTxnLog (Java 17, en locale, TZ=UTC) for the same values;
tests/compat/test_tools.py compares whole runs of both tools on the same files.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from jute.codes import OpCode
from jute.data import ACL, Id
from jute.txn import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    CreateTxnV0,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnDigest,
    TxnHeader,
)
from pyzk.storage.format import LOG_FILE_HEADER, encode_log_record, encode_txn_entry
from pyzk.tools import cleanup, snapshot, txnlog
from pyzk.tools.javatext import (
    date_to_string,
    hex_016,
    java_absolute_path,
    java_file_path,
    json_quote,
    list_to_string,
    long_decode,
    long_to_hex,
    medium_datetime,
    record_to_string,
    short_long_datetime,
    utf8_string,
)
from pyzk.tree.datatree import DataTree
from pyzk.tree.javaorder import long_hash_map_order

WORLD = ACL(31, Id("world", "anyone"))
AT = datetime(2026, 12, 7, 20, 51, 43, tzinfo=UTC)


# ---- javatext ----------------------------------------------------------------------------


def test_hex_as_java_prints_longs() -> None:
    assert long_to_hex(0) == "0"
    assert long_to_hex(0x10002CCC7570000) == "10002ccc7570000"
    assert long_to_hex(-1) == "ffffffffffffffff"  # a negative cxid, widened to a long
    assert hex_016(0) == "0x00000000000000"  # Apache: "%#016x" pads the whole field to 16
    assert hex_016(0x24) == "0x00000000000024"
    assert hex_016(0x10002CCC7570002) == "0x10002ccc7570002"
    assert hex_016(-(1 << 63)) == "0x8000000000000000"  # a container's ephemeralOwner


@pytest.mark.parametrize(("text", "value"), [
    ("0x2b", 43), ("0X2B", 43), ("#2b", 43), ("43", 43), ("053", 43), ("0", 0), ("-0x10", -16), ("+7", 7),
    ("9223372036854775807", (1 << 63) - 1), ("-9223372036854775808", -(1 << 63)),
])
def test_long_decode(text: str, value: int) -> None:
    assert long_decode(text) == value


@pytest.mark.parametrize("text", ["", "0x", "1_0", " 1", "0x-1", "9223372036854775808", "08", "abc", "--1"])
def test_long_decode_refuses_what_java_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="For input string"):
        long_decode(text)


def test_dates_as_java_formats_them() -> None:
    assert short_long_datetime(AT) == "12/7/26, 8:51:43 PM UTC"  # Apache
    assert date_to_string(AT) == "Mon Dec 07 20:51:43 UTC 2026"  # Apache
    assert medium_datetime(AT) == "Dec 7, 2026, 8:51:43 PM"  # Apache
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert date_to_string(epoch) == "Thu Jan 01 00:00:00 UTC 1970"  # Apache (the root's ctime)
    assert short_long_datetime(epoch) == "1/1/70, 12:00:00 AM UTC"
    assert short_long_datetime(AT.replace(hour=12, minute=5)) == "12/7/26, 12:05:43 PM UTC"
    cet = AT.astimezone(timezone(timedelta(hours=1), "CET"))
    assert short_long_datetime(cet) == "12/7/26, 9:51:43 PM CET"


def test_java_paths() -> None:
    assert java_file_path("a//b/") == "a/b"
    assert java_file_path("/x/./y") == "/x/./y"
    assert java_absolute_path(".", "/work") == "/work/."
    assert java_absolute_path("/abs//p", "/work") == "/abs/p"


def test_utf8_replacement_and_json_quoting() -> None:
    assert utf8_string(None) == utf8_string(b"") == ""
    assert utf8_string(b"\xff\xff\xff\x9b") == "\ufffd" * 4  # Apache: an ErrorTxn inside a multi
    assert utf8_string("café".encode()) == "café"
    assert json_quote('a"b\\c/\n\x01é') == 'a\\"b\\\\c/\\n\\u0001é'


def test_records_as_tostring_output_archive_prints_them() -> None:
    assert record_to_string(CreateSessionTxn(15000)) == "15000\n"  # Apache
    assert record_to_string(WORLD) == "31,s{'world,'anyone}\n"
    assert record_to_string(ErrorTxn(-110)) == "-110\n"  # Apache
    assert record_to_string(DeleteTxn("/app/box/item")) == "'/app/box/item\n"  # Apache
    assert record_to_string(CloseSessionTxn(["/app/gone-with-session"])) == "v{'/app/gone-with-session}\n"  # Apache
    assert record_to_string(CloseSessionTxn(None)) == "v{}\n"
    digest = ACL(17, Id("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="))
    assert (record_to_string(SetACLTxn("/app/null", [digest], 1))
            == "'/app/null,v{s{17,s{'digest,'alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=}}},1\n")  # Apache
    assert record_to_string(DeleteTxn("/a,b}%\n\r\0")) == "'/a%2Cb%7D%25%0A%0D%00\n"
    assert record_to_string(Txn(1, b"\x05\xff\x10")) == "1,#5ffffffff10\n"  # Integer.toHexString(byte)
    assert record_to_string(Txn(1, None)) == "1,\n"
    assert record_to_string(CreateTxn("/p", b"a", [WORLD], True, 1)) == "'/p,#61,v{s{31,s{'world,'anyone}}},T,1\n"
    assert record_to_string(TxnDigest(2, -5)) == "2,-5\n"
    assert list_to_string(None) == "null"
    assert list_to_string([WORLD, WORLD]) == "[31,s{'world,'anyone}\n, 31,s{'world,'anyone}\n]"


# ---- txnlog: rendering -------------------------------------------------------------------


def test_txn_text_as_get_formatted_txn_str() -> None:
    world = "[31,s{'world,'anyone}\n]"
    assert txnlog.txn_text(None) == ""
    assert txnlog.txn_text(CreateTxn("/app", None, [WORLD], False, 1)) == f"/app,,{world},false,1"  # Apache
    assert txnlog.txn_text(CreateTxn("/app/eph", b"mine", [WORLD], True, 6)) == f"/app/eph,mine,{world},true,6"
    assert txnlog.txn_text(CreateTxnV0("/old", b"x", [WORLD], False)) == f"/old,x,{world},false,-1"
    assert txnlog.txn_text(SetDataTxn("/app/a/b", b"v0", 1)) == "/app/a/b,v0,1"  # Apache
    assert txnlog.txn_text(CreateContainerTxn("/app/box", b"c", [WORLD], 10)) == f"/app/box,c,{world},10"  # Apache
    assert (txnlog.txn_text(CreateTTLTxn("/app/ttl", b"t", [WORLD], 11, 3600000))
            == f"/app/ttl,t,{world},11,3600000")  # Apache
    assert txnlog.txn_text(CreateTxn("/n", b"", None, False, 1)) == "/n,,null,false,1"
    check = CheckVersionTxn("/app/a/b", 21).encode()
    multi = MultiTxn([Txn(OpCode.CHECK, check), Txn(OpCode.ERROR, ErrorTxn(-101).encode())])
    assert txnlog.txn_text(multi) == f"check:{utf8_string(check)};error:" + "\ufffd" * 4
    assert txnlog.txn_text(MultiTxn([])) == ""
    assert txnlog.txn_text(DeleteTxn("/x")) == "'/x\n"


def test_txn_line() -> None:
    hdr = TxnHeader(0x10002CCC7570000, 0, 1, 0, OpCode.CREATE_SESSION)
    assert (txnlog.txn_line(hdr, CreateSessionTxn(15000), AT)
            == "12/7/26, 8:51:43 PM UTC session 0x10002ccc7570000 cxid 0x0 zxid 0x1 createSession 15000\n")  # Apache
    hdr = TxnHeader(0, -1, 0x2E, 0, OpCode.DELETE_CONTAINER)
    assert (txnlog.txn_line(hdr, DeleteTxn("/app/box"), AT)
            == "12/7/26, 8:51:43 PM UTC session 0x0 cxid 0xffffffffffffffff zxid 0x2e deleteContainer '/app/box\n")
    line = txnlog.txn_line(TxnHeader(1, 2, 3, 0, OpCode.SET_DATA), SetDataTxn("/a", b"x", 4), AT)
    assert line.endswith("setData /a,x,4\n") and line.count("\n") == 1


def test_op_names() -> None:
    assert txnlog.op_name(OpCode.CREATE_TTL) == "createTtl"
    assert txnlog.op_name(OpCode.GET_ALL_CHILDREN_NUMBER) == "getAllChildrenNumber"
    assert txnlog.op_name(OpCode.ADD_WATCH) == "unknown 106"  # not in Request.op2String
    assert txnlog.op_name(-10) == "createSession"
    assert txnlog.op_name(999) == "unknown 999"


# ---- txnlog: walking a log ---------------------------------------------------------------


def entry(zxid: int, txn_type: int = OpCode.SET_DATA, record: object | None = None) -> bytes:
    record = record if record is not None else SetDataTxn(f"/n{zxid}", b"d", zxid & 0x7FFF_FFFF)
    hdr = TxnHeader(7, zxid & 0x7FFF_FFFF, zxid, 1_700_000_000_000, txn_type)
    return encode_txn_entry(hdr, record, TxnDigest(2, 1))


def log_bytes(*entries: bytes, bad_crc: tuple[int, ...] = (), tail: bytes = b"\0" * 20) -> bytes:
    out = bytearray(LOG_FILE_HEADER)
    for i, e in enumerate(entries):
        record = bytearray(encode_log_record(e))
        if i in bad_crc:
            record[7] ^= 1
        out += record
    return bytes(out) + tail


class Captured:
    def __init__(self, answers: str = "") -> None:
        self.out: list[str] = []
        self.err: list[str] = []
        self.console = txnlog.Console(self.out.append, self.err.append, iter(answers.split()),
                                      lambda ms: datetime.fromtimestamp(ms // 1000, UTC))

    @property
    def text(self) -> str:
        return "".join(self.out)


def test_dump_reports_crc_errors_and_counts() -> None:
    cap = Captured()
    data = log_bytes(entry(1), entry(2), entry(3), bad_crc=(1,))
    assert txnlog.dump(cap.console, data, "log.1") == 0
    lines = cap.text.splitlines()
    assert lines[0] == "ZooKeeper Transactional Log File with dbid 0 txnlog format version 2"
    assert lines[2].startswith("CRC ERROR - ") and lines[2][12:] == lines[3]
    assert len(lines) == 6 and lines[-1] == "EOF reached after 3 txns."


@pytest.mark.parametrize("tail", [b"", b"\0" * 3, b"\0\0\0\0\0\0\0\1\0\0\0\x40\1\2"])
def test_dump_stops_at_eof_inside_a_record(tail: bytes) -> None:
    cap = Captured()
    txnlog.dump(cap.console, log_bytes(entry(1), tail=tail), "log.1")
    assert cap.text.endswith("EOF reached after 1 txns.\n")


def test_dump_failures_as_apache() -> None:
    with pytest.raises(txnlog.ToolExit) as bad_magic:
        txnlog.dump(Captured().console, b"ZKSN" + LOG_FILE_HEADER[4:], "snapshot.1")
    assert bad_magic.value.code == 2 and str(bad_magic.value) == "Invalid magic number for snapshot.1"
    partial = bytearray(log_bytes(entry(1), entry(2)))
    partial[len(LOG_FILE_HEADER) + 12 + len(entry(1))] = ord("X")
    with pytest.raises(txnlog.ToolExit, match="Last transaction was partial.") as exc:
        txnlog.dump(Captured().console, bytes(partial), "log.1")
    assert exc.value.code == 1
    with pytest.raises(txnlog.JavaCrash, match="java.io.EOFException"):
        txnlog.dump(Captured().console, LOG_FILE_HEADER[:10], "log.1")
    with pytest.raises(txnlog.JavaCrash, match="java.io.EOFException"):
        txnlog.dump(Captured().console, log_bytes(entry(1), tail=b"")[:-1], "log.1")
    unsupported = entry(1, OpCode.CHECK, CheckVersionTxn("/a", 1))
    with pytest.raises(txnlog.JavaCrash, match="Unsupported Txn with type=%d13"):
        txnlog.dump(Captured().console, log_bytes(unsupported), "log.1")
    huge = LOG_FILE_HEADER + struct.pack(">qi", 0, 0x200000)
    with pytest.raises(txnlog.JavaCrash, match="Unreasonable length = 2097152"):
        txnlog.dump(Captured().console, huge, "log.1")


def test_recovery_fixes_crcs_as_answered() -> None:
    data = log_bytes(entry(1), entry(2), entry(3), bad_crc=(0, 2))
    cap = Captured("maybe yes No")
    fixed = txnlog.FixedFile()
    assert txnlog.dump(cap.console, data, "log.1", recovery=True, fixed=fixed) == 1
    assert cap.text.count("Would you like to fix it (Yes/No/Abort) ? ") == 3  # "maybe" asks again
    assert cap.text.count("CRC ERROR - ") == 2 and "CRC FIXED" not in cap.text
    written = b"".join(fixed.chunks)
    expected = bytearray(LOG_FILE_HEADER) + encode_log_record(entry(1)) + encode_log_record(entry(2))
    third = bytearray(encode_log_record(entry(3)))
    third[7] ^= 1  # answered No: the broken CRC is copied
    assert written == bytes(expected + third)
    assert fixed.current_size == len(LOG_FILE_HEADER) + 64 * 1024 * 1024


def test_recovery_with_yes_and_abort() -> None:
    data = log_bytes(entry(1), entry(2), bad_crc=(0, 1))
    cap = Captured()
    assert txnlog.dump(cap.console, data, "log.1", recovery=True, force=True, verbose=True,
                       fixed=txnlog.FixedFile()) == 2
    assert cap.text.count("CRC FIXED - ") == 2 and len(cap.text.splitlines()) == 6
    with pytest.raises(txnlog.ToolExit, match="Recovery aborted.") as aborted:
        txnlog.dump(Captured("a").console, data, "log.1", recovery=True, fixed=txnlog.FixedFile())
    assert aborted.value.code == 0
    with pytest.raises(txnlog.JavaCrash, match="NoSuchElementException"):
        txnlog.dump(Captured("").console, data, "log.1", recovery=True, fixed=txnlog.FixedFile())


def test_chop_as_log_chopper() -> None:
    data = log_bytes(entry(5), entry(6), entry(8), entry((1 << 32) + 1), entry((1 << 32) + 3))
    cap, out = Captured(), []
    assert txnlog.chop(cap.console, data, 6, out)
    assert b"".join(out) == LOG_FILE_HEADER + encode_log_record(entry(5)) + encode_log_record(entry(6))
    # the gap to the record after the zxid is reported before chopping, as LogChopper does
    assert cap.text.splitlines()[1:] == ["There is intra-epoch gap between 6 and 8",
                                         "Chopping at 6 new log has 2 records"]
    cap, out = Captured(), []
    assert not txnlog.chop(cap.console, data, (1 << 32) + 3, out)
    assert cap.text.splitlines()[1:] == ["There is intra-epoch gap between 6 and 8",
                                         "There is intra-epoch gap between 100000001 and 100000003",
                                         "EOF reached after 5 txns."]
    cap = Captured()
    assert not txnlog.chop(cap.console, data, 7, [])
    assert cap.text.splitlines()[-1] == "This log does not contain zxid 7"
    with pytest.raises(txnlog.ChopFailed, match=r"CRC doesn't match \d+ vs \d+"):
        txnlog.chop(Captured().console, log_bytes(entry(5), bad_crc=(0,)), 5, [])


@pytest.mark.parametrize(("argv", "flags", "zxid", "args"), [
    (["-rv", "log.1"], {"recover", "verbose"}, None, ["log.1"]),
    (["-c", "-z", "0x5", "log.1"], {"chop", "zxid"}, "0x5", ["log.1"]),
    (["-z5", "-c", "log.1"], {"chop", "zxid"}, "5", ["log.1"]),
    (["--zxid=7", "--chop", "log.1"], {"chop", "zxid"}, "7", ["log.1"]),
    (["-z=9", "log.1"], {"zxid"}, "9", ["log.1"]),
    (["--verb", "-ve", "log.1", "-d"], {"verbose", "dump"}, None, ["log.1"]),
    (["-cz", "-1", "log.1"], {"chop", "zxid"}, "-1", ["log.1"]),
    (["log.1", "--", "-r"], set(), None, ["log.1", "-r"]),
])
def test_command_line_as_default_parser(argv: list[str], flags: set[str], zxid: str | None, args: list[str]) -> None:
    inv = txnlog.parse_command_line(argv)
    assert (inv.flags, inv.zxid, inv.args) == (flags, zxid, args)


@pytest.mark.parametrize(("argv", "message"), [
    (["-q", "log.1"], "Unrecognized option: -q"),
    (["-rq", "log.1"], "Unrecognized option: -rq"),
    (["--bogus"], "Unrecognized option: --bogus"),
    (["-c", "-z"], "Missing argument for option: z"),
    (["-z", "-r", "log.1"], "Missing argument for option: z"),
])
def test_command_line_errors(argv: list[str], message: str) -> None:
    with pytest.raises(txnlog.UsageError) as exc:
        txnlog.parse_command_line(argv)
    assert str(exc.value) == message


def test_run_exit_codes(tmp_path: Path) -> None:
    log = tmp_path / "log.1"
    log.write_bytes(log_bytes(entry(1), entry(2), bad_crc=(1,)))

    def run(*argv: str) -> tuple[int, Captured]:
        cap = Captured("y")
        return txnlog.run(list(argv), cap.console), cap

    assert run("-h")[0] == 0 and run()[0] == 1 and run("-q")[0] == 1
    code, cap = run(str(tmp_path / "nope"))
    assert code == 1 and cap.err == [f"File doesn't exist or not readable: {tmp_path / 'nope'}\n"]
    code, cap = run("-r", str(log))
    assert code == 0 and (tmp_path / "log.1.fixed").stat().st_size == 16 + 64 * 1024 * 1024
    assert cap.text.endswith(f"Recovery file {log}.fixed has been written with 1 fixed CRC error(s)\n")
    assert run("-r", str(log))[0] == 1  # the .fixed file exists
    code, cap = run("-c", "-z", "1", str(log))
    assert code == 0 and (tmp_path / "log.1.chopped1").read_bytes() == LOG_FILE_HEADER + encode_log_record(entry(1))
    code, cap = run("-c", "-z", "nope", str(log))
    assert code == 1 and "NumberFormatException" in cap.err[0]


# ---- snapshot ----------------------------------------------------------------------------


def test_session_order_is_a_java_hash_map_of_longs() -> None:
    sessions = [0x10002CCC7570000, 0x10002CCC7570001, 0x10002CCC7570002]
    assert long_hash_map_order(sessions) == sessions[::-1]  # Apache
    assert long_hash_map_order([17, 1]) == [17, 1]  # one bucket of 16: insertion order
    assert long_hash_map_order([17, 1, *range(100, 111)]) == [1, *range(100, 111), 17]  # 13 keys: 32 buckets
    assert long_hash_map_order([-1, 0]) == [-1, 0]  # -1 hashes to 0 too


@pytest.mark.parametrize(("name", "zxid"), [
    ("snapshot.24", 0x24), ("snapshot.1a2b.gz", 0x1A2B), ("snapshot.x", -1), ("log.5", -1),
    ("snapshot", -1), ("snapshot.ffffffffffffffff", -1), ("snapshot.-5", -5),
])
def test_zxid_from_name(name: str, zxid: int) -> None:
    assert snapshot.zxid_from_name(name) == zxid


def test_formatter_arguments() -> None:
    assert snapshot.parse_args(["-d", "s"]) == ("s", True, False, True)
    assert snapshot.parse_args(["-json", "s"]) == ("s", False, True, True)
    assert snapshot.parse_args(["s", "-d"])[3] is False
    assert snapshot.parse_args([])[3] is False


def small_tree() -> DataTree:
    tree = DataTree(extended_types_enabled=True)
    session = 0x55
    tree.apply(TxnHeader(session, 1, 1, 1_000, OpCode.CREATE_SESSION), CreateSessionTxn(30000))
    tree.apply(TxnHeader(session, 2, 2, 2_000, OpCode.CREATE), CreateTxn("/a\"q", b"xyz", [WORLD], False, 1))
    tree.apply(TxnHeader(session, 3, 3, 3_000, OpCode.CREATE), CreateTxn("/a\"q/e", None, [WORLD], True, 1))
    return tree


def test_ncdu_json() -> None:
    tree = small_tree()
    names = [path for path, _ in tree.walk()]
    text = snapshot.ncdu_json(tree, 42)
    assert text.startswith('[1,0,{"progname":"SnapshotFormatter.java","progver":"0.01","timestamp":42},[{"name":"/"')
    assert '[{"name":"a\\"q","asize":3,"dsize":3,"dev":0,"ino":' in text
    assert '{"name":"e","asize":0,"dsize":0,"dev":0,"ino":' in text
    assert text.count('"ino":') == len(names) and '"ino":1001}' in text and not text.endswith("\n")


def test_details_lines() -> None:
    tree = small_tree()
    loaded = snapshot.LoadedSnapshot(tree, {0x55: 30000}, None)
    utc = lambda ms: datetime.fromtimestamp(ms // 1000, UTC)  # noqa: E731
    text = snapshot.details(loaded, "snapshot.2", False, utc)
    lines = text.splitlines()
    assert lines[0] == f"ZNode Details (count={len(tree.nodes) + 1}):"
    at = lines.index('/a"q')
    assert lines[at + 1:at + 11] == [
        "  cZxid = 0x00000000000002", "  ctime = Thu Jan 01 00:00:02 UTC 1970", "  mZxid = 0x00000000000002",
        "  mtime = Thu Jan 01 00:00:02 UTC 1970", "  pZxid = 0x00000000000003", "  cversion = 1",
        "  dataVersion = 0", "  aclVersion = 0", "  ephemeralOwner = 0x00000000000000", "  dataLength = 3"]
    assert lines[-4:] == ["Session Details (sid, timeout, ephemeralCount):", "0x00000000000055, 30000, 1",
                          "----", "Last zxid: 0x3"]
    with_data = snapshot.details(loaded, "snapshot.9", True, utc).splitlines()
    assert "  data = eHl6" in with_data and "  data = " in with_data and with_data[-1] == "Last zxid: 0x9"


# ---- cleanup -----------------------------------------------------------------------------


def test_doomed_files_keep_listing_order() -> None:
    logs, snaps = cleanup.doomed_files(["log.5", "log.1", "log.30", "log.12", "log.2.fixed"],
                                       ["snapshot.9", "snapshot.0", "snapshot.20", "snapshot.4.tmp"], "snapshot.20")
    assert logs == ["log.5", "log.1", "log.2.fixed"]  # log.12 starts before snapshot.20: kept
    assert snaps == ["snapshot.9", "snapshot.0", "snapshot.4.tmp"]


def test_cleanup_argument_forms(tmp_path: Path) -> None:
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("dataDir=/d\n# dataLogDir=/x\n")
    env = {"ZOOCFGDIR": str(tmp_path)}
    assert cleanup.purge_arguments(["/d", "-n", "3"], env) == ["/d", "-n", "3"]
    assert cleanup.purge_arguments(["-n", "4"], env) == ["/d", "-n", "4"]
    assert cleanup.purge_arguments(["-n", "3", "/l", "/s"], env) == ["/l", "/s", "-n", "3"]
    cfg.write_text("dataDir=/d\ndataLogDir=/l\n")
    assert cleanup.purge_arguments(["-c", str(cfg)], {}) == ["/l", "/d", "-n", "3"]
    assert cleanup.purge_arguments(["-n", "5"], env) == ["/l", "/d", "-n", "5"]


def test_purge_txn_log_usage_and_counts(tmp_path: Path) -> None:
    out: list[str] = []
    err: list[str] = []
    assert cleanup.purge_txn_log([str(tmp_path), "-n", "2"], out.append, err.append) == 1
    assert err == ["count should be greater than or equal to 3\n"] and out == [cleanup.USAGE]
    err.clear()
    assert cleanup.purge_txn_log([str(tmp_path), "-n", "2x"], out.append, err.append) == 1
    assert err == ["'2x' can not be parsed to integer.\n"]
    out.clear()
    assert cleanup.purge_txn_log([str(tmp_path), "-n", "3"], out.append, err.append) == 0
    assert out == [] and (tmp_path / "version-2").is_dir()  # FileTxnSnapLog creates it


def test_purge_prints_and_removes(tmp_path: Path) -> None:
    version = tmp_path / "version-2"
    version.mkdir()
    for zxid in (0, 5, 9, 12):
        (version / f"snapshot.{zxid:x}").write_bytes(b"\0" * 40 + struct.pack(">i", 1) + b"/")
    for zxid in (1, 3, 6, 10):
        (version / f"log.{zxid:x}").write_bytes(b"ZKLG")
    out: list[str] = []
    assert cleanup.purge_txn_log([str(tmp_path), "-n", "3"], out.append, print) == 0
    removed = sorted(line.rsplit("\t", 1)[1].strip() for line in out)
    assert removed == [f"{tmp_path}/version-2/log.1", f"{tmp_path}/version-2/snapshot.0"]
    assert all(line.startswith("Removing file: ") for line in out)
    # log.3 starts before snapshot.5 (the oldest kept) and may hold its txns: kept
    assert sorted(p.name for p in version.iterdir()) == ["log.3", "log.6", "log.a", "snapshot.5", "snapshot.9",
                                                         "snapshot.c"]
