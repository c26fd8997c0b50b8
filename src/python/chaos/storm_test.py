"""A short storm on the real local stack (services as processes, nats-server, the
MongoDB-wire server): users buying and selling through one fault of every kind the
storm makes, then every invariant checked — nothing found."""

from __future__ import annotations

import httpx

from chaos.schedule import KINDS, parse_faults
from chaos.storm import Tally, replay_command, storm

EVERY_KIND = parse_faults(
    "2:provider:timeout:4,8:kill:orders:2,12:restart:nats:2,"
    "16:slow:payments:3,21:pause:mongo:2,25:provider:fail:3"
)


async def test_a_short_storm_through_every_kind_of_fault_breaks_no_invariant(tmp_path):
    assert {fault.kind for fault in EVERY_KIND} == set(KINDS)
    outcome = await storm(seed=3, seconds=32, users=8, workdir=tmp_path, faults=EVERY_KIND)
    print(outcome.text())
    assert outcome.faults == EVERY_KIND
    assert sum(outcome.tally.actions.values()) > 50
    assert outcome.tally.answers[201] > 0  # tickets listed, orders placed, payments made
    assert outcome.tally.answers[502] > 0  # payments told the buyer the provider failed
    assert (tmp_path / "provider" / "ledger.jsonl").exists()  # checked against ours
    assert outcome.violations == [], outcome.text()


def test_a_500_is_a_violation_of_its_own():
    tally = Tally()
    request = httpx.Request("POST", "http://127.0.0.1:1/api/orders")
    tally.answered("order", httpx.Response(503, request=request))
    assert tally.server_errors == []  # a service down says so: not a defect
    tally.answered("order", httpx.Response(500, request=request))
    assert tally.server_errors == ["order: POST http://127.0.0.1:1/api/orders"]


def test_the_replay_command_gives_back_the_same_schedule():
    command = replay_command(7, 47, 12, EVERY_KIND)
    assert command.startswith("./pants run src/python/chaos:storm -- --seed 7 --minutes 0.783 ")
    assert parse_faults(command.split("--faults ")[1].strip("'")) == EVERY_KIND
