"""Quorum SASL DIGEST-MD5 (quorum.auth.*): pyzk-only and mixed ensembles, with and without TLS.

Every member gets quorum.auth.enableSasl, learnerRequireSasl and serverRequireSasl, and a JAAS
file (-Djava.security.auth.login.config, both kinds) with a QuorumServer section (the user
"learner") and a QuorumLearner section logging in as it. A member whose QuorumLearner password
is wrong never joins while the others take writes (the others refuse it on the quorum port);
with the right one it joins and catches up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compat.targets import Ensemble, Server, TargetStartError, start_target, sysprop_args
from tests.compat.test_mixed import start_with_leader, wait_leader
from tests.compat.test_quorum_tls import (
    CFG,
    KINDS,
    START_TIMEOUT_S,
    Certs,
    check_refused_then_admitted,
    fail_over,
    write_and_agree,
)

pytestmark = pytest.mark.compat

J, P = "apache", "pyzk"
NEEDS_PYZK = pytest.mark.skipif(P not in KINDS, reason="needs pyzk in PYZK_TARGETS")
NEEDS_BOTH = pytest.mark.skipif(not {J, P} <= KINDS, reason="mixed ensembles need apache and pyzk")
SASL_CFG: dict[str, str | None] = {
    **CFG,
    "quorum.auth.enableSasl": "true",
    "quorum.auth.learnerRequireSasl": "true",
    "quorum.auth.serverRequireSasl": "true",
}


def jaas(path: Path, learner_password: str = "learnerpw") -> Path:
    path.write_text(
        "QuorumServer {\n"
        "  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
        '  user_learner="learnerpw";\n'
        "};\n"
        "QuorumLearner {\n"
        "  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
        '  username="learner"\n'
        f'  password="{learner_password}";\n'
        "};\n")
    return path


def jaas_props(path: Path) -> dict[str, str]:
    return {"java.security.auth.login.config": str(path)}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("quorum-sasl-certs"))


def sasl_successes(server: Server) -> int:
    return server.log_path.read_text(errors="replace").count("Successfully completed the authentication using SASL")


def check_wrong_password_refused(ens: Ensemble, rogue: Server, bad_jaas: Path) -> None:
    """`rogue` restarts logging in with a wrong password: it never joins; then it does."""
    good_flags = list(rogue.sysprop_flags)

    def make_rogue() -> None:
        rogue.sysprop_flags = sysprop_args(jaas_props(bad_jaas))

    def restore() -> None:
        rogue.sysprop_flags = good_flags

    check_refused_then_admitted(ens, rogue, make_rogue, restore)


@NEEDS_PYZK
def test_pyzk_ensemble_with_quorum_sasl(tmp_path: Path) -> None:
    good = jaas(tmp_path / "jaas.conf")
    with start_target(P, 3, SASL_CFG, jaas_props(good), workdir=tmp_path,
                      start_timeout_s=START_TIMEOUT_S) as ens:
        leader = wait_leader(ens)
        write_and_agree(ens, "/sasl", 10)
        assert all(sasl_successes(s) > 0 for s in ens.servers)
        rogue = ens.servers[0] if leader is not ens.servers[0] else ens.servers[1]
        check_wrong_password_refused(ens, rogue, jaas(tmp_path / "bad.conf", "wrong"))
        fail_over(ens, "/sasl-failover")


@NEEDS_BOTH
# One tuple per case: a bare kind name would put the mixed case in that kind's matrix column.
@pytest.mark.parametrize("case", [([J, P, P], P, True), ([P, J, J], J, False)],
                         ids=["pyzk-leads-java-with-tls", "java-leads-pyzk"])
def test_mixed_ensemble_with_quorum_sasl(certs: Certs, case: tuple[list[str], str, bool], tmp_path: Path) -> None:
    kinds, leader_kind, tls = case
    good = jaas(tmp_path / "jaas.conf")
    cfg = {**certs.cfg(), **SASL_CFG} if tls else SASL_CFG
    ens = start_with_leader(kinds, lambda s: s.kind == leader_kind, f"no {leader_kind} server", tmp_path,
                            cfg, jaas_props(good))
    with ens:
        write_and_agree(ens, "/sasl", 10)
        assert all(sasl_successes(s) > 0 for s in ens.servers), [sasl_successes(s) for s in ens.servers]
        # The odd member (server 1) with a wrong password: refused by the other kind.
        check_wrong_password_refused(ens, ens.servers[0], jaas(tmp_path / "bad.conf", "wrong"))
        fail_over(ens, "/sasl-failover")


@NEEDS_PYZK
@pytest.mark.parametrize(("jaas_text", "reason"), [
    (None, "needs a JAAS file"),
    ("QuorumServer {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n user_a=\"b\";\n};\n",
     "'QuorumLearner' could not be found"),
    ("QuorumServer {\n com.sun.security.auth.module.Krb5LoginModule required\n useKeyTab=true\n"
     " keyTab=\"/k\"\n principal=\"zkquorum/localhost@EXAMPLE.COM\";\n};\n"
     "QuorumLearner {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n"
     " username=\"a\"\n password=\"b\";\n};\n", "QuorumServer' (Krb5LoginModule) needs storeKey=true"),
], ids=["no-jaas", "no-learner-section", "kerberos-without-storekey"])
def test_quorum_sasl_that_cannot_run_stops_start_up(jaas_text: str | None, reason: str, tmp_path: Path) -> None:
    props: dict[str, str] = {}
    if jaas_text is not None:
        path = tmp_path / "jaas.conf"
        path.write_text(jaas_text)
        props = jaas_props(path)
    with pytest.raises(TargetStartError) as caught:
        start_target(P, 3, SASL_CFG, props, workdir=tmp_path, start_timeout_s=20.0).stop()
    assert reason in str(caught.value)
