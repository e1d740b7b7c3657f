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


def test_srst_resets_the_metrics_with_the_default_provider_only() -> None:
    from pyzk.pipeline.stats import ServerStats

    for resets in (True, False):
        stats = ServerStats(resets_metrics=resets)
        stats.metrics.proposal_count = 7
        stats.metrics.fsynctime.add(12)
        stats.metrics.fsync_threshold_exceed_count = 2
        stats.reset()
        values = dict(stats.metrics.summary_values())
        if resets:  # ServerStats.reset -> ServerMetrics.resetAll (DefaultMetricsProvider)
            assert (stats.metrics.proposal_count, values["cnt_fsynctime"], values["max_fsynctime"]) == (0, 0, 0)
            assert stats.metrics.fsynctime.median() != stats.metrics.fsynctime.median()  # NaN: no samples
        else:  # PrometheusMetricsProvider.resetAllValues: not supported
            assert (stats.metrics.proposal_count, values["cnt_fsynctime"]) == (7, 1)
        assert stats.metrics.fsync_threshold_exceed_count == 2  # ServerStats.reset keeps it


def test_an_add_racing_a_reset_does_not_undo_it() -> None:
    from pyzk.metrics import Summary

    summary = Summary("fsynctime")
    summary.add(5)

    class ResetWhileRead(tuple):
        """The aggregate as the log thread reads it while srst resets on the event loop."""

        def __iter__(self):  # type: ignore[no-untyped-def]
            summary.reset()
            return super().__iter__()

    summary._aggregate = ResetWhileRead(summary._aggregate)
    summary.add(9)  # computed from the pre-reset aggregate: dropped
    assert (summary.count, summary.total) == (0, 0)
    summary.add(4)
    assert (summary.count, summary.total) == (1, 4)
