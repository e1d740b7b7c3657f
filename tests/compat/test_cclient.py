"""C client (cli_mt) compat suite: drive cli_mt over stdin and assert its masked transcript.

Rule: cli_mt runs its commands asynchronously, so the driver sends one command, waits
(bounded) for that command's completion line, and only then sends the next; the transcript is
therefore deterministic. Expected lines were observed on Apache ZooKeeper 3.8.0.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.compat.normalize import ZxidLabeler, mask_c_line

CLI_MT = Path("/usr/lib/zookeeper/bin/cli_mt")
COMMAND_TIMEOUT_S = 10.0
EXIT_TIMEOUT_S = 10.0

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(not CLI_MT.exists(), reason="cli_mt (Debian zookeeper-bin) not installed"),
]

class CliMt:
    """One cli_mt process; lines from stdout+stderr are collected by a reader thread."""

    def __init__(self, hosts: str) -> None:
        self.process = subprocess.Popen(
            [str(CLI_MT), "-h", hosts],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.transcript: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, pattern: str, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        """Collect lines until one matches `pattern`; fail after `timeout_s`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"cli_mt: no line matching {pattern!r}: {self.transcript}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"cli_mt exited waiting for {pattern!r}: {self.transcript}")
            self.transcript.append(line)
            if regex.search(line):
                return

    def send(self, command: str, done: str | None) -> None:
        """Send one command; wait for the line matching `done` unless it is None."""
        assert self.process.stdin is not None
        self.transcript.append(f"> {command}")
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        if done is not None:
            self.wait_for(done)

    def seen(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in self.transcript)

    def quit(self) -> None:
        """Send quit, wait for exit, and collect the remaining (stdout-buffered) lines."""
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        try:
            self.process.wait(timeout=EXIT_TIMEOUT_S)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=EXIT_TIMEOUT_S)
        self._reader.join(timeout=EXIT_TIMEOUT_S)
        while (line := self.lines.get_nowait()) is not None:
            self.transcript.append(line)


def masked(transcript: list[str]) -> list[str]:
    """Mask zxids, dates, sessions and latencies; child lists stay in the server's order."""
    zxids = ZxidLabeler()
    return [mask_c_line(line, zxids) for line in transcript]


def rc(path: str, code: int) -> str:
    return re.escape(f"{path}: rc = {code}")


def test_cli_mt_session(target) -> None:
    base = "/cclient"
    cli = CliMt(target.hosts)
    try:
        cli.wait_for(r"Got a new session id")
        cli.send(f"create {base}", re.escape(f"[{base}]: rc = 0"))
        cli.wait_for(r"name = ")
        cli.send(f"create {base}", re.escape(f"[{base}]: rc = -110"))
        cli.send(f"create +s {base}/s", r"name = ")
        cli.send(f"create +e {base}/e", r"name = ")
        cli.send(f"create +es {base}/es", r"name = ")
        cli.send(f"create +c {base}/c", r"name = ")
        cli.send(f"create +x {base}/x", r"Unknown option")
        cli.send("create /nope/kid", re.escape("[/nope/kid]: rc = -101"))
        cli.send(f"create2 {base}/two", r"ephemeralOwner")
        cli.send(f"get {base}", r"ephemeralOwner")
        cli.send("get /nope", r"^null$")
        cli.send(f"set {base} newdata", r"ephemeralOwner")
        cli.send(f"get {base}", r"ephemeralOwner")
        cli.send(f"ls {base}", r"^time = ")
        cli.wait_for(r"^time = ")
        cli.send(f"ls2 {base}", r"ephemeralOwner")
        cli.send("ls /nope", rc("/nope", -101))
        cli.wait_for(r"^time = ")
        cli.send("exists /nope", r"Error -101 for /nope")
        cli.send(f"sync {base}", re.escape(f"[{base}]: rc = 0"))
        cli.wait_for(r"name = ")
        cli.send("delete /nope", rc("/nope", -101))
        cli.send(f"delete {base}", rc(base, -111))
        cli.send(f"delete {base}/s0000000000", rc(f"{base}/s0000000000", 0))
        cli.send(f"wexists {base}/w", r"Error -101")
        cli.send(f"create {base}/w", r"name = ")
        if not cli.seen(r"CREATED_EVENT"):
            cli.wait_for(r"CREATED_EVENT")
        cli.send("myid", None)  # printed on stdout, which cli_mt flushes at exit
    finally:
        cli.quit()
    assert masked(cli.transcript) == EXPECTED_SESSION.splitlines()


EXPECTED_SESSION = """\
Watcher SESSION_EVENT state = CONNECTED_STATE
Got a new session id: <session>
> create /cclient
Creating [/cclient] node (mode: 0)
[/cclient]: rc = 0
	name = /cclient
> create /cclient
Creating [/cclient] node (mode: 0)
[/cclient]: rc = -110
> create +s /cclient/s
Creating [/cclient/s] node (mode: 2)
[/cclient/s]: rc = 0
	name = /cclient/s0000000000
> create +e /cclient/e
Creating [/cclient/e] node (mode: 1)
[/cclient/e]: rc = 0
	name = /cclient/e
> create +es /cclient/es
Creating [/cclient/es] node (mode: 3)
[/cclient/es]: rc = 0
	name = /cclient/es0000000002
> create +c /cclient/c
Creating [/cclient/c] node (mode: 4)
[/cclient/c]: rc = 0
	name = /cclient/c
> create +x /cclient/x
Unknown option: x
> create /nope/kid
Creating [/nope/kid] node (mode: 0)
[/nope/kid]: rc = -101
> create2 /cclient/two
Creating [/cclient/two] node (mode: 0)
[/cclient/two]: rc = 0
	name = /cclient/two
	ctime = <date>
	czxid=Z1
	mtime=<date>
	mzxid=Z1
	version=0	aversion=0
	ephemeralOwner = 0
> get /cclient
time = <ms>
/cclient: rc = 0
 value_len = 3
new
Stat:
	ctime = <date>
	czxid=Z2
	mtime=<date>
	mzxid=Z2
	version=0	aversion=0
	ephemeralOwner = 0
> get /nope
time = <ms>
/nope: rc = -101

Stat:
null
> set /cclient newdata
Watcher CHANGED_EVENT state = CONNECTED_STATE for path /cclient
/cclient: rc = 0 Stat:
	ctime = <date>
	czxid=Z2
	mtime=<date>
	mzxid=Z3
	version=1	aversion=0
	ephemeralOwner = 0
> get /cclient
time = <ms>
/cclient: rc = 0
 value_len = 7
newdata
Stat:
	ctime = <date>
	czxid=Z2
	mtime=<date>
	mzxid=Z3
	version=1	aversion=0
	ephemeralOwner = 0
> ls /cclient
time = <ms>
/cclient: rc = 0
	es0000000002
	c
	e
	two
	s0000000000
time = <ms>
> ls2 /cclient
time = <ms>
/cclient: rc = 0
	es0000000002
	c
	e
	two
	s0000000000
time = <ms>
	ctime = <date>
	czxid=Z2
	mtime=<date>
	mzxid=Z3
	version=1	aversion=0
	ephemeralOwner = 0
> ls /nope
time = <ms>
/nope: rc = -101
time = <ms>
> exists /nope
Error -101 for /nope
> sync /cclient
[/cclient]: rc = 0
	name = /cclient
> delete /nope
/nope: rc = -101
> delete /cclient
/cclient: rc = -111
> delete /cclient/s0000000000
Watcher CHILD_EVENT state = CONNECTED_STATE for path /cclient
/cclient/s0000000000: rc = 0
> wexists /cclient/w
Error -101 for /cclient/w
> create /cclient/w
Creating [/cclient/w] node (mode: 0)
Watcher CREATED_EVENT state = CONNECTED_STATE for path /cclient/w
[/cclient/w]: rc = 0
	name = /cclient/w
> myid
Quitting...
session Id = <session>"""
