"""The ensemble runs' figures: CPU per op over the members, medians, ratios, Markdown, JSON.

Rule: as in report.py, a table figure is the median over rounds of one case on one target,
and a ratio is pyzk's median over Apache's from the same invocation. Server CPU per op is
the CPU the members' processes spent in the measured window (utime + stime from
/proc/<pid>/stat) over the verified ops: summed over every member, and the leader's alone.
"""

import json
from pathlib import Path

from bench import report
from bench.report import Case

METRICS = ("ops_per_s", "p50_us", "p99_us", "p999_us", "server_cpu_us_per_op", "leader_cpu_us_per_op")


def member_cpu_figures(
    member_cpu_us_per_op: tuple[float | None, ...] | list[float | None], leader: int | None
) -> tuple[float | None, float | None]:
    """(all members summed, the leader's) CPU µs per op; None where a member's is unknown."""
    values = list(member_cpu_us_per_op)
    total = round(sum(values), 2) if values and all(v is not None for v in values) else None  # type: ignore[misc]
    leader_value = values[leader] if leader is not None and 0 <= leader < len(values) else None
    return total, leader_value


def medians(runs: list[dict[str, object]]) -> dict[str, dict[str, dict[str, float]]]:
    return report.medians(runs, METRICS)


def ratios(table: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return report.ratios(table, METRICS)


def _num(values: dict[str, float] | None, metric: str, fmt: str = ",.0f") -> str:
    if not values or values.get(metric) is None:
        return "—"
    return format(values[metric], fmt)


def _ratio(by_case: dict[str, float], metric: str) -> str:
    return f"{by_case[metric]:.2f}" if metric in by_case else "—"


def _load(values: object) -> str:
    return " ".join(f"{v:.2f}" for v in values) if isinstance(values, list | tuple) else "?"  # type: ignore[union-attr]


def markdown(result: dict[str, object], cases: list[Case]) -> str:
    table: dict[str, dict[str, dict[str, float]]] = result["medians"]  # type: ignore[assignment]
    ratio: dict[str, dict[str, float]] = result["ratios"]  # type: ignore[assignment]
    lines = [
        f"# pyzk vs Apache ZooKeeper, 3-server ensembles — {result['stamp']}",
        "",
        f"Machine: {result['machine']}",
        f"Config: {result['config']}",
        "",
    ]
    for target, status in result["targets"].items():  # type: ignore[attr-defined]
        lines.append(f"- **{target}**: {status['summary']}")
    lines += [
        "",
        "Medians over rounds. Latency in µs. Server CPU = µs of CPU per verified op in the measured",
        "window, summed over the members (all) and the leader's alone. Ratio = pyzk / Apache.",
        "",
        (
            "| case | conns×outstanding | Apache ops/s | Apache p50 / p99 | Apache CPU/op all / leader "
            "| pyzk ops/s | pyzk p50 / p99 | pyzk CPU/op all / leader | ops ratio | p99 ratio | CPU/op ratio |"
        ),
        "|---|---|---:|---|---|---:|---|---|---:|---:|---:|",
    ]
    for case in cases:
        by_target = table.get(case.name, {})
        cells = []
        for target in ("apache", "pyzk"):
            values = by_target.get(target)
            cells += [
                _num(values, "ops_per_s"),
                f"{_num(values, 'p50_us')} / {_num(values, 'p99_us')}",
                f"{_num(values, 'server_cpu_us_per_op', '.1f')} / {_num(values, 'leader_cpu_us_per_op', '.1f')}",
            ]
        r = ratio.get(case.name, {})
        lines.append(
            f"| {case.name} | {case.shape} | {' | '.join(cells)} | {_ratio(r, 'ops_per_s')} "
            f"| {_ratio(r, 'p99_us')} | {_ratio(r, 'server_cpu_us_per_op')} |"
        )
    lines += [
        "",
        "Rounds (A B A B ...): start-up = launch of the 3 members until all accept a session and",
        "srvr shows one leader and two followers; load average (1/5/15 min) at the round's start",
        "and end; RSS of each member after the round.",
        "",
        "| target | round | start-up s | leader | load avg start | load avg end | RSS MiB per member |",
        "|---|---:|---:|---|---|---|---|",
    ]
    for entry in result.get("rounds", []):  # type: ignore[attr-defined]
        rss = entry.get("rss_kib_after_round") or []
        rss_text = " / ".join("?" if v is None else f"{v / 1024:.0f}" for v in rss) or "—"
        startup = entry.get("startup_s")
        lines.append(
            f"| {entry['target']} | {entry['round']} | {'—' if startup is None else startup} "
            f"| {entry.get('leader') or '—'} | {_load(entry.get('load_start'))} "
            f"| {_load(entry.get('load_end'))} | {rss_text} |"
        )
    notes = [run for run in result["runs"] if run.get("note")]  # type: ignore[attr-defined]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {n['target']} round {n['round']} {n['case']}: {n['note']}" for n in notes]
    errors = [run for run in result["runs"] if run.get("error")]  # type: ignore[attr-defined]
    if errors:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {e['target']} round {e['round']} {e['case']}: {e['error']}" for e in errors]
    lines.append("")
    return "\n".join(lines)


def write(result: dict[str, object], cases: list[Case], directory: Path) -> list[Path]:
    """<stamp>-ensemble.json and <stamp>-ensemble.md in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{result['stamp']}-ensemble.json"
    md_path = directory / f"{result['stamp']}-ensemble.md"
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    md_path.write_text(markdown(result, cases))
    return [json_path, md_path]
