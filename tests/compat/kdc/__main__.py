"""Install MIT Kerberos when absent, start a throw-away realm and print its environment.

Rule: the KDC lives exactly as long as this process: with a command after ``--`` it runs the
command with the realm's environment and stops the KDC when it ends; without one it prints
``export`` lines and holds the KDC until SIGINT/SIGTERM or ``--hold-s`` seconds.

    python -m tests.compat.kdc -- python -m pytest --pyargs kazoo.tests.test_sasl
    python -m tests.compat.kdc --realm-dir /tmp/realm --hold-s 600
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.compat.kdc.realm import KazooKdc, KdcError, ensure_krb5_installed

HOLD_S = 3600.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realm-dir", type=Path, default=None)
    parser.add_argument("--hold-s", type=float, default=HOLD_S)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    realm_dir = args.realm_dir or Path(tempfile.mkdtemp(prefix="kazoo-kdc-"))
    try:
        ensure_krb5_installed()
        with KazooKdc(realm_dir) as kdc:
            for name, value in kdc.env.items():
                print(f"export {name}={shlex.quote(value)}", flush=True)
            print(
                f"# krb5kdc pid {kdc.process.pid} on 127.0.0.1:{kdc.kdc_port}",
                flush=True,
            )
            if command:
                return subprocess.run(
                    command, check=False, env={**os.environ, **kdc.env}
                ).returncode
            stopped = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stopped.set())
            stopped.wait(args.hold_s)
            return 0
    except KdcError as error:
        print(f"kdc: {error}", file=sys.stderr)
        return 1
    finally:
        if args.realm_dir is None:
            shutil.rmtree(realm_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
