"""The scale runs' pure parts: the tree's shape, reply sizes, snapCount choice, srvr
parsing, snapshot timelines, and the report's medians and ratios."""

import pytest

from bench import scale_tree
from bench.scale import scale_cfg_text
from bench.scale_report import markdown, medians, ratios


def test_tree_has_exactly_the_nodes_asked_for_and_parents_first() -> None:
    shape = scale_tree.TreeShape(nodes=5_000, children=1_200)
    paths = list(shape.paths())
    assert len(paths) == len(set(paths)) == 5_000
    created = {"/"}
    for path in paths:
        parent = path.rpartition("/")[0] or "/"
        assert parent in created, path
        created.add(path)
    wide = [p for p in paths if p.startswith(scale_tree.WIDE_PARENT + "/")]
    assert len(wide) == 1_200
    per_parent: dict[str, int] = {}
    for path in paths:
        parent = path.rpartition("/")[0]
        if parent not in (scale_tree.ROOT, scale_tree.WIDE_PARENT, ""):
            per_parent[parent] = per_parent.get(parent, 0) + 1
    assert max(per_parent.values()) == scale_tree.CHILDREN_PER_PARENT


def test_tree_too_small_for_its_wide_parent_is_refused() -> None:
    with pytest.raises(ValueError):
        scale_tree.TreeShape(nodes=101, children=100)


def test_a_getchildren_reply_of_100000_names_fits_jute_maxbuffer() -> None:
    names = scale_tree.TreeShape(nodes=1_000_000, children=100_000).wide_child_names()
    assert names[0] == "c00000" and names[-1] == "c99999"
    assert scale_tree.get_children_reply_length(names) == 16 + 4 + 100_000 * 10
    assert scale_tree.get_children_reply_length(names) <= 0xFFFFF


def test_get_children_request_is_path_then_watch_false() -> None:
    assert scale_tree.get_children_request("/a") == b"\x00\x00\x00\x02/a\x00"


def test_rss_per_znode_is_the_growth_over_the_node_count() -> None:
    assert scale_tree.rss_per_znode_bytes(30_000, 130_000, 200_000) == pytest.approx(512.0)


def test_parse_srvr_reads_zxid_and_node_count() -> None:
    text = (
        "Zookeeper version: 3.8.0-x, built on 2024\nLatency min/avg/max: 0/0.0/0\n"
        "Received: 5\nSent: 4\nConnections: 1\nOutstanding: 0\nZxid: 0x1e8490\n"
        "Mode: standalone\nNode count: 1000005\n"
    )
    assert scale_tree.parse_srvr(text) == {"zxid": 0x1E8490, "node_count": 1_000_005}


def test_snap_count_puts_the_first_snapshot_in_the_window_and_none_before() -> None:
    rate, before_s, window_s, setup = 2000.0, 12.0, 30.0, 1026
    snap_count = scale_tree.snap_count_for(rate, before_s, window_s, setup)
    earliest_s, latest_s = scale_tree.snapshot_due_window_s(snap_count, rate, before_s, setup)
    assert 0.0 < earliest_s < latest_s < window_s
    # the earliest possible snapshot (snapCount/2 txns) comes after everything before the window
    assert snap_count / 2 > setup + rate * before_s


def test_snapshots_seen_pairs_tmp_files_and_log_rolls() -> None:
    second = 1_000_000_000
    first_seen = {
        "log.100": 2 * second,  # the roll that starts the first snapshot
        "snapshot.ff.tmp": 4 * second,
        "snapshot.ff": 6 * second,  # renamed into place when complete
        "log.200": 8 * second,
        "snapshot.1ff": 8 * second,  # written in place (Apache)
    }
    last_change = {"snapshot.ff": 6 * second, "snapshot.1ff": 9 * second}
    sizes = {"snapshot.ff": 500, "snapshot.1ff": 700}
    seen = scale_tree.snapshots_seen(first_seen, last_change, sizes, window_start_ns=1 * second)
    assert [(s.name, s.started_s, s.done_s, s.size_bytes) for s in seen] == [
        ("snapshot.ff", 1.0, 5.0, 500),
        ("snapshot.1ff", 7.0, 8.0, 700),
    ]


def test_scale_cfg_switches_force_sync_and_adds_snap_count(tmp_path) -> None:  # type: ignore[no-untyped-def]
    build = scale_cfg_text(tmp_path, 2181, force_sync=False, snap_count=None)
    assert "forceSync=no" in build and "forceSync=yes" not in build and "snapCount" not in build
    measure = scale_cfg_text(tmp_path, 2181, force_sync=True, snap_count=5000)
    assert "forceSync=yes" in measure and measure.endswith("snapCount=5000\n")


def _round(target: str, index: int, **metrics: float) -> dict[str, object]:
    return {"target": target, "round": index, "metrics": metrics, "details": {}, "error": None}


def test_medians_and_ratios_over_rounds() -> None:
    rounds = [
        _round("apache", 0, restart_s=4.0, rss_per_znode_bytes=900.0),
        _round("pyzk", 0, restart_s=2.0),
        _round("apache", 1, restart_s=6.0, rss_per_znode_bytes=1100.0),
        _round("pyzk", 1, restart_s=3.0, rss_per_znode_bytes=500.0),
        _round("apache", 2, restart_s=5.0),
        _round("pyzk", 2, restart_s=4.0),
    ]
    table = medians(rounds)
    assert table["apache"] == {"restart_s": 5.0, "rss_per_znode_bytes": 1000.0}
    assert table["pyzk"] == {"restart_s": 3.0, "rss_per_znode_bytes": 500.0}
    assert ratios(table) == {"restart_s": 0.6, "rss_per_znode_bytes": 0.5}


def test_markdown_lists_the_ratio_and_a_failed_round() -> None:
    rounds = [_round("apache", 0, restart_s=5.0), _round("pyzk", 0, restart_s=3.0)]
    rounds.append({**_round("pyzk", 1), "error": "build: OSError: boom"})
    table = medians(rounds)
    report = {"stamp": "s", "machine": "m", "config": "c", "rounds": rounds,
              "medians": table, "ratios": ratios(table)}
    text = markdown(report)
    assert "| restart to serving, s (launch -> session established) | lower | 5.00 | 3.00 | 0.60 |" in text
    assert "- pyzk round 1: build: OSError: boom" in text
