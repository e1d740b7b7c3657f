"""The throw-away KDC's profiles and environment point only inside its own realm directory."""

from __future__ import annotations

from pathlib import Path

from tests.compat.kdc.realm import (
    REALM,
    kdc_conf_text,
    krb5_conf_text,
    realm_env,
)

REALM_DIR = Path("/run/kdc-x")


def profile_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_krb5_conf_names_the_loopback_kdc_and_the_realm_cache() -> None:
    lines = profile_lines(krb5_conf_text(REALM_DIR, 41234))
    assert f"default_realm = {REALM}" in lines
    assert "kdc = 127.0.0.1:41234" in lines
    assert f"default_ccache_name = FILE:{REALM_DIR}/ccache" in lines
    # kazoo's client asks for zookeeper/127.0.0.1: no DNS may rewrite that host.
    assert "rdns = false" in lines
    assert "dns_canonicalize_hostname = false" in lines


def test_kdc_conf_keeps_database_and_listeners_in_the_run() -> None:
    lines = profile_lines(kdc_conf_text(REALM_DIR, 41234))
    assert "kdc_listen = 127.0.0.1:41234" in lines
    assert "kdc_tcp_listen = 127.0.0.1:41234" in lines
    paths = [line.split("=", 1)[1].strip() for line in lines if "/" in line]
    assert paths
    assert all(
        path.removeprefix("FILE:").startswith(f"{REALM_DIR}/") for path in paths
    ), paths


def test_env_is_what_kazoo_harness_and_kinit_read() -> None:
    env = realm_env(REALM_DIR)
    assert env == {
        "KRB5_TEST_ENV": str(REALM_DIR),
        "KRB5_CONFIG": f"{REALM_DIR}/krb5.conf",
        "KRB5_KDC_PROFILE": f"{REALM_DIR}/kdc.conf",
        "KRB5CCNAME": f"FILE:{REALM_DIR}/ccache",
    }
