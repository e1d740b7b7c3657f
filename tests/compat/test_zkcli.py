"""zkCli.sh compat suite: one zkCli session per script, its masked transcript asserted.

Rule: each expected transcript below was produced by running the same script against
Apache ZooKeeper 3.8.0 (Debian) and masking it with tests/compat/normalize.py; nothing is
written from memory. Command output and watch events are compared separately, because zkCli
prints events from its own thread (their place among the output lines is a race, even inside
a line `ls` is still writing; their order among themselves is not): normalize's
extract_watch_events cuts exactly the event thread's prints out of the text. Every script works under its own top-level znode, so the
scripts share one target per module.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.compat.conftest import own_target_size
from tests.compat.normalize import (
    cli_lines,
    extract_watch_events,
    mask_cli_output,
    sort_unordered,
)
from tests.compat.targets import start_target

ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
ZKCLI_TIMEOUT_S = 60.0
EXTENDED_TYPES = {"zookeeper.extendedTypesEnabled": "true"}

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(not ZKCLI.exists(), reason="zkCli.sh (Debian zookeeper) not installed"),
]


@dataclass(frozen=True)
class Transcript:
    output: list[str]
    events: list[str]


def run_zkcli(hosts: str, script: str) -> Transcript:
    """Feed `script` to one zkCli session on stdin; return its masked output and events."""
    completed = subprocess.run(
        [str(ZKCLI), "-server", hosts],
        input=script + "quit\n",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one pipe keeps the JVM's stdout/stderr interleaving
        text=True,
        timeout=ZKCLI_TIMEOUT_S,
        check=False,
    )
    text, events = extract_watch_events(completed.stdout)
    output = cli_lines(text)
    return Transcript(sort_unordered(mask_cli_output(output)), events)


def assert_transcript(actual: Transcript, case: CliCase) -> None:
    assert actual.output == case.output.splitlines()
    assert actual.events == case.events.splitlines()


@dataclass(frozen=True)
class CliCase:
    script: str
    output: str
    events: str


SESSION_EVENTS = """\
WatchedEvent state:SyncConnected type:None path:null
WatchedEvent state:Closed type:None path:null"""

CRUD = CliCase(
    script="""\
create /cli_crud
create /cli_crud/a data1
create /cli_crud/a again
create /cli_crud/nope/x
create cli_crud/rel
create -s /cli_crud/s sq
create -s /cli_crud/s sq
create -e /cli_crud/e eph
create -e -s /cli_crud/es
create -c /cli_crud/c
create -s -e -c /cli_crud/bad
create -c /cli_crud/c/kid
get /cli_crud/a
get -s /cli_crud/a
get /cli_crud/missing
get /cli_crud/c
set /cli_crud/a d2
set -s /cli_crud/a d3
set -v 99 /cli_crud/a d4
set -v 2 /cli_crud/a d4
set /cli_crud/missing x
stat /cli_crud/a
stat /cli_crud/e
stat /cli_crud/c
stat /cli_crud/missing
ls /cli_crud
ls -s /cli_crud
ls -R /cli_crud
ls /cli_crud/missing
getAllChildrenNumber /cli_crud
getAllChildrenNumber /cli_crud/missing
getEphemerals /cli_crud/e
sync /cli_crud
sync /cli_crud/missing
delete /cli_crud/a
delete /cli_crud/missing
delete /cli_crud
delete -v 5 /cli_crud/s0000000001
delete -v 0 /cli_crud/s0000000001
delete /zookeeper
deleteall /cli_crud/c
deleteall /cli_crud
ls /cli_crud
deleteall /cli_crud
version
""",
    output="""\
Created /cli_crud
Created /cli_crud/a
Node already exists: /cli_crud/a
Node does not exist: /cli_crud/nope/x
Path must start with / character
Created /cli_crud/s0000000001
Created /cli_crud/s0000000002
Created /cli_crud/e
Created /cli_crud/es0000000004
Created /cli_crud/c
-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.
Created /cli_crud/c/kid
data1
data1
cZxid = Z1
ctime = <date>
mZxid = Z1
mtime = <date>
pZxid = Z1
cversion = 0
dataVersion = 0
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 5
numChildren = 0
Node does not exist: /cli_crud/missing
null
cZxid = Z1
ctime = <date>
mZxid = Z2
mtime = <date>
pZxid = Z1
cversion = 0
dataVersion = 2
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 2
numChildren = 0
version No is not valid : /cli_crud/a
Node does not exist: /cli_crud/missing
cZxid = Z1
ctime = <date>
mZxid = Z3
mtime = <date>
pZxid = Z1
cversion = 0
dataVersion = 3
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 2
numChildren = 0
cZxid = Z4
ctime = <date>
mZxid = Z4
mtime = <date>
pZxid = Z4
cversion = 0
dataVersion = 0
aclVersion = 0
ephemeralOwner = <session>
dataLength = 3
numChildren = 0
cZxid = Z5
ctime = <date>
mZxid = Z5
mtime = <date>
pZxid = Z6
cversion = 1
dataVersion = 0
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 0
numChildren = 1
Node does not exist: /cli_crud/missing
[a, c, e, es0000000004, s0000000001, s0000000002]
[a, c, e, es0000000004, s0000000001, s0000000002]
cZxid = Z7
ctime = <date>
mZxid = Z7
mtime = <date>
pZxid = Z5
cversion = 6
dataVersion = 0
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 0
numChildren = 6
/cli_crud
/cli_crud/a
/cli_crud/c
/cli_crud/e
/cli_crud/es0000000004
/cli_crud/s0000000001
/cli_crud/s0000000002
/cli_crud/c/kid
Node does not exist: /cli_crud/missing
7
Node does not exist: /cli_crud/missing
[/cli_crud/e, /cli_crud/es0000000004]
Sync is OK
Sync is OK
Node does not exist: /cli_crud/missing
Node not empty: /cli_crud
version No is not valid : /cli_crud/s0000000001
Arguments are not valid : /zookeeper
Node does not exist: /cli_crud
Node does not exist: /cli_crud
ZooKeeper CLI version: 3.8.0<build>""",
    events=SESSION_EVENTS,
)

TTL_DISABLED = CliCase(
    script="""\
create /cli_ttl_off
create -t 5000 /cli_ttl_off/t data
ls /cli_ttl_off
""",
    output="""\
Created /cli_ttl_off
KeeperErrorCode = Unimplemented for /cli_ttl_off/t
[]""",
    events=SESSION_EVENTS,
)

TTL = CliCase(
    script="""\
create /cli_ttl
create -t 5000 /cli_ttl/t data
create -t 0 /cli_ttl/t0 data
create -t abc /cli_ttl/t0 data
create -s -t 5000 /cli_ttl/st data
create -e -t 5000 /cli_ttl/et data
create -c -t 5000 /cli_ttl/ct data
stat /cli_ttl/t
ls /cli_ttl
""",
    output="""\
Created /cli_ttl
Created /cli_ttl/t
ttl must be positive and cannot be larger than: 1099511627775
-t argument must be a long value
Created /cli_ttl/st0000000001
TTLs cannot be used with Ephemeral znodes
TTLs cannot be used with Container znodes
cZxid = Z1
ctime = <date>
mZxid = Z1
mtime = <date>
pZxid = Z1
cversion = 0
dataVersion = 0
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 4
numChildren = 0
[st0000000001, t]""",
    events=SESSION_EVENTS,
)

ACL = CliCase(
    script="""\
create /cli_acl x
getAcl /cli_acl
getAcl -s /cli_acl
getAcl /cli_acl/missing
setAcl /cli_acl bogus:x:cdrwa
setAcl -v 7 /cli_acl world:anyone:cdrwa
setAcl -s /cli_acl world:anyone:cdrwa
create /cli_acl/d data digest:alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=:cdrwa
getAcl /cli_acl/d
get /cli_acl/d
set /cli_acl/d y
create /cli_acl/d/kid
addauth digest alice:secret
getAcl /cli_acl/d
get /cli_acl/d
create /cli_acl/d/kid
setAcl /cli_acl/d/kid auth::cdrwa
getAcl /cli_acl/d/kid
setAcl /cli_acl/d digest:alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=:r,world:anyone:r
getAcl /cli_acl/d
delete /cli_acl/d/kid
create /cli_acl/ip x ip:127.0.0.1:cdrwa
getAcl /cli_acl/ip
create /cli_acl/r x world:anyone:r
get /cli_acl/r
set /cli_acl/r y
getAcl /cli_acl/r
setAcl /cli_acl/r world:anyone:cdrwa
create /cli_acl/tree
create /cli_acl/tree/a
create /cli_acl/tree/a/b
setAcl -R /cli_acl/tree world:anyone:cdra
getAcl /cli_acl/tree/a/b
""",
    output="""\
Created /cli_acl
'world,'anyone
: cdrwa
'world,'anyone
: cdrwa
cZxid = Z1
ctime = <date>
mZxid = Z1
mtime = <date>
pZxid = Z1
cversion = 0
dataVersion = 0
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 1
numChildren = 0
Node does not exist: /cli_acl/missing
Acl is not valid : /cli_acl
version No is not valid : /cli_acl
cZxid = Z1
ctime = <date>
mZxid = Z1
mtime = <date>
pZxid = Z1
cversion = 0
dataVersion = 0
aclVersion = 1
ephemeralOwner = 0x0
dataLength = 1
numChildren = 0
Created /cli_acl/d
Insufficient permission : /cli_acl/d
Insufficient permission : /cli_acl/d
Insufficient permission : /cli_acl/d
Insufficient permission : /cli_acl/d/kid
'digest,'alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=
: cdrwa
data
Created /cli_acl/d/kid
'digest,'alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=
: cdrwa
'digest,'alice:x
: r
'world,'anyone
: r
Insufficient permission : /cli_acl/d/kid
Created /cli_acl/ip
'ip,'127.0.0.1
: cdrwa
Created /cli_acl/r
x
Insufficient permission : /cli_acl/r
'world,'anyone
: r
Insufficient permission : /cli_acl/r
Created /cli_acl/tree
Created /cli_acl/tree/a
Created /cli_acl/tree/a/b
'world,'anyone
: cdra""",
    events=SESSION_EVENTS,
)

WHOAMI = CliCase(
    script="""\
whoami
addauth digest bob:pw
whoami
""",
    output="""\
Auth scheme: User
ip: 127.0.0.1
Auth scheme: User
digest: bob
ip: 127.0.0.1""",
    events=SESSION_EVENTS,
)

WATCHES = CliCase(
    script="""\
create /cli_w x
create /cli_w/q
get -w /cli_w
set /cli_w y
ls -w /cli_w
create /cli_w/k
stat -w /cli_w
set /cli_w z
ls -s -w /cli_w
delete /cli_w/k
stat -w /cli_w/later
create /cli_w/later
addWatch /cli_w
set /cli_w w
create /cli_w/k2
addWatch -m PERSISTENT_RECURSIVE /cli_w/q
create /cli_w/q/deep
set /cli_w/q/deep dd
delete /cli_w/q/deep
addWatch -m BOGUS /cli_w
get -w /cli_w/q
removewatches /cli_w/q -d
removewatches /cli_w/q
removewatches /cli_w/none
ls -w /cli_w/q
removewatches /cli_w/q -c
removewatches /cli_w/q -c
get -w /cli_w/q
set /cli_w/q b
""",
    output="""\
Created /cli_w
Created /cli_w/q
x
[q]
Created /cli_w/k
cZxid = Z1
ctime = <date>
mZxid = Z2
mtime = <date>
pZxid = Z3
cversion = 2
dataVersion = 1
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 1
numChildren = 2
[k, q]
cZxid = Z1
ctime = <date>
mZxid = Z4
mtime = <date>
pZxid = Z3
cversion = 2
dataVersion = 2
aclVersion = 0
ephemeralOwner = 0x0
dataLength = 1
numChildren = 2
Node does not exist: /cli_w/later
Created /cli_w/later
Created /cli_w/k2
Created /cli_w/q/deep
addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE
null
KeeperErrorCode = No such watcher for /cli_w/none
[]
KeeperErrorCode = No such watcher for /cli_w/q
null""",
    events="""\
WatchedEvent state:SyncConnected type:None path:null
WatchedEvent state:SyncConnected type:NodeDataChanged path:/cli_w
WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/cli_w
WatchedEvent state:SyncConnected type:NodeDataChanged path:/cli_w
WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/cli_w
WatchedEvent state:SyncConnected type:NodeCreated path:/cli_w/later
WatchedEvent state:SyncConnected type:NodeDataChanged path:/cli_w
WatchedEvent state:SyncConnected type:NodeCreated path:/cli_w/k2
WatchedEvent state:SyncConnected type:NodeCreated path:/cli_w/q/deep
WatchedEvent state:SyncConnected type:NodeDataChanged path:/cli_w/q/deep
WatchedEvent state:SyncConnected type:NodeDeleted path:/cli_w/q/deep
WatchedEvent state:SyncConnected type:DataWatchRemoved path:/cli_w/q
WatchedEvent state:SyncConnected type:PersistentWatchRemoved path:/cli_w/q
WatchedEvent state:SyncConnected type:ChildWatchRemoved path:/cli_w/q
WatchedEvent state:SyncConnected type:NodeDataChanged path:/cli_w/q
WatchedEvent state:Closed type:None path:null""",
)

QUOTA = CliCase(
    script="""\
create /cli_q
create /cli_q/a x
create /cli_q/a/b yy
setquota -n 2 /cli_q/a
listquota /cli_q/a
setquota -b 100 /cli_q/a
listquota /cli_q/a
setquota -N 5 /cli_q/a
setquota -B 50 /cli_q/a
listquota /cli_q/a
setquota -n 5 /cli_q
setquota -n 5 /cli_q/a/b
delquota -n /cli_q/a
listquota /cli_q/a
delquota -b /cli_q/a
listquota /cli_q/a
delquota /cli_q/a
listquota /cli_q/a
listquota /cli_q/none
setquota -n 2 /cli_q/none
delquota /cli_q
setquota /cli_q/a
setquota -n -3 /cli_q/a
""",
    output="""\
Created /cli_q
Created /cli_q/a
Created /cli_q/a/b
absolute path is /zookeeper/quota/cli_q/a/zookeeper_limits
Output quota for /cli_q/a count=2,bytes=-1=;byteHardLimit=-1;countHardLimit=-1
Output stat for /cli_q/a count=2,bytes=3
absolute path is /zookeeper/quota/cli_q/a/zookeeper_limits
Output quota for /cli_q/a count=2,bytes=100=;byteHardLimit=-1;countHardLimit=-1
Output stat for /cli_q/a count=2,bytes=3
absolute path is /zookeeper/quota/cli_q/a/zookeeper_limits
Output quota for /cli_q/a count=2,bytes=100=;byteHardLimit=50;countHardLimit=5
Output stat for /cli_q/a count=2,bytes=3
/cli_q has a child /cli_q/a which has a quota
/cli_q/a/b has a parent /cli_q/a which has a quota
absolute path is /zookeeper/quota/cli_q/a/zookeeper_limits
Output quota for /cli_q/a count=-1,bytes=100=;byteHardLimit=50;countHardLimit=5
Output stat for /cli_q/a count=2,bytes=3
absolute path is /zookeeper/quota/cli_q/a/zookeeper_limits
Output quota for /cli_q/a count=-1,bytes=-1=;byteHardLimit=50;countHardLimit=5
Output stat for /cli_q/a count=2,bytes=3
absolute path is /zookeeper/quota/cli_q/a/zookeeper_limits
quota for /cli_q/a does not exist.
absolute path is /zookeeper/quota/cli_q/none/zookeeper_limits
quota for /cli_q/none does not exist.
/cli_q/none does not exist.
Quota does not exist for /cli_q
org.apache.commons.cli.MissingOptionException: Missing required option: [-n num soft quota, -b bytes soft quota, -N num hard quota, -B bytes hard quota]
the num quota must be greater than zero""",
    events=SESSION_EVENTS,
)

CONFIG = CliCase(
    script="""\
config
config -s
reconfig -add server.5=127.0.0.1:1234:1235;1236
reconfig -remove 5
reconfig -members server.1=127.0.0.1:1234:1235;1236
""",
    output="""\
cZxid = 0x0
ctime = Thu Jan 01 00:00:00 UTC 1970
mZxid = 0x0
mtime = Thu Jan 01 00:00:00 UTC 1970
pZxid = 0x0
cversion = 0
dataVersion = 0
aclVersion = -1
ephemeralOwner = 0x0
dataLength = 0
numChildren = 0
KeeperErrorCode = Reconfig is disabled
KeeperErrorCode = Reconfig is disabled
KeeperErrorCode = Reconfig is disabled""",
    events=SESSION_EVENTS,
)

SESSION = CliCase(
    script="""\
create /cli_s
history
redo 0
redo 99
printwatches
close
ls /cli_s
connect {hosts}
ls /cli_s
delete /cli_s
""",
    output="""\
Created /cli_s
0 - create /cli_s
1 - history
Node already exists: /cli_s
Command index out of range
printwatches is on
Not connected
[]""",
    events="""\
WatchedEvent state:SyncConnected type:None path:null
WatchedEvent state:Closed type:None path:null
WatchedEvent state:SyncConnected type:None path:null
WatchedEvent state:Closed type:None path:null""",
)


@pytest.fixture(scope="module")
def extended_target(target, tmp_path_factory):
    """A second target of the same kind, started with extended types (TTL nodes) enabled
    (standalone for a server kind, as it was written; a mixed one at its ensemble size)."""
    ensemble = start_target(
        target.kind,
        own_target_size(target.kind),
        sysprops=EXTENDED_TYPES,
        workdir=tmp_path_factory.mktemp(f"extended-{target.kind}"),
    )
    yield ensemble
    ensemble.stop()


@pytest.mark.parametrize(
    "case",
    [CRUD, ACL, WHOAMI, WATCHES, QUOTA, TTL_DISABLED],
    ids=["crud", "acl", "whoami", "watches", "quota", "ttl_disabled"],
)
def test_zkcli_script(target, case: CliCase) -> None:
    assert_transcript(run_zkcli(target.hosts, case.script), case)


def test_zkcli_create_ttl(extended_target) -> None:
    assert_transcript(run_zkcli(extended_target.hosts, TTL.script), TTL)


def test_zkcli_config_and_reconfig_disabled(target) -> None:
    if target.size != 1:
        pytest.skip("the expected config text is the standalone one")
    assert_transcript(run_zkcli(target.hosts, CONFIG.script), CONFIG)


def test_zkcli_session_commands(target) -> None:
    script = SESSION.script.format(hosts=target.hosts)
    assert_transcript(run_zkcli(target.hosts, script), SESSION)


def test_zkcli_addauth_unknown_scheme_fails_the_session(target) -> None:
    # addauth is asynchronous in zkCli, so which error the next command sees is a race
    # (observed on Apache: rc=-115 AuthFailed, sometimes rc=-4 ConnectionLoss); the
    # AuthFailed event itself always arrives.
    transcript = run_zkcli(target.hosts, "addauth bogusscheme foo\nsync /\nls /\n")
    assert transcript.output[0] in ("Sync has failed. rc=-115", "Sync has failed. rc=-4")
    assert "WatchedEvent state:AuthFailed type:None path:null" in transcript.events
