"""deploy/: the container recipe agrees with pyzk.envconfig and the wheel's console scripts;
the systemd unit passes `systemd-analyze verify` (where systemd-analyze exists)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from pyzk import envconfig

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
UNIT = ROOT / "deploy" / "pyzk.service"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in joined.splitlines() if line.strip()]


def test_dockerfile_matches_the_official_images_conventions() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    froms = [args for name, args in instructions if name == "FROM"]
    assert froms and all(args.startswith("python:3.11-slim") for args in froms)
    env: dict[str, str] = {}
    for name, args in instructions:
        if name == "ENV":
            env.update(dict(pair.split("=", 1) for pair in args.split()))
    assert {key: env[key] for key in envconfig.IMAGE_DEFAULTS} == envconfig.IMAGE_DEFAULTS
    assert env["ZOOCFGDIR"] == env["ZOO_CONF_DIR"]
    last = {name: args for name, args in instructions}
    assert last["USER"] not in ("root", "0")
    assert json.loads(last["VOLUME"]) == ["/data", "/datalog", "/logs"]
    assert last["EXPOSE"].split() == ["2181", "2888", "3888", "8080"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert json.loads(last["ENTRYPOINT"]) == ["pyzk-docker-entrypoint"]
    assert json.loads(last["CMD"]) == ["zkServer", "start-foreground"]
    assert {"pyzk-docker-entrypoint", "zkServer"} <= set(scripts)


def test_systemd_unit_settings() -> None:
    text = UNIT.read_text()
    for line in ("Type=simple", "Restart=on-failure", "User=pyzk", "LimitNOFILE=65536",
                 "ExecStart=/opt/pyzk/bin/zkServer start-foreground /etc/pyzk/zoo.cfg"):
        assert f"\n{line}\n" in text, line


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart's program exists: point it at one that does.
    unit = tmp_path / "pyzk.service"
    unit.write_text(UNIT.read_text().replace("/opt/pyzk/bin/zkServer", shutil.which("true") or "/bin/true"))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
