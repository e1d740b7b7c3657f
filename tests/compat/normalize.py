"""Masking helpers that make client transcripts comparable across targets.

Rule: mask only what naturally differs between two correct servers (wall-clock times,
session ids, absolute zxids, ports, client build strings, latencies) and keep everything
else, including the *relations* between zxids: `ZxidLabeler` renames zxids in order of first
appearance, so "mZxid equals cZxid" or "pZxid moved" survives the masking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Lines that the JVM, logging and connection set-up print around zkCli's own output.
CLI_NOISE = re.compile(
    r"^(SLF4J: |log4j:|Connecting to |Welcome to ZooKeeper!|JLine support is "
    r"|WATCHER::$|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)"
)
# java.util.Date.toString(): "Sun Nov 22 04:55:02 UTC 2026"; C ctime(): no zone.
JAVA_DATE = re.compile(r"\b[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d( [A-Z]{2,5})? \d{4}\b")
EPOCH_DATE = "Thu Jan 01 00:00:00 UTC 1970"
PORT = re.compile(r"(127\.0\.0\.1|localhost|0\.0\.0\.0):\d+")
CLI_VERSION = re.compile(r"^(ZooKeeper CLI version: \d+\.\d+\.\d+).*$")
ELAPSED_MS = re.compile(r"^time = \d+ msec$")


def cli_lines(raw: str) -> list[str]:
    """zkCli output without JVM/log noise, blank lines and WATCHER:: markers."""
    return [
        line.rstrip()
        for line in raw.splitlines()
        if line.strip() and not CLI_NOISE.match(line)
    ]


# What zkCli's event thread prints: ZooKeeperMain.printMessage(msg) is println("\n" + msg),
# once for "WATCHER::" and once for the event.
_WATCHER_MARKER_PRINT = "\nWATCHER::\n"
_WATCHED_EVENT_PRINT = re.compile(r"\n(WatchedEvent state:[^\n]*)\n")


def extract_watch_events(raw: str) -> tuple[str, list[str]]:
    """(zkCli's stdout without what its event thread printed, the "WatchedEvent ..." lines).

    The event thread's prints can land inside a line the main thread is still writing piece
    by piece (`ls` appends "[", then each child): "[" + "\nWATCHER::\n" + ... + "k, q]\n".
    Each print is one synchronized println, so cutting out exactly those prints gives back the
    main thread's text unbroken; the events keep their order among themselves.
    """
    events: list[str] = []

    def take(match: re.Match[str]) -> str:
        events.append(match.group(1).rstrip())
        return ""

    text = raw.replace(_WATCHER_MARKER_PRINT, "")
    return _WATCHED_EVENT_PRINT.sub(take, text), events


def mask_dates(line: str) -> str:
    return JAVA_DATE.sub(lambda m: m.group(0) if m.group(0) == EPOCH_DATE else "<date>", line)


def mask_ports(line: str) -> str:
    return PORT.sub(lambda m: m.group(1) + ":<port>", line)


class ZxidLabeler:
    """Renames zxids Z1, Z2, ... in order of first appearance; 0x0 stays 0x0."""

    def __init__(self) -> None:
        self.labels: dict[int, str] = {0: "0x0"}

    def label(self, zxid: int) -> str:
        if zxid not in self.labels:
            self.labels[zxid] = f"Z{len(self.labels)}"
        return self.labels[zxid]


STAT_ZXID_FIELD = re.compile(r"^(cZxid|mZxid|pZxid) = (0x[0-9a-fA-F]+)$")
STAT_OWNER_FIELD = re.compile(r"^ephemeralOwner = (0x[0-9a-fA-F]+)$")


def mask_cli_line(line: str, zxids: ZxidLabeler) -> str:
    """One zkCli output line with times, zxids, session ids, ports and build masked."""
    if match := STAT_ZXID_FIELD.match(line):
        return f"{match.group(1)} = {zxids.label(int(match.group(2), 16))}"
    if match := STAT_OWNER_FIELD.match(line):
        return "ephemeralOwner = " + ("0x0" if int(match.group(1), 16) == 0 else "<session>")
    if match := CLI_VERSION.match(line):
        return match.group(1) + "<build>"
    return mask_ports(mask_dates(line))


def mask_cli_output(lines: Iterable[str]) -> list[str]:
    zxids = ZxidLabeler()
    return [mask_cli_line(line, zxids) for line in lines]


# --- C client (cli_mt) ---------------------------------------------------------------------

C_SESSION = re.compile(r"(session id: |session Id = )(0x)?[0-9a-f]+", re.IGNORECASE)
C_STAT_ZXID = re.compile(r"(czxid|mzxid)=([0-9a-f]+)")
C_OWNER = re.compile(r"ephemeralOwner = ([0-9a-f]+)")


def mask_c_line(line: str, zxids: ZxidLabeler) -> str:
    """One cli_mt output line: the C client prints zxids and owners as bare hex."""
    line = C_SESSION.sub(lambda m: m.group(1) + "<session>", line)
    line = C_STAT_ZXID.sub(lambda m: f"{m.group(1)}={zxids.label(int(m.group(2), 16))}", line)
    line = C_OWNER.sub(
        lambda m: "ephemeralOwner = " + ("0" if int(m.group(1), 16) == 0 else "<session>"), line
    )
    if ELAPSED_MS.match(line.strip()):
        return "time = <ms>"
    return mask_ports(mask_dates(line))


# --- order that Apache leaves unspecified ---------------------------------------------------

PATH_LIST = re.compile(r"^\[(/.*)\]$")
AUTH_INFO_HEADER = "Auth scheme: User"
AUTH_INFO_LINE = re.compile(r"^\w+: \S")


def sort_unordered(lines: list[str]) -> list[str]:
    """Sort what Apache prints in hash order: getEphemerals lists and whoami entries."""
    result: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if match := PATH_LIST.match(line):
            result.append("[" + ", ".join(sorted(match.group(1).split(", "))) + "]")
            index += 1
            continue
        result.append(line)
        index += 1
        if line == AUTH_INFO_HEADER:
            end = index
            while end < len(lines) and AUTH_INFO_LINE.match(lines[end]):
                end += 1
            result.extend(sorted(lines[index:end]))
            index = end
    return result
