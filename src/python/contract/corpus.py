"""The recorded corpus: real messages of both releases, as the stream held them.

`corpus.jsonl` is what the stream held after buyers traded through the previous
release and this one side by side (`rolling.two_releases`), then raced a payment
against its cancel and an order against a price change (`scenario.race`): every message with its
subject, its headers that matter (`Nats-Msg-Id`, `Ticketing-Schema`), its payload as
published and when the stream stored it. `corpus_test.py` reads it as today's
listeners and the auditor do. Record it again (after a new version of an event):

    ./pants run src/python/contract:corpus        # writes src/python/contract/corpus.jsonl
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from common.events import SCHEMA_HEADER
from common.nats_client import NatsClientManager
from contract.rolling import drained, trade_through_both, two_releases
from contract.scenario import race
from harness.servers import MongoServer, NatsServer
from testkit.streams import stream_messages
from testkit.waiting import eventually

CORPUS = Path(__file__).parent / "corpus.jsonl"
IN_REPO = Path("src/python/contract/corpus.jsonl")  # from the build root (`./pants run`)
KEPT_HEADERS = ("Nats-Msg-Id", SCHEMA_HEADER)


@dataclass(frozen=True)
class Recorded:
    subject: str
    headers: dict[str, str]
    data: bytes
    at: datetime  # when the stream stored it


def load(path: Path = CORPUS) -> list[Recorded]:
    records = []
    for line in path.read_text().splitlines():
        raw = json.loads(line)
        at = datetime.fromisoformat(raw["at"])
        records.append(Recorded(raw["subject"], raw["headers"], raw["data"].encode(), at))
    return records


async def record(out: Path) -> int:
    """Trade through both releases on fresh servers; write what the stream holds."""
    with tempfile.TemporaryDirectory() as work:
        workdir = Path(work)
        with NatsServer(workdir / "nats") as nats, MongoServer(workdir / "mongo") as mongo:
            manager = NatsClientManager()
            await manager.connect(nats.url, "corpus")
            await manager.ensure_stream()
            fleet = two_releases(mongo.uri, nats.url, workdir)
            try:
                await trade_through_both(fleet, manager.jetstream, "corpus")
                raced = await race(fleet, manager.jetstream, "corpus")
                print(f"races made {sorted(raced)}")
                await eventually(lambda: drained(manager.jetstream), within=60)
                messages = await stream_messages(manager.jetstream)
            finally:
                fleet.stop()
                await manager.drain()
    lines = []
    for message in messages:
        headers = {k: v for k, v in (message.headers or {}).items() if k in KEPT_HEADERS}
        lines.append(
            json.dumps(
                {
                    "subject": message.subject,
                    "headers": headers,
                    "data": message.data.decode(),
                    "at": message.time.isoformat(),
                }
            )
        )
    out.write_text("\n".join(lines) + "\n")
    return len(lines)


def main() -> None:
    out = IN_REPO if IN_REPO.parent.is_dir() else CORPUS
    count = asyncio.run(record(out))
    print(f"wrote {count} messages to {out}")


if __name__ == "__main__":
    main()
