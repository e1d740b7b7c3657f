"""Latency histogram with bounded relative error, cheap enough to record every reply.

Rule: values are microseconds; below 1024 us each value has its own bucket, above that a
bucket keeps the top 10 significant bits (error < 0.2 %). Histograms from several
processes merge by adding counts, so percentiles are exact over the whole run.
"""

from dataclasses import dataclass, field

_EXACT_LIMIT_US = 1024
_MANTISSA_BITS = 10
_HALF = 1 << (_MANTISSA_BITS - 1)  # 512
_BUCKET_COUNT = _EXACT_LIMIT_US + 40 * _HALF  # covers values far beyond any run length


def bucket_of(latency_us: int) -> int:
    if latency_us < _EXACT_LIMIT_US:
        return max(0, latency_us)
    shift = latency_us.bit_length() - _MANTISSA_BITS
    return _EXACT_LIMIT_US + (shift - 1) * _HALF + ((latency_us >> shift) - _HALF)


def bucket_value_us(bucket: int) -> int:
    """The smallest latency that falls in the bucket."""
    if bucket < _EXACT_LIMIT_US:
        return bucket
    shift, mantissa = divmod(bucket - _EXACT_LIMIT_US, _HALF)
    return (mantissa + _HALF) << (shift + 1)


@dataclass
class LatencyHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * _BUCKET_COUNT)

    def record(self, latency_us: int) -> None:
        self.counts[bucket_of(latency_us)] += 1

    def merge(self, other: "LatencyHistogram") -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def percentile_us(self, fraction: float) -> int:
        """The latency at or below which `fraction` of the recorded values lie (0 if empty)."""
        total = self.total
        if total == 0:
            return 0
        rank = max(1, int(fraction * total + 0.999999))
        seen = 0
        for bucket, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return bucket_value_us(bucket)
        raise AssertionError("rank beyond total")

    def mean_us(self) -> float:
        total = self.total
        if total == 0:
            return 0.0
        return sum(bucket_value_us(b) * c for b, c in enumerate(self.counts) if c) / total

    def to_sparse(self) -> dict[int, int]:
        return {b: c for b, c in enumerate(self.counts) if c}

    @classmethod
    def from_sparse(cls, sparse: dict[int, int]) -> "LatencyHistogram":
        histogram = cls()
        for bucket, count in sparse.items():
            histogram.counts[int(bucket)] += count
        return histogram
