"""Turn the side-by-side runs into medians, pyzk/Apache ratios, Markdown, JSON and a plot.

Rule: a figure in the table is the median over rounds of the same case on the same target;
a ratio is pyzk's median over Apache's from the same invocation, never from another day.
Throughput ratios above 1 favour pyzk; latency ratios below 1 favour pyzk.
"""

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

METRICS = ("ops_per_s", "p50_us", "p99_us", "p999_us")


@dataclass(frozen=True)
class Case:
    name: str
    workload: str
    connections: int
    outstanding: int
    processes: int = 1
    rate_ops_s: float | None = None
    in_table: bool = True  # sweep-only points feed the plot, not the table

    @property
    def shape(self) -> str:
        text = f"{self.connections}x{self.outstanding}"
        if self.processes > 1:
            text += f" /{self.processes}p"
        if self.rate_ops_s:
            text += f" @{self.rate_ops_s:,.0f}/s"
        return text


def medians(
    runs: list[dict[str, object]], metrics: tuple[str, ...] = METRICS
) -> dict[str, dict[str, dict[str, float]]]:
    """{case: {target: {metric: median, "rounds": n}}} over the successful runs; a metric a
    run lacks (None: e.g. a CPU figure that could not be read) is left out of its median."""
    grouped: dict[tuple[str, str], list[dict[str, object]]] = {}
    for run in runs:
        if run.get("error") is None:
            grouped.setdefault((str(run["case"]), str(run["target"])), []).append(run)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for (case, target), group in grouped.items():
        values: dict[str, float] = {}
        for m in metrics:
            present = [float(r[m]) for r in group if r.get(m) is not None]  # type: ignore[arg-type]
            if present:
                values[m] = float(statistics.median(present))
        values["rounds"] = len(group)
        table.setdefault(case, {})[target] = values
    return table


def ratios(
    table: dict[str, dict[str, dict[str, float]]], metrics: tuple[str, ...] = METRICS
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for case, by_target in table.items():
        apache, pyzk = by_target.get("apache"), by_target.get("pyzk")
        if apache and pyzk:
            out[case] = {
                m: round(pyzk[m] / apache[m], 3) for m in metrics if apache.get(m) and m in pyzk
            }
    return out


def _cell(values: dict[str, float] | None) -> tuple[str, str]:
    if not values:
        return "—", "—"
    latency = f"{values['p50_us']:.0f} / {values['p99_us']:.0f} / {values['p999_us']:.0f}"
    return f"{values['ops_per_s']:,.0f}", latency


def markdown(report: dict[str, object], cases: list[Case]) -> str:
    table = report["medians"]
    ratio = report["ratios"]
    lines = [
        f"# pyzk vs Apache ZooKeeper — {report['stamp']}",
        "",
        f"Machine: {report['machine']}",
        f"Config: {report['config']}",
        "",
    ]
    for target, status in report["targets"].items():  # type: ignore[attr-defined]
        lines.append(f"- **{target}**: {status['summary']}")
    lines += [
        "",
        "Medians over rounds. Latency in µs (p50 / p99 / p999). Ratio = pyzk / Apache.",
        "",
        (
            "| case | workload | conns×outstanding | Apache ops/s | Apache latency | pyzk ops/s "
            "| pyzk latency | ops ratio | p99 ratio |"
        ),
        "|---|---|---|---:|---|---:|---|---:|---:|",
    ]
    for case in cases:
        if not case.in_table:
            continue
        by_target = table.get(case.name, {})  # type: ignore[attr-defined]
        a_ops, a_lat = _cell(by_target.get("apache"))
        p_ops, p_lat = _cell(by_target.get("pyzk"))
        r = ratio.get(case.name, {})  # type: ignore[attr-defined]
        ops_ratio = f"{r['ops_per_s']:.2f}" if "ops_per_s" in r else "—"
        p99_ratio = f"{r['p99_us']:.2f}" if "p99_us" in r else "—"
        lines.append(
            f"| {case.name} | {case.workload} | {case.shape} | {a_ops} | {a_lat} | {p_ops} "
            f"| {p_lat} | {ops_ratio} | {p99_ratio} |"
        )
    errors = [run for run in report["runs"] if run.get("error")]  # type: ignore[attr-defined]
    if errors:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {e['target']} round {e['round']} {e['case']}: {e['error']}" for e in errors]
    lines.append("")
    return "\n".join(lines)


def plot(
    report: dict[str, object], cases: list[Case], workloads: tuple[str, ...], path: Path
) -> bool:
    """Throughput vs p99 latency, one panel per workload, one line per target. False if
    matplotlib is missing (it is a bench-only dependency)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    table = report["medians"]
    figure, axes = plt.subplots(1, len(workloads), figsize=(6 * len(workloads), 4.5))
    for axis, workload in zip(axes if len(workloads) > 1 else [axes], workloads):
        for target, style in (("apache", "o-"), ("pyzk", "s--")):
            points = sorted(  # in order of concurrency, so the line follows the sweep
                (case.connections * case.outstanding, v["ops_per_s"], v["p99_us"] / 1000.0, case.shape)
                for case in cases
                if case.workload == workload and not case.rate_ops_s
                for v in [table.get(case.name, {}).get(target)]  # type: ignore[attr-defined]
                if v
            )
            if points:
                axis.plot([p[1] for p in points], [p[2] for p in points], style, label=target)
                for _concurrency, ops, p99, shape in points:
                    axis.annotate(shape, (ops, p99), fontsize=7, xytext=(3, 3), textcoords="offset points")
        axis.set_title(f"{workload}: throughput vs p99 (conns×outstanding)")
        axis.set_xlabel("ops/s (median over rounds)")
        axis.set_ylabel("p99 latency, ms")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
        if axis.get_lines():
            axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write(report: dict[str, object], cases: list[Case], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / str(report["stamp"])
    json_path = stem.with_suffix(".json")
    md_path = stem.with_suffix(".md")
    png_path = directory / f"{report['stamp']}-throughput-latency.png"
    written = [json_path, md_path]
    if plot(report, cases, ("get", "set"), png_path):
        written.append(png_path)
        report["plot"] = png_path.name
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_text = markdown(report, cases)
    if png_path in written:
        md_text += f"\n![throughput vs latency]({png_path.name})\n"
    md_path.write_text(md_text)
    return written
