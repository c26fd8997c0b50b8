"""What browsing costs as the list grows: each query the landing page makes
(`tickets.browse`), timed against the MongoDB-wire server holding 10,000 and 100,000
tickets for sale, with the service's own indexes; and the plan the server chose.

    ./pants run src/python/bench:browse -- --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from common.mongo import ensure_indexes
from harness.servers import MongoServer
from tickets import repository
from tickets.browse import Browse, Sort

WORDS = ["jazz", "rock", "opera", "folk", "night", "brunch", "live", "tour", "gala", "club"]
PAGE = 50


def queries(middle_price: int, middle_id: Any) -> dict[str, Browse]:
    return {
        "newest, first page": Browse(),
        "price_asc, first page": Browse(sort=Sort.PRICE_ASC),
        "price_asc, a page mid-list (cursor)": Browse(
            sort=Sort.PRICE_ASC, after=(middle_price, middle_id)
        ),
        "price range 20-30, newest": Browse(min_cents=2000, max_cents=3000),
        "one word (q=jazz)": Browse(words=("jazz",)),
        "two words, price_desc": Browse(words=("jazz", "night"), sort=Sort.PRICE_DESC),
    }


async def fill(db: Any, size: int) -> None:
    rng = random.Random(size)  # noqa: S311 (synthetic titles and prices, repeatable)
    batch = []
    for i in range(size):
        title = " ".join(rng.sample(WORDS, 3)) + f" #{i}"
        batch.append(repository.new_document(title, rng.randrange(500, 10_000), "bench-user"))
        if len(batch) == 5_000:
            await db[repository.TICKETS].insert_many(batch)
            batch = []
    if batch:
        await db[repository.TICKETS].insert_many(batch)


async def time_query(db: Any, browse: Browse, repeats: int) -> tuple[float, float, str]:
    """Median ms of a page and of its count, and the plan's stages."""
    pages, counts = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        await repository.list_for_sale(db, browse, limit=PAGE + 1)
        pages.append(time.perf_counter() - start)
        start = time.perf_counter()
        await repository.count_for_sale(db, browse)
        counts.append(time.perf_counter() - start)
    plan = (
        await db[repository.TICKETS]
        .find(browse.query())
        .sort(list(dict(repository.SORT_KEYS[browse.sort]).items()))
        .limit(PAGE + 1)
        .explain()
    )
    return statistics.median(pages) * 1000, statistics.median(counts) * 1000, stages(plan)


def stages(explain: dict[str, Any]) -> str:
    node, names = explain.get("queryPlanner", {}).get("winningPlan", {}), []
    while node:
        names.append(
            node.get("stage", "?") + (f"({node['indexName']})" if "indexName" in node else "")
        )
        node = node.get("inputStage")
    return " < ".join(names)


async def run(sizes: list[int], repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = MongoServer(Path(tmp))
        with server:
            client: AsyncMongoClient[Any] = AsyncMongoClient(server.uri)
            for size in sizes:
                db = client[f"browse_{size}"]
                await ensure_indexes(db, repository.INDEXES)
                started = time.perf_counter()
                await fill(db, size)
                print(
                    f"\n{size:,} tickets for sale (inserted in {time.perf_counter() - started:.0f} s)"
                )
                print(f"{'query':40} {'page ms':>8} {'count ms':>9}  plan")
                middle = (
                    await repository.list_for_sale(db, Browse(sort=Sort.PRICE_ASC), limit=size // 2)
                )[-1]
                for name, browse in queries(middle["priceCents"], middle["_id"]).items():
                    page, count, plan = await time_query(db, browse, repeats)
                    print(f"{name:40} {page:8.1f} {count:9.1f}  {plan}")
            await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run([int(s) for s in args.sizes.split(",")], args.repeats))


if __name__ == "__main__":
    main()
