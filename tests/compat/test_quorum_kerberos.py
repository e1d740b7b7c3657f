"""Quorum SASL with Kerberos (GSSAPI): pyzk-only and mixed ensembles against a throw-away KDC.

A module-scoped MIT KDC (tests/compat/kdc, realm KAZOOTEST.ORG on loopback) holds
zkquorum/127.0.0.1 (every member's QuorumServer and QuorumLearner login, one keytab) and
zkquorum/rogue.invalid (a valid principal whose host is no server.N host). Every member gets
quorum.auth.enableSasl, learnerRequireSasl, serverRequireSasl and
quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST, the JAAS file and
-Djava.security.krb5.conf (both kinds; the environment names the realm too). A member whose
learner logs in as the rogue principal is refused by the other kind (SaslQuorumServerCallbackHandler's
host check) and never joins; with the right login it joins and catches up.
Without a KDC (krb5 not installable) the tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.compat.kdc.realm import REALM, KazooKdc, KdcError, ensure_krb5_installed
from tests.compat.targets import Ensemble, Server, start_target, sysprop_args
from tests.compat.test_mixed import start_with_leader, wait_leader
from tests.compat.test_quorum_sasl import NEEDS_BOTH, NEEDS_PYZK, SASL_CFG, sasl_successes
from tests.compat.test_quorum_tls import START_TIMEOUT_S, check_refused_then_admitted, fail_over, write_and_agree

pytestmark = pytest.mark.compat

J, P = "apache", "pyzk"
HOST = "127.0.0.1"
QUORUM_PRINCIPAL = f"zkquorum/{HOST}@{REALM}"
ROGUE_PRINCIPAL = f"zkquorum/rogue.invalid@{REALM}"
KRB_CFG: dict[str, str | None] = {**SASL_CFG, "quorum.auth.kerberos.servicePrincipal": "zkquorum/_HOST"}


@dataclass(frozen=True)
class Realm:
    kdc: KazooKdc
    quorum_keytab: Path
    rogue_keytab: Path

    @property
    def krb5_conf(self) -> Path:
        return self.kdc.realm_dir / "krb5.conf"


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    """The KDC for this module, its environment exported to the servers we start."""
    kdc = KazooKdc(tmp_path_factory.mktemp("quorum-kdc"))
    try:
        ensure_krb5_installed()
        kdc.start()
        found = Realm(kdc, kdc.add_principal(QUORUM_PRINCIPAL, "quorum.keytab"),
                      kdc.add_principal(ROGUE_PRINCIPAL, "rogue.keytab"))
    except (KdcError, OSError) as error:
        kdc.stop()
        if os.environ.get("CI"):
            pytest.fail(f"no KDC under CI: {error}")
        pytest.skip(f"no KDC can be started here: {error}")
    saved = {name: os.environ.get(name) for name in kdc.env}
    os.environ.update(kdc.env)
    try:
        yield found
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        kdc.stop()
        shutil.rmtree(kdc.realm_dir, ignore_errors=True)


def krb5_module(principal: str, keytab: Path) -> str:
    return ("  com.sun.security.auth.module.Krb5LoginModule required\n"
            f'  useKeyTab=true\n  keyTab="{keytab}"\n  storeKey=true\n  useTicketCache=false\n'
            f'  principal="{principal}";\n')


def jaas(path: Path, realm: Realm, rogue: bool = False) -> Path:
    learner = krb5_module(ROGUE_PRINCIPAL, realm.rogue_keytab) if rogue else \
        krb5_module(QUORUM_PRINCIPAL, realm.quorum_keytab)
    path.write_text("QuorumServer {\n" + krb5_module(QUORUM_PRINCIPAL, realm.quorum_keytab) + "};\n"
                    "QuorumLearner {\n" + learner + "};\n")
    return path


def props(jaas_path: Path, realm: Realm) -> dict[str, str]:
    return {"java.security.auth.login.config": str(jaas_path), "java.security.krb5.conf": str(realm.krb5_conf)}


def check_rogue_refused(ens: Ensemble, rogue: Server, realm: Realm, workdir: Path) -> None:
    """`rogue` restarts with its learner logging in as zkquorum/rogue.invalid: never joins."""
    good_flags = list(rogue.sysprop_flags)
    bad = props(jaas(workdir / "rogue-jaas.conf", realm, rogue=True), realm)

    def make_rogue() -> None:
        rogue.sysprop_flags = sysprop_args(bad)

    def restore() -> None:
        rogue.sysprop_flags = good_flags

    check_refused_then_admitted(ens, rogue, make_rogue, restore)
    others = [s for s in ens.servers if s is not rogue]
    assert any(f"{ROGUE_PRINCIPAL} is not authorized to connect" in s.log_path.read_text(errors="replace")
               for s in others), "no member logged the rogue's refusal"


def test_gssapi_exchange_both_ways_in_process(realm: Realm) -> None:
    """pyzk's GSSAPI learner against pyzk's server, with and without mutual authentication
    (Java's GssKrb5Client asks for none: the server then sends its offer at once)."""
    import gssapi

    from pyzk.sasl import SaslError
    from pyzk.server.quorum_sasl import authorize_learner, learner_target
    from pyzk.server.sasl_gssapi import GssapiClient, GssapiServer, credentials_name, initiator_credentials

    def server() -> GssapiServer:
        return GssapiServer(str(realm.quorum_keytab), QUORUM_PRINCIPAL,
                            authorize=lambda authn, authz: authorize_learner(authn, authz, frozenset({HOST})))

    creds = initiator_credentials(QUORUM_PRINCIPAL, str(realm.quorum_keytab), None)
    me = credentials_name(creds)
    assert me == QUORUM_PRINCIPAL
    target = learner_target("zkquorum/_HOST", HOST, me, None)
    client, accept = GssapiClient(creds, target, me), server()
    token = client.evaluate(b"")
    for _ in range(4):
        challenge = accept.evaluate(token or b"")
        if accept.complete:
            break
        token = client.evaluate(challenge or b"")
    assert client.complete and accept.complete and accept.authorized_id == QUORUM_PRINCIPAL

    # No mutual authentication: the offer comes with the first answer.
    ctx = gssapi.SecurityContext(name=gssapi.Name(target, gssapi.NameType.kerberos_principal), creds=creds,
                                 usage="initiate", flags=gssapi.RequirementFlag.integrity)
    accept = server()
    offer = accept.evaluate(ctx.step(None))
    assert ctx.complete and offer and not accept.complete
    assert ctx.unwrap(offer).message[0] & 1
    accept.evaluate(ctx.wrap(b"\x01\x00\x00\x00" + me.encode(), False).message)
    assert accept.complete

    rogue = initiator_credentials(ROGUE_PRINCIPAL, str(realm.rogue_keytab), None)
    client, accept = GssapiClient(rogue, target, credentials_name(rogue)), server()
    with pytest.raises(SaslError, match=f"{ROGUE_PRINCIPAL} is not authorized to connect"):
        token = client.evaluate(b"")
        for _ in range(4):
            token = client.evaluate(accept.evaluate(token or b"") or b"")


@NEEDS_PYZK
def test_pyzk_ensemble_with_quorum_kerberos(realm: Realm, tmp_path: Path) -> None:
    good = jaas(tmp_path / "jaas.conf", realm)
    with start_target(P, 3, KRB_CFG, props(good, realm), workdir=tmp_path,
                      start_timeout_s=START_TIMEOUT_S) as ens:
        leader = wait_leader(ens)
        write_and_agree(ens, "/krb", 10)
        assert all(sasl_successes(s) > 0 for s in ens.servers)
        assert all("GSSAPI as zkquorum/127.0.0.1" in s.log_path.read_text(errors="replace") for s in ens.servers)
        rogue = ens.servers[0] if leader is not ens.servers[0] else ens.servers[1]
        check_rogue_refused(ens, rogue, realm, tmp_path)
        fail_over(ens, "/krb-failover")


@NEEDS_BOTH
# One tuple per case: a bare kind name would put the mixed case in that kind's matrix column.
@pytest.mark.parametrize("case", [([J, P, P], P), ([P, J, J], J)],
                         ids=["pyzk-leads-java", "java-leads-pyzk"])
def test_mixed_ensemble_with_quorum_kerberos(realm: Realm, case: tuple[list[str], str], tmp_path: Path) -> None:
    kinds, leader_kind = case
    good = jaas(tmp_path / "jaas.conf", realm)
    ens = start_with_leader(kinds, lambda s: s.kind == leader_kind, f"no {leader_kind} server", tmp_path,
                            KRB_CFG, props(good, realm))
    with ens:
        write_and_agree(ens, "/krb", 10)
        assert all(sasl_successes(s) > 0 for s in ens.servers), [sasl_successes(s) for s in ens.servers]
        # The odd member (server 1) logs in as the rogue: refused by the other kind.
        check_rogue_refused(ens, ens.servers[0], realm, tmp_path)
        fail_over(ens, "/krb-failover")
