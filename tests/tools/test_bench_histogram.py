"""bench/histogram.py: bounded relative error, exact percentiles below 1 ms, merging."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bench.histogram import LatencyHistogram, bucket_of, bucket_value_us


@given(st.integers(min_value=0, max_value=10**8))
def test_bucket_lower_bound_is_within_0_2_percent(latency_us: int) -> None:
    low = bucket_value_us(bucket_of(latency_us))
    assert low <= latency_us
    assert latency_us - low <= max(0, latency_us) * 0.002


@given(st.integers(min_value=0, max_value=10**8), st.integers(min_value=0, max_value=10**8))
def test_buckets_are_monotonic(a: int, b: int) -> None:
    if a <= b:
        assert bucket_of(a) <= bucket_of(b)


def test_percentiles_of_a_known_distribution() -> None:
    histogram = LatencyHistogram()
    for value in range(1, 1001):  # 1..1000 us, one each
        histogram.record(value)
    assert histogram.percentile_us(0.5) == 500
    assert histogram.percentile_us(0.99) == 990
    assert histogram.percentile_us(0.999) == 999
    assert histogram.total == 1000


def test_merge_and_sparse_round_trip() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    a.record(10)
    b.record(5000)
    b.record(5000)
    a.merge(LatencyHistogram.from_sparse(b.to_sparse()))
    assert a.total == 3 and a.percentile_us(1.0) == bucket_value_us(bucket_of(5000))


def test_empty_histogram_reports_zero() -> None:
    assert LatencyHistogram().percentile_us(0.99) == 0
