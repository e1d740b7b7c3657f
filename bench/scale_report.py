"""Turn the scale rounds into medians, pyzk/Apache ratios, Markdown and JSON.

Rule (as bench/report.py): a figure is the median over the rounds of one target that
measured it; a ratio is pyzk's median over Apache's from the same invocation. Each row says
which way is better, since some are sizes and times (lower) and some are rates (higher).
"""

import json
import statistics
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    metric: str
    label: str
    better: str  # "lower", "higher" or "" (context, not a target)
    digits: int = 0


ROWS = (
    Row("rss_per_znode_bytes", "RSS per znode, bytes ((loaded - empty) / nodes)", "lower"),
    Row("rss_empty_mib", "RSS of the empty server, MiB", "", 1),
    Row("rss_loaded_mib", "RSS with the tree loaded, MiB", "", 1),
    Row("build_s", "build time, s (pipelined creates, forceSync=no)", "", 1),
    Row("restart_s", "restart to serving, s (launch -> session established)", "lower", 2),
    Row("rss_after_restart_mib", "RSS right after the restart, MiB", "", 1),
    Row("rss_per_znode_after_restart_bytes", "RSS per znode right after the restart, bytes", ""),
    Row("startup_snapshot_s", "launch -> start-up snapshot of the tree on disk, s", "", 2),
    Row("get_children_1x1.ops_per_s", "getChildren of the wide parent, 1x1: ops/s", "higher"),
    Row("get_children_1x1.p50_us", "getChildren 1x1: p50 µs", "lower"),
    Row("get_children_1x1.p99_us", "getChildren 1x1: p99 µs", "lower"),
    Row("get_children_1x1.p999_us", "getChildren 1x1: p999 µs", "lower"),
    Row("get_children_1x4.ops_per_s", "getChildren of the wide parent, 1x4: ops/s", "higher"),
    Row("get_children_1x4.p50_us", "getChildren 1x4: p50 µs", "lower"),
    Row("get_children_1x4.p99_us", "getChildren 1x4: p99 µs", "lower"),
    Row("get_children_1x4.p999_us", "getChildren 1x4: p999 µs", "lower"),
    Row("set_steady.ops_per_s", "setData at a fixed rate, no snapshot: ops/s", ""),
    Row("set_steady.p50_us", "setData, no snapshot: p50 µs", "lower"),
    Row("set_steady.p99_us", "setData, no snapshot: p99 µs", "lower"),
    Row("set_steady.p999_us", "setData, no snapshot: p999 µs", "lower"),
    Row("set_steady.snapshots_in_window", "snapshots written in that window (should be 0)", ""),
    Row("set_during_snapshot.ops_per_s", "the same setData load during a snapshot: ops/s", ""),
    Row("set_during_snapshot.p50_us", "setData during a snapshot: p50 µs", "lower"),
    Row("set_during_snapshot.p99_us", "setData during a snapshot: p99 µs", "lower"),
    Row("set_during_snapshot.p999_us", "setData during a snapshot: p999 µs", "lower"),
    Row("set_during_snapshot.snapshots_in_window", "snapshots written in that window", ""),
    Row("set_during_snapshot.snapshot_write_s", "its write time, s (log roll -> file complete)", "", 2),
)


def medians(rounds: list[dict[str, object]]) -> dict[str, dict[str, float]]:
    """{target: {metric: median over the rounds that measured it}}."""
    values: dict[str, dict[str, list[float]]] = {}
    for record in rounds:
        by_metric = values.setdefault(str(record["target"]), {})
        for metric, value in record["metrics"].items():  # type: ignore[attr-defined]
            by_metric.setdefault(metric, []).append(float(value))
    return {
        target: {metric: float(statistics.median(v)) for metric, v in by_metric.items()}
        for target, by_metric in values.items()
    }


def ratios(table: dict[str, dict[str, float]]) -> dict[str, float]:
    """pyzk / Apache for every metric both measured (and Apache's is not zero)."""
    apache, pyzk = table.get("apache", {}), table.get("pyzk", {})
    return {
        metric: round(pyzk[metric] / apache[metric], 3)
        for metric in apache.keys() & pyzk.keys()
        if apache[metric]
    }


def _figure(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _snapshots_text(seen: list[dict[str, object]]) -> str:
    return "; ".join(
        f"{s['name']} started {s['started_s']:+.2f}, complete "
        f"{'?' if s['done_s'] is None else format(s['done_s'], '+.2f')}, "
        f"{s['size_bytes'] / 1e6:.1f} MB"  # type: ignore[operator]
        for s in seen
    ) or "none"


def markdown(report: dict[str, object]) -> str:
    table: dict[str, dict[str, float]] = report["medians"]  # type: ignore[assignment]
    ratio: dict[str, float] = report["ratios"]  # type: ignore[assignment]
    lines = [
        f"# pyzk vs Apache ZooKeeper, scale runs — {report['stamp']}",
        "",
        f"Machine: {report['machine']}",
        f"Config: {report['config']}",
        "",
        "Medians over rounds; ratio = pyzk / Apache (better: which direction favours a server).",
        "",
        "| measure | better | Apache | pyzk | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for row in ROWS:
        apache = table.get("apache", {}).get(row.metric)
        pyzk = table.get("pyzk", {}).get(row.metric)
        ratio_text = f"{ratio[row.metric]:.2f}" if row.metric in ratio else "—"
        lines.append(
            f"| {row.label} | {row.better or '·'} | {_figure(apache, row.digits)} "
            f"| {_figure(pyzk, row.digits)} | {ratio_text} |"
        )
    heading = ("Snapshots seen during each setData window (s from the window's start; "
               "started = the log roll that begins it):")
    lines += ["", heading, ""]
    for record in report["rounds"]:  # type: ignore[attr-defined]
        for case in ("set_steady", "set_during_snapshot"):
            seen = record["details"].get(f"{case}.snapshots_seen")
            if seen is not None:
                lines.append(f"- {record['target']} round {record['round']} {case}: {_snapshots_text(seen)}")
    failed = [r for r in report["rounds"] if r["error"]]  # type: ignore[attr-defined]
    if failed:
        lines += ["", "Failed rounds:", ""]
        lines += [f"- {r['target']} round {r['round']}: {r['error']}" for r in failed]
    lines.append("")
    return "\n".join(lines)


def write(report: dict[str, object], directory: Path) -> list[Path]:
    """Add medians and ratios to the report; write <stamp>-scale.json and .md."""
    report["medians"] = medians(report["rounds"])  # type: ignore[arg-type]
    report["ratios"] = ratios(report["medians"])  # type: ignore[arg-type]
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{report['stamp']}-scale.json"
    md_path = directory / f"{report['stamp']}-scale.md"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path.write_text(markdown(report))
    return [json_path, md_path]
