"""The writers' table (`outbox_writers`): one row per live process, holding its mark and
a heartbeat. The beat is one small write per interval, not one per event; a process
records only while its beat is fresh (the fence), so nothing it writes can land after
another process, finding it silent, has adopted it."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from common.mongo import Document
from common.outbox.documents import WRITERS, unsent_by
from common.outbox.ledger import Ledger

log = logging.getLogger("common.outbox")


class Writers:
    def __init__(
        self,
        db: AsyncDatabase[Any],
        ledger: Ledger,
        *,
        interval: float,
        fence: float,
        dead_after: float,
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.interval = interval
        self.fence = fence  # record only within this long of the last heartbeat
        self.dead_after = dead_after  # a silent writer is adopted after this
        self.id = ""  # this process's id in `outbox_writers` (set when registered)
        self.ids: set[str] = set()  # every id it had (a new one if it was adopted)
        self.beat_at: float | None = None  # monotonic time of the last heartbeat sent
        self.others: dict[str, int] = {}  # other live writers' marks
        self.gone: set[str] = set()  # writers adopted: all their events were sent
        self._beating = asyncio.Lock()  # one heartbeat (or registration) at a time
        self._silent: dict[str, tuple[int, float]] = {}  # writer -> (beat, seen since)

    async def ensure_fresh(self) -> None:
        """Beat first if the last beat is older than the fence (raises PyMongoError:
        503, if the database is away)."""
        if self.beat_at is None or time.monotonic() - self.beat_at > self.fence:
            await self.beat()

    async def beat(self) -> None:
        """Say this writer lives, and its mark. If others adopted it meanwhile (it was
        silent past `dead_after`: a stall), it carries on as a new writer: what it had
        recorded was sent by the adopter."""
        async with self._beating:
            if self.beat_at is not None and time.monotonic() - self.beat_at < self.interval / 2:
                return  # a request's fence check beat just now
            sent_at = time.monotonic()
            if not self.id:
                await self._register()
            else:
                result = await self.db[WRITERS].update_one(
                    {"_id": self.id},
                    {
                        "$set": {"mark": self.ledger.mark(), "at": datetime.now(UTC)},
                        "$inc": {"beat": 1},
                    },
                )
                if result.matched_count == 0:
                    log.error("outbox: writer %s was adopted by another process", self.id)
                    self.gone.add(self.id)
                    await self._register()
            self.beat_at = sent_at

    async def _register(self) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.ids.add(self.id)
        await self.db[WRITERS].insert_one(
            {
                "_id": self.id,
                "mark": self.ledger.next,
                "beat": 0,
                "at": datetime.now(UTC),
                "host": f"{socket.gethostname()}:{os.getpid()}",
            }
        )
        log.info("outbox: writer %s registered", self.id)

    async def read_others(self) -> list[Document]:
        rows = await self.db[WRITERS].find({"_id": {"$ne": self.id}}).to_list()
        self.others = {row["_id"]: row["mark"] for row in rows}
        return rows

    async def dead(self) -> list[Document]:
        """The rows of writers to adopt: stopped with events unsent, or silent (the same
        beat) for `dead_after`."""
        now = time.monotonic()
        found = []
        for row in await self.read_others():
            beat, since = self._silent.get(row["_id"], (None, now))
            if row.get("stopped") or (beat == row["beat"] and now - since >= self.dead_after):
                found.append(row)
            elif beat != row["beat"]:
                self._silent[row["_id"]] = (row["beat"], now)
        return found

    def forget_departed(self) -> None:
        self._silent = {w: s for w, s in self._silent.items() if w in self.others}

    async def remove_adopted(self, row: Document) -> None:
        """Its events were sent: delete its row (only if it did not beat meanwhile)."""
        await self.db[WRITERS].delete_one({"_id": row["_id"], "beat": row["beat"]})
        self.others.pop(row["_id"], None)
        self._silent.pop(row["_id"], None)
        self.gone.add(row["_id"])

    async def was_sent(self, entry: Document) -> bool:
        """Known to be on the stream: below its writer's mark, or its writer adopted."""
        writer = entry["w"]
        if writer not in (self.id, *self.others, *self.gone):
            await self.read_others()  # a writer newer than our last look, or adopted
            if writer not in self.others:
                self.gone.add(writer)
        return not unsent_by(entry, {**self.others, self.id: self.ledger.mark()})

    async def leave(self) -> None:
        """On stop: leave the table (all sent) or flag this writer for adoption now."""
        if not self.id:
            return
        if self.ledger.mark() >= self.ledger.next:
            await self.db[WRITERS].delete_one({"_id": self.id})
        else:
            await self.db[WRITERS].update_one(
                {"_id": self.id}, {"$set": {"mark": self.ledger.mark(), "stopped": True}}
            )
