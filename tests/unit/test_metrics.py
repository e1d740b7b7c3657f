"""ServerMetrics (pyzk/metrics.py): AvgMinMaxCounter math, the Prometheus median, the names."""

from __future__ import annotations

import math

from pyzk.metrics import COUNTER_NAMES, QUANTILE_WINDOW_S, SUMMARY_NAMES, ServerMetrics, Summary


def test_a_summary_reports_apaches_five_keys_with_a_half_up_rounded_average() -> None:
    summary = Summary("fsynctime")
    assert summary.monitor_values() == [("avg_fsynctime", 0.0), ("min_fsynctime", 0), ("max_fsynctime", 0),
                                        ("cnt_fsynctime", 0), ("sum_fsynctime", 0)]
    for value in (4, 1.9, 2):  # whole milliseconds: 1.9 ms counts as 1, as Java's toMillis
        summary.add(value)
    assert summary.monitor_values() == [("avg_fsynctime", 2.3333), ("min_fsynctime", 1), ("max_fsynctime", 4),
                                        ("cnt_fsynctime", 3), ("sum_fsynctime", 7)]
    summary.add(0)
    assert dict(summary.monitor_values())["avg_fsynctime"] == 1.75


def test_the_median_is_over_the_recent_window_and_nan_without_samples() -> None:
    now = [0.0]
    summary = Summary("snapshottime", clock=lambda: now[0])
    assert math.isnan(summary.median())
    for value in (100, 1, 2, 3):
        summary.add(value)
    assert summary.median() == 2.0
    now[0] = QUANTILE_WINDOW_S + 1
    assert math.isnan(summary.median())  # all older than the window
    assert summary.count == 4 and summary.total == 106  # _count/_sum keep everything


def test_server_metrics_lists_every_summary_in_apaches_order_and_zero_counters() -> None:
    metrics = ServerMetrics()
    keys = [k for k, _ in metrics.summary_values()]
    assert keys[:5] == ["avg_startup_txns_load_time", "min_startup_txns_load_time", "max_startup_txns_load_time",
                        "cnt_startup_txns_load_time", "sum_startup_txns_load_time"]
    assert len(keys) == 5 * len(SUMMARY_NAMES)
    assert metrics.counter_values() == dict.fromkeys(COUNTER_NAMES, 0)


def test_restore_without_replayed_txns_records_no_txn_load() -> None:
    metrics = ServerMetrics()
    metrics.record_restore(3.0, 0, None, 5.0)
    assert (metrics.startup_snap_load_time.count, metrics.dbinittime.total) == (1, 5)
    assert metrics.startup_txns_loaded.count == metrics.startup_txns_load_time.count == 0
    metrics.record_restore(1.0, 42, 7.5, 9.0)
    assert (metrics.startup_txns_loaded.total, metrics.startup_txns_load_time.total) == (42, 7)
