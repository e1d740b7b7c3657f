"""Run each abuse of tests/compat/test_abuse.py on Apache ZooKeeper 3.8 and on pyzk, back to
back, and print a table: the healthy client's p99 on each and the servers' RSS growth.

    python -m tests.compat.abuse_compare [--rounds N] [--abuses acl-entries,idle-2k,...]

Rule 1: every (abuse, kind) run gets a fresh standalone server (loopback, free ports,
maxClientCnxns=0), stopped by PID before the next starts, so one abuse's leftovers (memory,
sessions) never count against another's.
Rule 2: by hand only (not collected by pytest: the name does not start with test_).  The
acceptance it reports: under every abuse pyzk's healthy p99 <= Apache's; pyzk's RSS growth
is shown beside Apache's, and test_abuse.py's bounds (64-256 MiB) hold.  The exit status is
1 when a row's pyzk p99 is above Apache's, so a run can be repeated to tell noise from a
regression (the machine may be shared).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.compat.targets import TARGET_KINDS
from tests.compat.test_abuse import ABUSES, AbuseResult, start_abuse_target


def run_one(name: str, kind: str, workdir: Path) -> AbuseResult:
    ensemble = start_abuse_target(kind, workdir)
    try:
        return ABUSES[name](ensemble, f"/abuse_{name.replace('-', '_')}")
    finally:
        ensemble.stop()


def table(rows: list[tuple[str, AbuseResult, AbuseResult]]) -> str:
    lines = ["| abuse | Apache healthy p99 | pyzk healthy p99 | pyzk <= Apache | pyzk RSS growth | Apache RSS growth |",
             "|---|---|---|---|---|---|"]
    for name, apache, pyzk in rows:
        lines.append(
            f"| {pyzk.abuse} ({name}) | {apache.p99_s * 1000:.0f} ms | {pyzk.p99_s * 1000:.0f} ms | "
            f"{'yes' if pyzk.p99_s <= apache.p99_s else 'NO'} | "
            f"+{pyzk.growth_mib:.0f} MiB ({pyzk.rss_before_kib // 1024} -> {pyzk.rss_peak_kib // 1024}) | "
            f"+{apache.growth_mib:.0f} MiB ({apache.rss_before_kib // 1024} -> {apache.rss_peak_kib // 1024}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--abuses", default=",".join(ABUSES))
    args = parser.parse_args(argv)
    names = [name for name in args.abuses.split(",") if name]
    unknown = sorted(set(names) - set(ABUSES))
    if unknown:
        parser.error(f"unknown abuses {unknown}; known: {', '.join(ABUSES)}")
    worse = 0
    with tempfile.TemporaryDirectory(prefix="abuse-compare-") as tmp:
        for round_no in range(1, args.rounds + 1):
            rows = []
            for name in names:
                results = {kind: run_one(name, kind, Path(tmp) / f"r{round_no}-{name}-{kind}")
                           for kind in TARGET_KINDS}
                rows.append((name, results["apache"], results["pyzk"]))
                worse += results["pyzk"].p99_s > results["apache"].p99_s
            print(f"\nround {round_no} of {args.rounds}:\n{table(rows)}\n", flush=True)
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
