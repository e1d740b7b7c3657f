"""zkTxnLogToolkit.sh for pyzk: Apache ZooKeeper 3.8's TxnLogToolkit, option for option.

    zkTxnLogToolkit [-dhrvc] <txn_log_file_name> (-z <zxid>)
      -d/--dump (the default) print every txn; -r/--recover write <file>.fixed with the CRC
      of each broken record recomputed (asking Yes/No/Abort for each, or -y/--yes for all;
      -v/--verbose prints every txn, not just the broken ones); -c/--chop -z/--zxid <zxid>
      write <file>.chopped<zxid> holding the records up to that zxid.
(`zkTxnLogToolkit` is the console script of an installed wheel; bin/zkTxnLogToolkit.py in a checkout.)

Rule 1: stdout, stderr and the exit code are TxnLogToolkit's (and LogChopper's for -c):
        the same lines for the same file, the txns rendered as getFormattedTxnStr renders
        them (pyzk.tools.javatext for Java's number, date and Record.toString text), 0 after
        a dump or any chop (LogChopper's failures are printed, "Got exception: ..."), 1 for a
        bad command line, a missing file, a partial last record or an existing .fixed file,
        2 for a bad magic number, 0 for "Recovery aborted.".
Rule 2: where TxnLogToolkit dies of an uncaught exception (a file shorter than its header, a
        record whose txn cannot be deserialized, a missing end-of-record byte, no answer on
        stdin) pyzk prints `Exception in thread "main" <Java's exception class>: <message>`
        and exits 1 as the JVM does, without a Java stack trace.
Rule 3: -r's .fixed file is the one TxnLogToolkit writes, byte for byte: the header, the
        records with their CRCs (fixed or not), and the zero fill FilePadding preallocates
        (64 MiB steps, as a sparse file).
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jute.codes import OpCode
from jute.persistence import TXNLOG_MAGIC
from jute.primitives import JuteError
from jute.txn import (
    CreateContainerTxn,
    CreateTTLTxn,
    CreateTxn,
    CreateTxnV0,
    MultiTxn,
    SetDataTxn,
    TxnHeader,
)
from pyzk.storage.files import padded_file_size
from pyzk.storage.format import decode_txn_entry
from pyzk.tools.javatext import (
    java_file_path,
    list_to_string,
    long_decode,
    long_to_hex,
    record_to_string,
    short_long_datetime,
    utf8_string,
)

EXIT_OK = 0  # ExitCode.EXECUTION_FINISHED
EXIT_UNEXPECTED_ERROR = 1
EXIT_INVALID_INVOCATION = 2
FILE_HEADER = struct.Struct(">iiq")
RECORD_PREFIX = struct.Struct(">qi")
TXN_HEADER = struct.Struct(">qiqqi")
END_OF_RECORD = 0x42  # 'B'
# BinaryInputArchive.checkLength: jute.maxbuffer (0xfffff) plus its extra size (the same).
BUFFER_BYTES_MAX = 0xFFFFF + 0xFFFFF
PRE_ALLOC_BYTES = 65536 * 1024  # FilePadding's default zookeeper.preAllocSize

USAGE = "usage: TxnLogToolkit [-dhrvc] <txn_log_file_name> (-z <zxid>)"
HELP = USAGE + """
 -c,--chop         Chop mode. Chop txn file to a zxid.
 -d,--dump         Dump mode. Dump all entries of the log file with printing the content of a nodepath (default)
 -h,--help         Print help message
 -r,--recover      Recovery mode. Re-calculate CRC for broken entries.
 -v,--verbose      Be verbose in recovery mode: print all entries, not just fixed ones.
 -y,--yes          Non-interactive mode: repair all CRC errors without asking
 -z,--zxid <arg>   Used with chop. Zxid to which to chop.
"""
# (short, long, takes a value) in TxnLogToolkit's Options order.
OPTIONS = (("h", "help", False), ("r", "recover", False), ("v", "verbose", False), ("d", "dump", False),
           ("y", "yes", False), ("c", "chop", False), ("z", "zxid", True))

# Request.op2String
OP_NAMES = {
    OpCode.NOTIFICATION: "notification", OpCode.CREATE: "create", OpCode.DELETE: "delete",
    OpCode.EXISTS: "exists", OpCode.GET_DATA: "getData", OpCode.SET_DATA: "setData",
    OpCode.GET_ACL: "getACL", OpCode.SET_ACL: "setACL", OpCode.GET_CHILDREN: "getChildren",
    OpCode.SYNC: "sync", OpCode.PING: "ping", OpCode.GET_CHILDREN2: "getChildren2", OpCode.CHECK: "check",
    OpCode.MULTI: "multi", OpCode.CREATE2: "create2", OpCode.RECONFIG: "reconfig",
    OpCode.CHECK_WATCHES: "checkWatches", OpCode.REMOVE_WATCHES: "removeWatches",
    OpCode.CREATE_CONTAINER: "createContainer", OpCode.DELETE_CONTAINER: "deleteContainer",
    OpCode.CREATE_TTL: "createTtl", OpCode.MULTI_READ: "multiRead", OpCode.AUTH: "auth",
    OpCode.SET_WATCHES: "setWatches", OpCode.SET_WATCHES2: "setWatches2", OpCode.SASL: "sasl",
    OpCode.GET_EPHEMERALS: "getEphemerals", OpCode.GET_ALL_CHILDREN_NUMBER: "getAllChildrenNumber",
    OpCode.CREATE_SESSION: "createSession", OpCode.CLOSE_SESSION: "closeSession", OpCode.ERROR: "error",
    OpCode.WHO_AM_I: "whoAmI",
}


def op_name(txn_type: int) -> str:
    """Request.op2String."""
    return OP_NAMES.get(txn_type, f"unknown {txn_type}")  # type: ignore[call-overload]


class ToolExit(Exception):
    """TxnLogToolkitException: its message goes to stderr, then exit with its code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class JavaCrash(Exception):
    """An exception TxnLogToolkit does not catch (Rule 2): `java_class: message`."""

    def __init__(self, java_class: str, message: str | None = None) -> None:
        super().__init__(java_class if message is None else f"{java_class}: {message}")


class UsageError(Exception):
    """commons-cli's ParseException."""


# ---- txn rendering (pure) -----------------------------------------------------------------


def _text(value: str | None) -> str:
    return "null" if value is None else value


def txn_text(txn: Any) -> str:
    """TxnLogToolkit.getFormattedTxnStr."""
    if txn is None:
        return ""
    if isinstance(txn, CreateTxn | CreateTxnV0):
        parent_cversion = txn.parentCVersion if isinstance(txn, CreateTxn) else -1  # a V0 create
        return (f"{_text(txn.path)},{utf8_string(txn.data)},{list_to_string(txn.acl)},"
                f"{'true' if txn.ephemeral else 'false'},{parent_cversion}")
    if isinstance(txn, SetDataTxn):
        return f"{_text(txn.path)},{utf8_string(txn.data)},{txn.version}"
    if isinstance(txn, CreateContainerTxn):
        return f"{_text(txn.path)},{utf8_string(txn.data)},{list_to_string(txn.acl)},{txn.parentCVersion}"
    if isinstance(txn, CreateTTLTxn):
        return (f"{_text(txn.path)},{utf8_string(txn.data)},{list_to_string(txn.acl)},{txn.parentCVersion},"
                f"{txn.ttl}")
    if isinstance(txn, MultiTxn):
        return ";".join(f"{op_name(sub.type)}:{utf8_string(sub.data)}" for sub in txn.txns or ())
    return record_to_string(txn)


def txn_line(hdr: TxnHeader, txn: Any, when: datetime) -> str:
    """printTxn's line (with its newline: a rendering that ends in one gets no other)."""
    line = (f"{short_long_datetime(when)} session 0x{long_to_hex(hdr.clientId)} cxid 0x{long_to_hex(hdr.cxid)} "
            f"zxid 0x{long_to_hex(hdr.zxid)} {op_name(hdr.type)} {txn_text(txn)}")
    return line if line.endswith("\n") else line + "\n"


# The txn types SerializeUtils.deserializeTxn reads; any other is an IOException.
LOGGED_TYPES = frozenset({
    OpCode.CREATE_SESSION, OpCode.CLOSE_SESSION, OpCode.CREATE, OpCode.CREATE2, OpCode.CREATE_TTL,
    OpCode.CREATE_CONTAINER, OpCode.DELETE, OpCode.DELETE_CONTAINER, OpCode.RECONFIG, OpCode.SET_DATA,
    OpCode.SET_ACL, OpCode.ERROR, OpCode.MULTI,
})


def decode_entry(entry: bytes) -> tuple[TxnHeader, Any]:
    """SerializeUtils.deserializeTxn (the digest is not printed); JavaCrash where it throws."""
    if len(entry) < TXN_HEADER.size:
        raise JavaCrash("java.io.EOFException")
    txn_type = TXN_HEADER.unpack_from(entry, 0)[4]
    if txn_type not in LOGGED_TYPES:  # its format string is concatenated, not formatted
        raise JavaCrash("java.io.IOException", f"Unsupported Txn with type=%d{txn_type}")
    try:
        hdr, txn, _digest = decode_txn_entry(entry)
    except JuteError as exc:
        raise JavaCrash("java.io.EOFException", str(exc)) from None
    return hdr, txn


# ---- reading a log as BinaryInputArchive does ----------------------------------------------


@dataclass
class Record:
    crc: int
    entry: bytes
    end: int  # offset after the entry (where the end-of-record byte should be)


class LogBytes:
    """A log file's bytes read field by field, as TxnLogToolkit.dump and LogChopper.chop read them."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def header(self) -> tuple[int, int, int]:
        if len(self.data) < FILE_HEADER.size:
            raise JavaCrash("java.io.EOFException")
        magic, version, dbid = FILE_HEADER.unpack_from(self.data, 0)
        return magic, version, dbid

    def records(self) -> Iterator[Record]:
        """Each record up to an EOF inside the crc, length or entry, or an empty entry.

        The caller checks the end-of-record byte (`end_of_record`), as the loop does."""
        data, size, pos = self.data, len(self.data), FILE_HEADER.size
        while pos + RECORD_PREFIX.size <= size:
            crc, length = RECORD_PREFIX.unpack_from(data, pos)
            pos += RECORD_PREFIX.size
            if length == -1:
                raise JavaCrash("java.lang.NullPointerException")
            if length < 0 or length > BUFFER_BYTES_MAX:
                raise JavaCrash("java.io.IOException", f"Unreasonable length = {length}")
            if pos + length > size or length == 0:
                return
            entry = data[pos:pos + length]
            pos += length
            yield Record(crc, entry, pos)
            pos += 1

    def end_of_record(self, record: Record) -> int | None:
        """The byte after the entry; None at the end of the file."""
        return self.data[record.end] if record.end < len(self.data) else None


# ---- the modes -----------------------------------------------------------------------------


@dataclass
class Console:
    """Where the tool writes and reads: stdout/stderr as text, stdin as whitespace tokens."""

    out: Callable[[str], None]
    err: Callable[[str], None]
    tokens: Iterator[str]
    local_time: Callable[[int], datetime]


@dataclass
class FixedFile:
    """The .fixed file as FileOutputStream + FilePadding leave it (Rule 3)."""

    chunks: list[bytes] = field(default_factory=list)
    written: int = 0
    current_size: int = 0

    def write(self, data: bytes) -> None:
        self.chunks.append(data)
        self.written += len(data)

    def pad(self) -> None:
        self.current_size = padded_file_size(self.written, self.current_size, PRE_ALLOC_BYTES)

    def save(self, path: Path) -> None:
        with path.open("wb") as f:
            f.write(b"".join(self.chunks))
            if self.current_size > self.written:
                f.truncate(self.current_size)


def ask_for_fix(console: Console) -> bool:
    while True:
        console.out("Would you like to fix it (Yes/No/Abort) ? ")
        try:
            token = next(console.tokens)
        except StopIteration:
            raise JavaCrash("java.util.NoSuchElementException") from None
        answer = token[:1].upper()
        if answer == "Y":
            return True
        if answer == "N":
            return False
        if answer == "A":
            raise ToolExit(EXIT_OK, "Recovery aborted.")


def print_txn(console: Console, entry: bytes, prefix: str = "") -> None:
    hdr, txn = decode_entry(entry)
    line = txn_line(hdr, txn, console.local_time(hdr.time))
    if prefix.strip():
        console.out(prefix + " - ")
    console.out(line)


def dump(console: Console, data: bytes, file_name: str, *, recovery: bool = False, verbose: bool = False,
         force: bool = False, fixed: FixedFile | None = None) -> int:
    """TxnLogToolkit.dump; returns the number of CRCs fixed (written to `fixed` in recovery)."""
    log = LogBytes(data)
    magic, version, dbid = log.header()
    if magic != TXNLOG_MAGIC:
        raise ToolExit(EXIT_INVALID_INVOCATION, f"Invalid magic number for {file_name}")
    console.out(f"ZooKeeper Transactional Log File with dbid {dbid} txnlog format version {version}\n")
    if recovery and fixed is not None:
        fixed.write(FILE_HEADER.pack(magic, version, dbid))
        fixed.current_size = fixed.written
    crc_fixed = 0
    count = 0
    for record in log.records():
        crc = record.crc
        actual = zlib.adler32(record.entry)
        if crc != actual:
            if recovery and not force:
                print_txn(console, record.entry, "CRC ERROR")
                if ask_for_fix(console):
                    crc = actual
                    crc_fixed += 1
            elif recovery:
                crc = actual
                print_txn(console, record.entry, "CRC FIXED")
                crc_fixed += 1
            else:
                print_txn(console, record.entry, "CRC ERROR")
        if not recovery or verbose:
            print_txn(console, record.entry)
        eor = log.end_of_record(record)
        if eor is None:
            raise JavaCrash("java.io.EOFException")
        if eor != END_OF_RECORD:
            raise ToolExit(EXIT_UNEXPECTED_ERROR, "Last transaction was partial.")
        if recovery and fixed is not None:
            fixed.pad()
            fixed.write(RECORD_PREFIX.pack(crc, len(record.entry)) + record.entry + b"B")
        count += 1
    console.out(f"EOF reached after {count} txns.\n")
    return crc_fixed


class ChopFailed(Exception):
    """An exception LogChopper.chop throws; TxnLogToolkit.chop prints "Got exception: <message>"."""


def chop(console: Console, data: bytes, zxid: int, out: list[bytes]) -> bool:
    """LogChopper.chop: copy the records up to `zxid` into `out`; False if nothing was chopped."""
    log = LogBytes(data)
    try:
        magic, version, dbid = log.header()
    except JavaCrash:
        raise ChopFailed("null") from None
    if magic != TXNLOG_MAGIC:
        console.err("Invalid magic number in txn log file\n")
        return False
    console.out(f"ZooKeeper Transactional Log File with dbid {dbid} txnlog format version {version}\n")
    out.append(FILE_HEADER.pack(magic, version, dbid))
    count = 0
    has_zxid = False
    previous = -1
    try:
        for record in log.records():
            actual = zlib.adler32(record.entry)
            if record.crc != actual:
                raise ChopFailed(f"CRC doesn't match {record.crc} vs {actual}")
            hdr, _txn = decode_entry(record.entry)
            eor = log.end_of_record(record)
            if eor is None:
                raise ChopFailed("null")
            if eor != END_OF_RECORD:
                console.out("Last transaction was partial.\n")
                raise ChopFailed("Last transaction was partial.")
            txn_zxid = hdr.zxid
            if txn_zxid == zxid:
                has_zxid = True
            if previous != -1 and txn_zxid != previous + 1:
                if txn_zxid >> 32 == previous >> 32:
                    console.out(f"There is intra-epoch gap between {long_to_hex(previous)} and {long_to_hex(txn_zxid)}\n")
                elif txn_zxid & 0xFFFFFFFF != 1:
                    console.out(f"There is inter-epoch gap between {long_to_hex(previous)} and {long_to_hex(txn_zxid)}\n")
            previous = txn_zxid
            if txn_zxid > zxid:
                if count == 0 or not has_zxid:
                    console.out(f"This log does not contain zxid {long_to_hex(zxid)}\n")
                    return False
                console.out(f"Chopping at {long_to_hex(zxid)} new log has {count} records\n")
                return True
            out.append(RECORD_PREFIX.pack(record.crc, len(record.entry)) + record.entry + b"B")
            count += 1
    except JavaCrash as exc:
        message = str(exc).partition(": ")[2]
        raise ChopFailed(message or "null") from None
    console.out(f"EOF reached after {count} txns.\n")
    return False


# ---- command line --------------------------------------------------------------------------


@dataclass
class Invocation:
    flags: set[str]
    zxid: str | None
    args: list[str]


def _find_long(name: str) -> tuple[str, str, bool] | None:
    exact = [o for o in OPTIONS if o[1] == name]
    if exact:
        return exact[0]
    matches = [o for o in OPTIONS if o[1].startswith(name)]
    if len(matches) > 1:
        raise UsageError(f"Ambiguous option: '{name}'  (could be: "
                         + ", ".join(f"'{o[1]}'" for o in matches) + ")")
    return matches[0] if matches else None


def _find_short(char: str) -> tuple[str, str, bool] | None:
    return next((o for o in OPTIONS if o[0] == char), None)


def parse_command_line(argv: list[str]) -> Invocation:
    """commons-cli's DefaultParser over TxnLogToolkit's options (UsageError as ParseException)."""
    inv = Invocation(set(), None, [])
    tokens = list(argv)
    i = 0

    def is_option(token: str) -> bool:  # DefaultParser.isOption (a negative number is a value)
        if not token.startswith("-") or len(token) == 1 or token[1:].lstrip("-").replace(".", "").isdigit():
            return False
        if token.startswith("--"):
            return True
        name = token[1:].partition("=")[0]
        return bool(_find_short(name) or _find_short(name[:1]) or any(o[1].startswith(name) for o in OPTIONS))

    def handle(option: tuple[str, str, bool], inline: str | None = None) -> None:
        nonlocal i
        inv.flags.add(option[1])
        if not option[2]:
            return
        if inline:
            inv.zxid = inline
        elif i + 1 < len(tokens) and not is_option(tokens[i + 1]):
            i += 1
            inv.zxid = tokens[i]
        else:
            raise UsageError(f"Missing argument for option: {option[0]}")

    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            inv.args.extend(tokens[i + 1:])
            break
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            option = _find_long(name)
            if option is None:
                raise UsageError(f"Unrecognized option: {token}")
            if eq and not option[2]:
                raise UsageError(f"Unrecognized option: {token}")
            handle(option, value if eq else None)
        elif token.startswith("-") and token != "-":
            body = token[1:]
            name, eq, value = body.partition("=")
            short = _find_short(name) if len(name) == 1 else None
            if short and (not eq or short[2]):
                handle(short, value if eq else None)
            elif not eq and _find_long(body):
                handle(_find_long(body))  # type: ignore[arg-type]
            else:
                for at, char in enumerate(body):
                    option = _find_short(char)
                    if option is None:
                        raise UsageError(f"Unrecognized option: {token}")
                    if option[2]:
                        handle(option, body[at + 1:] or None)
                        break
                    handle(option)
        else:
            inv.args.append(token)
        i += 1
    return inv


def _run_chop(console: Console, path: Path, zxid_text: str) -> int:
    try:
        zxid = long_decode(zxid_text)
    except ValueError as exc:
        raise JavaCrash("java.lang.NumberFormatException", str(exc)) from None
    if zxid < 0:  # isDumpMode: TxnLogToolkit then dumps a file it never opened
        raise JavaCrash("java.lang.NullPointerException")
    target = path.parent / f"{path.name}.chopped{zxid}"
    out: list[bytes] = []
    try:
        target_file = target.open("wb")
    except OSError as exc:
        console.out(f"Got exception: {target} ({exc.strerror})\n")
        return EXIT_OK
    with target_file:
        try:
            if not chop(console, path.read_bytes(), zxid, out):
                raise ChopFailed(f"Failed to chop {path.name}")
        except ChopFailed as exc:
            console.out(f"Got exception: {exc}\n")
        finally:
            target_file.write(b"".join(out))
    return EXIT_OK


def run(argv: list[str], console: Console) -> int:
    """TxnLogToolkit.main; returns the exit code."""
    try:
        inv = parse_command_line(argv)
    except UsageError as exc:
        console.err(f"{exc}\n\n")
        console.out(HELP)
        return EXIT_UNEXPECTED_ERROR
    if "help" in inv.flags:
        console.out(HELP)
        return EXIT_OK
    if not inv.args:
        console.out(HELP)
        return EXIT_UNEXPECTED_ERROR
    path_text = java_file_path(inv.args[0])
    path = Path(path_text)
    try:
        if not path.exists() or not _readable(path):
            raise ToolExit(EXIT_UNEXPECTED_ERROR, f"File doesn't exist or not readable: {path_text}")
        if "chop" in inv.flags and inv.zxid is not None:
            return _run_chop(console, path, inv.zxid)
        recovery = "recover" in inv.flags
        fixed_path = Path(path_text + ".fixed")
        if recovery and fixed_path.exists():
            raise ToolExit(EXIT_UNEXPECTED_ERROR,
                           f"Recovery file {path_text}.fixed already exists or not writable")
        try:
            data = path.read_bytes()
        except IsADirectoryError:
            raise JavaCrash("java.io.FileNotFoundException", f"{path_text} (Is a directory)") from None
        fixed = FixedFile() if recovery else None
        try:
            crc_fixed = dump(console, data, path.name, recovery=recovery, verbose="verbose" in inv.flags,
                             force="yes" in inv.flags, fixed=fixed)
        finally:
            if fixed is not None:
                fixed.save(fixed_path)
        if recovery:
            console.out(f"Recovery file {path_text}.fixed has been written with {crc_fixed} fixed CRC error(s)\n")
        return EXIT_OK
    except ToolExit as exc:
        console.err(f"{exc}\n")
        return exc.code
    except JavaCrash as exc:
        console.err(f'Exception in thread "main" {exc}\n')
        return EXIT_UNEXPECTED_ERROR


def _readable(path: Path) -> bool:
    try:
        with path.open("rb"):
            return True
    except IsADirectoryError:
        return True  # File.canRead is true for a readable directory
    except OSError:
        return False


def stdin_tokens() -> Iterator[str]:
    """java.util.Scanner(System.in).next(): whitespace-separated tokens, read as needed."""
    for line in sys.stdin:
        yield from line.split()


def local_time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000).astimezone()


def main(argv: list[str] | None = None) -> int:
    stdout = sys.stdout.buffer
    stderr = sys.stderr.buffer

    def out(text: str) -> None:
        stdout.write(text.encode("utf-8", "replace"))
        if not text.endswith("\n"):
            stdout.flush()  # a prompt

    def err(text: str) -> None:
        stdout.flush()
        stderr.write(text.encode("utf-8", "replace"))
        stderr.flush()

    console = Console(out, err, stdin_tokens(), local_time)
    try:
        return run(sys.argv[1:] if argv is None else argv, console)
    finally:
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
