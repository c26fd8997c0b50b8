"""The sign-out deny-list, against a real nats-server: what is on the stream before a
process starts is in before it is ready, what comes later arrives by itself."""

import time

from common.events import SessionRevokedEvent, publish
from common.revocations import RevokedSessions
from testkit.waiting import eventually


def revocation(jti: str, *, expires_in: int = 3600) -> SessionRevokedEvent:
    return SessionRevokedEvent(jti=jti, userId="u1", exp=int(time.time()) + expires_in)


async def test_sign_outs_already_on_the_stream_are_in_before_follow_returns(nats_manager):
    for i in range(50):
        await publish(nats_manager.jetstream, revocation(f"old-{i}"))
    revoked = RevokedSessions()
    await revoked.follow(nats_manager.jetstream)
    try:
        assert all(revoked.is_revoked(f"old-{i}") for i in range(50))
        assert not revoked.is_revoked("never-signed-out")
        await publish(nats_manager.jetstream, revocation("later"))
        await eventually(lambda: revoked.is_revoked("later"))
    finally:
        await revoked.stop()


async def test_following_an_empty_stream_returns_at_once(nats_manager):
    revoked = RevokedSessions()
    await revoked.follow(nats_manager.jetstream, timeout=5)
    await revoked.stop()
    assert len(revoked) == 0


async def test_an_invalid_message_is_skipped_not_fatal(nats_manager):
    js = nats_manager.jetstream
    await js.publish("session.revoked", b'{"jti": 5}')
    await publish(js, revocation("valid"))
    revoked = RevokedSessions()
    await revoked.follow(js, timeout=10)
    await revoked.stop()
    assert revoked.is_revoked("valid") and len(revoked) == 1


def test_expired_tokens_are_not_kept(monkeypatch):
    now = time.time()
    revoked = RevokedSessions(leeway=10)
    revoked.revoke("gone", int(now) - 60)
    revoked.revoke("within-leeway", int(now) - 5)
    assert not revoked.is_revoked("gone")
    assert revoked.is_revoked("within-leeway")
    for i in range(3000):
        revoked.revoke(f"t{i}", int(now) + 60)
    assert len(revoked) == 3001
    # an hour later, the list grows again: pruning (amortised) drops the expired ones
    monkeypatch.setattr("common.revocations.time.time", lambda: now + 3600)
    for i in range(3000):
        revoked.revoke(f"new{i}", int(now) + 7200)
    assert len(revoked) < 3001 + 3000
    assert not revoked.is_revoked("t0") and revoked.is_revoked("new2999")


def test_signing_out_everywhere_refuses_the_users_tokens_issued_before_it_only():
    now = int(time.time())
    revoked = RevokedSessions()
    revoked.revoke_all_before("u1", now, now + 3600)
    assert revoked.is_revoked("any-jti", "u1", now - 1)
    assert not revoked.is_revoked("any-jti", "u1", now)  # issued at or after: a new session
    assert not revoked.is_revoked("any-jti", "u2", now - 1)  # another user
    revoked.revoke_all_before("u1", now - 100, now + 3600)  # an older one changes nothing
    assert revoked.is_revoked("jti", "u1", now - 1) and len(revoked) == 1
    revoked.revoke_all_before("u2", now, now - 60)  # its tokens have all expired: forgotten
    revoked.prune()
    assert len(revoked) == 1
