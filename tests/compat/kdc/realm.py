"""A throw-away MIT Kerberos realm for kazoo's GSSAPI tests, on loopback, owned by one run.

Rule 1: nothing outside ``realm_dir`` is written: krb5.conf, kdc.conf, the KDC database,
keytabs, the ticket cache and the logs all live there, and the environment returned by
``KazooKdc.env`` points every Kerberos library, tool and JVM at them.
Rule 2: the realm and principals are the ones kazoo's harness expects (its init_krb5.sh):
realm KAZOOTEST.ORG, ``client`` in client.keytab, ``zookeeper/127.0.0.1`` in server.keytab,
both under ``KRB5_TEST_ENV``.
Rule 3: krb5kdc runs in the foreground (``-n``) as our child, on a free port (UDP and TCP),
is waited for with a bound, and is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

REALM = "KAZOOTEST.ORG"
CLIENT_PRINCIPAL = f"client@{REALM}"
SERVER_PRINCIPAL = f"zookeeper/127.0.0.1@{REALM}"
CLIENT_KEYTAB = "client.keytab"
SERVER_KEYTAB = "server.keytab"
LOOPBACK = "127.0.0.1"
INSTALL_SCRIPT = Path(__file__).resolve().parent / "install_krb5.sh"
KRB5_TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit")
# Only guards the database; the realm is deleted with its directory.
MASTER_PASSWORD = "kazootest-master"
INSTALL_TIMEOUT_S = 600.0
ADMIN_TIMEOUT_S = 30.0
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.1
PORT_ATTEMPTS = 20


class KdcError(RuntimeError):
    """The KDC could not be installed, set up or started; the message says why."""


def krb5_conf_text(realm_dir: Path, kdc_port: int) -> str:
    """The client-side profile (kinit, the kerberos module, the JVM) for the realm."""
    return f"""[logging]
 default = FILE:{realm_dir}/krb5libs.log

[libdefaults]
 default_realm = {REALM}
 dns_lookup_realm = false
 dns_lookup_kdc = false
 dns_canonicalize_hostname = false
 rdns = false
 ticket_lifetime = 24h
 renew_lifetime = 7d
 forwardable = true
 default_ccache_name = FILE:{realm_dir}/ccache

[realms]
 {REALM} = {{
  kdc = {LOOPBACK}:{kdc_port}
 }}
"""


def kdc_conf_text(realm_dir: Path, kdc_port: int) -> str:
    """The KDC-side profile (krb5kdc, kdb5_util, kadmin.local) for the realm."""
    return f"""[kdcdefaults]
 kdc_listen = {LOOPBACK}:{kdc_port}
 kdc_tcp_listen = {LOOPBACK}:{kdc_port}

[logging]
 kdc = FILE:{realm_dir}/krb5kdc.log
 admin_server = FILE:{realm_dir}/kadmind.log

[realms]
 {REALM} = {{
  database_name = {realm_dir}/principal
  key_stash_file = {realm_dir}/stash
  acl_file = {realm_dir}/kadm5.acl
  max_life = 24h
  max_renewable_life = 7d
 }}
"""


def realm_env(realm_dir: Path) -> dict[str, str]:
    """The variables kazoo's tests, kinit and the harness's JVM read to find the realm."""
    return {
        "KRB5_TEST_ENV": str(realm_dir),
        "KRB5_CONFIG": str(realm_dir / "krb5.conf"),
        "KRB5_KDC_PROFILE": str(realm_dir / "kdc.conf"),
        "KRB5CCNAME": f"FILE:{realm_dir}/ccache",
    }


def free_udp_tcp_port() -> int:
    """A loopback port free for both TCP and UDP now (the KDC listens on both)."""
    for _ in range(PORT_ATTEMPTS):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
        return port
    raise KdcError(f"no port free for both TCP and UDP in {PORT_ATTEMPTS} attempts")


def missing_krb5_tools() -> list[str]:
    return [tool for tool in KRB5_TOOLS if tool_path(tool) is None]


def tool_path(tool: str) -> str | None:
    # kdb5_util and friends live in /usr/sbin, which a non-root PATH may lack.
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def ensure_krb5_installed() -> None:
    """Run install_krb5.sh when a Kerberos tool is missing; KdcError if still missing."""
    if not missing_krb5_tools():
        return
    try:
        completed = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise KdcError(
            f"{INSTALL_SCRIPT.name} timed out after {error.timeout} s"
        ) from error
    missing = missing_krb5_tools()
    if missing:
        raise KdcError(
            f"Kerberos tools {missing} missing after {INSTALL_SCRIPT.name} "
            f"(exit {completed.returncode}): {completed.stderr.strip()[-400:]}"
        )


class KazooKdc:
    """One realm in ``realm_dir`` and its running krb5kdc; use as a context manager."""

    def __init__(self, realm_dir: Path) -> None:
        self.realm_dir = realm_dir.resolve()
        self.kdc_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return realm_env(self.realm_dir)

    @property
    def log_path(self) -> Path:
        return self.realm_dir / "krb5kdc.stderr.log"

    def _tool_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def _admin(self, *args: str) -> None:
        tool = tool_path(args[0])
        if tool is None:
            raise KdcError(f"{args[0]} is not installed")
        try:
            completed = subprocess.run(
                [tool, *args[1:]],
                env=self._tool_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=ADMIN_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise KdcError(f"{args[0]} timed out after {error.timeout} s") from error
        if completed.returncode != 0:
            raise KdcError(
                f"{' '.join(args)} failed (exit {completed.returncode}): "
                f"{(completed.stderr or completed.stdout).strip()[-400:]}"
            )

    def create_realm(self) -> None:
        """Write both profiles, create the database and the two principals' keytabs."""
        self.realm_dir.mkdir(parents=True, exist_ok=True)
        self.kdc_port = free_udp_tcp_port()
        (self.realm_dir / "krb5.conf").write_text(
            krb5_conf_text(self.realm_dir, self.kdc_port)
        )
        (self.realm_dir / "kdc.conf").write_text(
            kdc_conf_text(self.realm_dir, self.kdc_port)
        )
        (self.realm_dir / "kadm5.acl").write_text("")
        self._admin("kdb5_util", "create", "-s", "-r", REALM, "-P", MASTER_PASSWORD)
        for principal, keytab in (
            (CLIENT_PRINCIPAL, CLIENT_KEYTAB),
            (SERVER_PRINCIPAL, SERVER_KEYTAB),
        ):
            self._admin(
                "kadmin.local", "-r", REALM, "-q", f"addprinc -randkey {principal}"
            )
            self._admin(
                "kadmin.local",
                "-r",
                REALM,
                "-q",
                f"ktadd -k {self.realm_dir / keytab} -norandkey {principal}",
            )

    def add_principal(self, principal: str, keytab: str) -> Path:
        """Another principal with a random key, exported to ``realm_dir / keytab``."""
        path = self.realm_dir / keytab
        self._admin("kadmin.local", "-r", REALM, "-q", f"addprinc -randkey {principal}")
        self._admin("kadmin.local", "-r", REALM, "-q", f"ktadd -k {path} -norandkey {principal}")
        return path

    def _serving(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(POLL_INTERVAL_S)
            return probe.connect_ex((LOOPBACK, self.kdc_port)) == 0

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Create the realm and run krb5kdc until its TCP port accepts, within timeout_s."""
        self.create_realm()
        kdc = tool_path("krb5kdc")
        if kdc is None:
            raise KdcError("krb5kdc is not installed")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [kdc, "-n", "-r", REALM],
                env=self._tool_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KdcError(
                    f"krb5kdc exited with {self.process.returncode}: "
                    f"{self.log_path.read_text(errors='replace')[-400:]}"
                )
            if self._serving():
                return
            time.sleep(POLL_INTERVAL_S)
        self.stop()
        raise KdcError(
            f"krb5kdc did not listen on port {self.kdc_port} in {timeout_s} s"
        )

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM krb5kdc by its PID, SIGKILL after timeout_s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout_s)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
