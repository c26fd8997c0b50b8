"""A short storm on the real local stack (services as processes, nats-server, the
MongoDB-wire server): users buying and selling through nats-server restarts and
service crashes, then every invariant checked — nothing found."""

from __future__ import annotations

import httpx

from chaos.storm import Tally, storm


async def test_a_short_storm_of_users_and_faults_breaks_no_invariant(tmp_path):
    outcome = await storm(seed=3, seconds=30, users=8, workdir=tmp_path)
    print(outcome.text())
    kinds = {fault.kind for fault in outcome.faults}
    assert {"restart", "kill"} <= kinds  # seed 3: nats-server restarted, a service killed
    assert sum(outcome.tally.actions.values()) > 50
    assert outcome.tally.answers[201] > 0  # tickets listed, orders placed, payments made
    assert outcome.violations == [], outcome.text()


def test_a_500_is_a_violation_of_its_own():
    tally = Tally()
    request = httpx.Request("POST", "http://127.0.0.1:1/api/orders")
    tally.answered("order", httpx.Response(503, request=request))
    assert tally.server_errors == []  # a service down says so: not a defect
    tally.answered("order", httpx.Response(500, request=request))
    assert tally.server_errors == ["order: POST http://127.0.0.1:1/api/orders"]
