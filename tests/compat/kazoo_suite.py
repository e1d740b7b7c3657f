"""Run kazoo 2.11.0's shipped test suite, unmodified, against one target and ensemble size.

Rule 1: kazoo's own harness starts the servers; it runs ``java ... QuorumPeerMain zoo.cfg``
through PATH, where tests/compat/shim/java picks Apache or pyzk (PYZK_SHIM_TARGET).
Rule 2: the run is bounded: ``--timeout`` per test (pytest-timeout) and ``suite_timeout_s``
overall; a target that cannot start at all is found by a preflight start in seconds.
Rule 3: kazoo's harness uses fixed ports (offset + 10*i + 0..4); the offset is chosen among
windows that are free right now, below the kernel's ephemeral port range.
Rule 4: the two GSSAPI tests get a throw-away KDC (tests/compat/kdc) for the run's duration,
unless KRB5_TEST_ENV already names one; a KDC that cannot start is logged, and they skip.

    python -m tests.compat.kazoo_suite --target apache --size 3
    python -m tests.compat.kazoo_suite --target mixed --size 3   # server 1 pyzk, 2-3 Apache
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.compat.kdc.realm import KazooKdc, KdcError, ensure_krb5_installed
from tests.compat.pytest_run import (
    CaseOutcome,
    SuiteRun,
    collect_outcomes,
    elapsed_since,
    run_pytest_bounded,
    target_start_id,
)
from tests.compat.targets import (
    APACHE_CLASSPATH,
    ENSEMBLE_TARGETS,
    LOOPBACK,
    log_tail,
    target_start_error,
)

SHIM_DIR = Path(__file__).resolve().parent / "shim"
KAZOO_SPEC = importlib.util.find_spec("kazoo")
assert KAZOO_SPEC is not None and KAZOO_SPEC.origin is not None, (
    "kazoo is not installed"
)
KAZOO_PACKAGE_DIR = Path(KAZOO_SPEC.origin).parent
ZOOKEEPER_VERSION = "3.8.0"
TEST_TIMEOUT_S = 120
# One harness test run first: if kazoo's own harness cannot start the target and connect to
# it, the suite would spend minutes per test in connection retries.
CANARY_TEST = "tests/test_client.py::TestClient::test_connected"
CANARY_TIMEOUT_S = 120.0
SUITE_TIMEOUT_S = 25 * 60
PORT_OFFSET_FIRST = 20000
PORT_OFFSET_LAST = 32000
PORT_OFFSET_STEP = 100
PORTS_PER_SERVER = 10


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port_offset(size: int) -> int:
    """The first offset whose whole port window for ``size`` servers is free now."""
    for offset in range(PORT_OFFSET_FIRST, PORT_OFFSET_LAST, PORT_OFFSET_STEP):
        if all(
            _port_free(port) for port in range(offset, offset + PORTS_PER_SERVER * size)
        ):
            return offset
    raise RuntimeError(
        f"no free port window for {size} servers in {PORT_OFFSET_FIRST}.."
    )


def kazoo_env(
    kind: str, size: int, port_offset: int, base_env: dict[str, str]
) -> dict[str, str]:
    """The environment kazoo's harness reads, with the java shim first on PATH.

    Everything else (CI, KRB5_* for the GSSAPI tests) passes through from ``base_env``.
    """
    env = dict(base_env)
    env.update(
        {
            "PATH": f"{SHIM_DIR}{os.pathsep}{base_env.get('PATH', '')}",
            "PYZK_SHIM_TARGET": kind,
            "ZOOKEEPER_VERSION": ZOOKEEPER_VERSION,
            "ZOOKEEPER_CLASSPATH": APACHE_CLASSPATH,
            "ZOOKEEPER_CLUSTER_SIZE": str(size),
            "ZOOKEEPER_PORT_OFFSET": str(port_offset),
        }
    )
    return env


def kazoo_pytest_args(
    junit_path: Path, test_timeout_s: int, selection: str = ""
) -> list[str]:
    """pytest on kazoo.tests, or on one ``selection`` (a node id under the package)."""
    tests = (
        [str(KAZOO_PACKAGE_DIR / selection)]
        if selection
        else ["--pyargs", "kazoo.tests"]
    )
    return [
        sys.executable,
        "-m",
        "pytest",
        *tests,
        # Node ids relative to site-packages read kazoo.tests.test_client::TestClient::...
        f"--rootdir={KAZOO_PACKAGE_DIR.parent}",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit_path}",
        f"--timeout={test_timeout_s}",
        "-q",
        "-rfEs",
    ]


def harness_canary_error(env: dict[str, str], workdir: Path) -> str | None:
    """Run CANARY_TEST through kazoo's harness; None if it passed, else its log tail."""
    workdir.mkdir(parents=True, exist_ok=True)
    junit_path = workdir / "junit.xml"
    log_path = workdir / "pytest.log"
    exit_code, timed_out = run_pytest_bounded(
        kazoo_pytest_args(junit_path, int(CANARY_TIMEOUT_S) - 30, CANARY_TEST),
        env,
        cwd=workdir,
        log_path=log_path,
        timeout_s=CANARY_TIMEOUT_S,
    )
    if exit_code == 0 and not timed_out:
        return None
    return (
        f"kazoo harness canary {CANARY_TEST} failed (exit {exit_code}); log {log_path}:\n"
        + (log_tail(log_path))
    )


@contextlib.contextmanager
def gssapi_kdc_env(workdir: Path) -> Iterator[dict[str, str]]:
    """The environment of a KDC running for the block, or {} (and why, on stderr) if none."""
    if os.environ.get("KRB5_TEST_ENV"):
        yield {}
        return
    if importlib.util.find_spec("kerberos") is None:
        print(
            "kazoo_suite: no `kerberos` module, the GSSAPI tests skip", file=sys.stderr
        )
        yield {}
        return
    kdc = KazooKdc(workdir / "kdc")
    try:
        ensure_krb5_installed()
        kdc.start()
    except (KdcError, OSError) as error:
        print(f"kazoo_suite: no KDC, the GSSAPI tests skip: {error}", file=sys.stderr)
        yield {}
        return
    try:
        yield kdc.env
    finally:
        kdc.stop()


def run_kazoo_suite(
    kind: str,
    size: int,
    workdir: Path,
    suite_timeout_s: float = SUITE_TIMEOUT_S,
    test_timeout_s: int = TEST_TIMEOUT_S,
) -> SuiteRun:
    """Run the suite once; outcomes keyed ``kazoo[<size>]::<module>::<Class>::<test>``."""
    started = time.monotonic()
    run = SuiteRun("kazoo", kind, size)
    workdir.mkdir(parents=True, exist_ok=True)
    run.start_error = target_start_error(kind, size, workdir / "preflight")
    with (
        gssapi_kdc_env(workdir)
        if run.start_error is None
        else contextlib.nullcontext({})
    ) as kdc_env:
        env = kazoo_env(kind, size, free_port_offset(size), {**os.environ, **kdc_env})
        if run.start_error is None:
            run.start_error = harness_canary_error(env, workdir / "canary")
        run.outcomes[target_start_id("kazoo", size)] = CaseOutcome(
            "failed" if run.start_error else "passed", (run.start_error or "")[:300]
        )
        if run.start_error is None:
            junit_path = workdir / "junit.xml"
            # cwd outside the repository, so that pyzk's pytest configuration does not apply.
            run.exit_code, run.timed_out = run_pytest_bounded(
                kazoo_pytest_args(junit_path, test_timeout_s),
                env,
                cwd=workdir,
                log_path=workdir / "pytest.log",
                timeout_s=suite_timeout_s - elapsed_since(started),
            )
            collect_outcomes(run, junit_path)
    run.duration_s = elapsed_since(started)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=ENSEMBLE_TARGETS, default="apache")
    parser.add_argument("--size", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--suite-timeout-s", type=float, default=SUITE_TIMEOUT_S)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(
        tempfile.mkdtemp(prefix=f"kazoo-{args.target}-{args.size}-")
    )
    run = run_kazoo_suite(args.target, args.size, workdir, args.suite_timeout_s)
    print(
        f"kazoo[{args.size}] on {args.target}: {run.counts()} in {run.duration_s}s"
        f"{' (timed out)' if run.timed_out else ''}; log {workdir / 'pytest.log'}"
    )
    for key, result in sorted(run.outcomes.items()):
        if result.outcome != "passed":
            print(f"  {result.outcome:8} {key}  {result.message[:160]}")
    return 0 if run.start_error is None and not run.timed_out else 1


if __name__ == "__main__":
    sys.exit(main())
