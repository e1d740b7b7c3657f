"""The compat suites' masking helpers keep relations and drop only what differs by nature."""

from tests.compat.normalize import (
    ZxidLabeler,
    cli_lines,
    extract_watch_events,
    mask_c_line,
    mask_cli_output,
    sort_unordered,
)


def test_cli_lines_drop_jvm_noise_and_watcher_markers() -> None:
    raw = "SLF4J: x\nConnecting to 127.0.0.1:5\n\nWATCHER::\n\nWatchedEvent state:X\nCreated /a\n"
    text, events = extract_watch_events(raw)
    assert (cli_lines(text), events) == (["Created /a"], ["WatchedEvent state:X"])


def test_zxids_are_relabelled_in_order_and_relations_survive() -> None:
    lines = ["cZxid = 0x1f", "ctime = Sun Nov 22 04:55:02 UTC 2026", "mZxid = 0x20", "pZxid = 0x1f"]
    assert mask_cli_output(lines) == ["cZxid = Z1", "ctime = <date>", "mZxid = Z2", "pZxid = Z1"]


def test_epoch_date_zero_zxid_and_owner_are_kept_or_masked() -> None:
    lines = ["mZxid = 0x0", "mtime = Thu Jan 01 00:00:00 UTC 1970", "ephemeralOwner = 0x1000a"]
    assert mask_cli_output(lines) == [
        "mZxid = 0x0",
        "mtime = Thu Jan 01 00:00:00 UTC 1970",
        "ephemeralOwner = <session>",
    ]


def test_c_client_lines() -> None:
    zxids = ZxidLabeler()
    assert mask_c_line("\tctime = Sun Nov 22 04:55:02 2026", zxids) == "\tctime = <date>"
    assert mask_c_line("\tczxid=1f", zxids) == "\tczxid=Z1"
    assert mask_c_line("Got a new session id: 0x1000004b4e90005", zxids) == (
        "Got a new session id: <session>"
    )
    assert mask_c_line("time = 7 msec", zxids) == "time = <ms>"


def test_hash_ordered_output_is_sorted() -> None:
    lines = ["[/a/es1, /a/e]", "Auth scheme: User", "ip: 127.0.0.1", "digest: bob", "Created /x"]
    assert sort_unordered(lines) == [
        "[/a/e, /a/es1]",
        "Auth scheme: User",
        "digest: bob",
        "ip: 127.0.0.1",
        "Created /x",
    ]


def test_watch_events_printed_inside_a_line_are_cut_out_and_the_line_rejoined() -> None:
    # Seen in CI: zkCli's event thread printed while `ls` was writing "[k, q]" piecewise.
    raw = ("Created /cli_w/k\n[\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeChildrenChanged"
           " path:/cli_w\nk, q]\nnumChildren = 2\n\nWATCHER::\n\nWatchedEvent state:Closed type:None path:null\n")
    text, events = extract_watch_events(raw)
    assert cli_lines(text) == ["Created /cli_w/k", "[k, q]", "numChildren = 2"]
    assert events == ["WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/cli_w",
                      "WatchedEvent state:Closed type:None path:null"]
