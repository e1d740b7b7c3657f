"""The target layer itself: each kind serves, answers four-letter words, and restarts."""

from __future__ import annotations

from tests.compat.targets import Ensemble, four_letter_word, serving_mode


def test_ruok_answers_imok(target: Ensemble) -> None:
    for server in target.servers:
        assert four_letter_word(server.client_port, "ruok") == "imok", target.kind


def test_srvr_reports_a_serving_mode(target: Ensemble) -> None:
    modes = sorted(
        serving_mode(server.client_port) or "none" for server in target.servers
    )
    if target.size == 1:
        assert modes == ["standalone"], target.kind
    else:
        assert (
            modes.count("leader") == 1 and modes.count("follower") == target.size - 1
        ), modes


def test_restart_keeps_serving_on_the_same_ports(fresh_target: Ensemble) -> None:
    hosts_before = fresh_target.hosts
    fresh_target.restart()
    assert fresh_target.hosts == hosts_before
    assert all(serving_mode(server.client_port) for server in fresh_target.servers)
