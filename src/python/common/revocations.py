"""Signed-out sessions, known to every service: what makes sign-out end a session.

A JWT is checked by each service on its own (no call to auth), so signing out cannot
just forget it. Auth records every sign-out — the token's `jti` and expiry — with a
`session.revoked` event in its outbox (nothing lost if NATS is down). Every process
that checks tokens follows that subject from the start of the stream with an ordered
consumer and keeps the revoked ids in memory until their tokens would have expired
anyway. The cost per request is one dict lookup, no I/O; the cost in memory about
150 bytes per sign-out still inside a token lifetime (a million a day: ~150 MB — past
that, shorten JWT_LIFETIME_SECONDS or move the list to a shared store).

"Sign out everywhere" is one event too: every token of the user issued before an
instant (`allBefore`). It is kept per user — one entry, however many tokens — until
the last of those tokens would have expired.

A service refuses a signed-out token once the event reaches it: auth's own replica at
once (it adds the id itself), every other process within the stream's delivery time
(milliseconds; while NATS is down, when it is back).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from common.events.contracts import STREAM_NAME, SessionRevokedEvent, Subject
from common.events.versions import read_event

log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT = 30.0
"""Seconds a starting process may take to read the sign-outs already on the stream."""


class RevokedSessions:
    """The `jti`s of signed-out tokens that have not expired yet."""

    def __init__(self, *, leeway: int = 0) -> None:
        self.leeway = leeway  # a token is accepted up to this long after `exp`
        self._expiry: dict[str, int] = {}
        self._users: dict[str, tuple[int, int]] = {}  # user id -> (allBefore, exp)
        self._next_prune = 1024
        self._subscription: Any = None

    def __len__(self) -> int:
        return len(self._expiry) + len(self._users)

    def is_revoked(self, jti: str, user_id: str = "", issued_at: int = 0) -> bool:
        """The token `jti` was signed out, or its user signed out everywhere after it
        was issued (at `issued_at`, epoch seconds)."""
        if jti in self._expiry:
            return True
        everywhere = self._users.get(user_id)
        return everywhere is not None and issued_at < everywhere[0]

    def all_before(self, user_id: str) -> int:
        """The instant before which the user's tokens are refused (0: none)."""
        everywhere = self._users.get(user_id)
        return everywhere[0] if everywhere else 0

    def revoke_all_before(self, user_id: str, all_before: int, exp: int) -> None:
        """Every token of `user_id` issued before `all_before`; the entry is kept until
        `exp`, when the last of them has expired."""
        if exp + self.leeway < time.time():
            return
        known = self._users.get(user_id)
        if known is None or known[0] < all_before:
            self._users[user_id] = (all_before, max(exp, known[1] if known else exp))

    def revoke(self, jti: str, exp: int) -> None:
        if exp + self.leeway < time.time():
            return  # expired already: refused by any check anyway
        self._expiry[jti] = exp
        if len(self._expiry) >= self._next_prune:  # amortised: prune as the list doubles
            self.prune()
            self._next_prune = max(1024, 2 * len(self._expiry))

    def apply(self, event: SessionRevokedEvent) -> None:
        self.revoke(event.jti, event.exp)
        if event.allBefore is not None:
            self.revoke_all_before(event.userId, event.allBefore, event.exp)

    def prune(self) -> None:
        """Forget the tokens that have expired (they are refused by their `exp`)."""
        now = time.time() - self.leeway
        self._expiry = {jti: exp for jti, exp in self._expiry.items() if exp >= now}
        self._users = {user: entry for user, entry in self._users.items() if entry[1] >= now}

    async def follow(self, jetstream: Any, *, timeout: float = CATCH_UP_TIMEOUT) -> None:
        """Read every `session.revoked` on the stream, then keep following it; returns
        once the ones already there are in (a process is not ready before)."""
        try:
            last = await jetstream.get_last_msg(STREAM_NAME, Subject.SESSION_REVOKED.value)
            target = last.seq
        except NotFoundError:
            target = 0  # no sign-out on the stream yet
        caught_up = asyncio.Event()
        if target == 0:
            caught_up.set()

        async def on_message(msg: Any) -> None:
            try:
                event = read_event(SessionRevokedEvent, msg.data, msg.headers)
            except (ValidationError, ValueError):
                log.warning("Ignoring an invalid session.revoked message: %r", msg.data[:200])
            else:
                self.apply(event)
            if msg.metadata.sequence.stream >= target:
                caught_up.set()

        self._subscription = await jetstream.subscribe(
            Subject.SESSION_REVOKED.value,
            stream=STREAM_NAME,
            cb=on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        try:
            await asyncio.wait_for(caught_up.wait(), timeout)
        except TimeoutError:
            raise RuntimeError(
                f"Could not read the signed-out sessions from the stream within {timeout:.0f} s"
            ) from None
        log.info("Following sign-outs (%d signed-out sessions still valid)", len(self))

    async def stop(self) -> None:
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            try:
                await subscription.unsubscribe()
            except Exception as exc:  # closing anyway: the connection drains next
                log.debug("Unsubscribing from sign-outs: %r", exc)
