"""`./run reconcile`: do our payments and the payment provider's books agree?

Beside a running `./run` (it finds the stack's MongoDB itself) or with `MONGO_URI`: our
payments of the last week against the provider's — the test provider's books in the
state dir, the local Stripe server's (`./run --stripe-local`), or Stripe's with
`PAYMENT_PROVIDER=stripe` and `STRIPE_SECRET_KEY` (and `STRIPE_API_BASE`). It reports each difference (payments.reconciliation) and heals
nothing: the payments service's own reconciler does, where a rule is clear. Exit 1 if
any difference is found.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import timedelta

from pymongo import AsyncMongoClient

from harness.stripe import SECRET_KEY
from payments.providers import PaymentProvider, StripeProvider, TestProvider
from payments.reconciliation import Reconciler
from stack.state import mongo_uri_file, provider_dir, state_dir_option, stripe_url_file


def reconcile_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="./run reconcile",
        description="Do our payments and the payment provider's books agree? Reports each "
        "difference; exit 1 if any.",
    )
    parser.add_argument("--days", type=float, default=7.0, help="how far back (default 7)")
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=120.0,
        help="leave out payments younger than this: the settler may be moving them (default 120)",
    )
    state_dir_option(parser)
    args = parser.parse_args(argv)
    uri = os.environ.get("MONGO_URI")
    if not uri:
        path = mongo_uri_file(args.state_dir)
        if not path.exists():
            sys.exit("./run reconcile: no MongoDB to read: start ./run first, or set MONGO_URI")
        uri = path.read_text().strip()
    provider: PaymentProvider
    local_stripe = stripe_url_file(args.state_dir)
    if os.environ.get("PAYMENT_PROVIDER") == "stripe":
        key = os.environ.get("STRIPE_SECRET_KEY") or sys.exit(
            "./run reconcile: STRIPE_SECRET_KEY is not set"
        )
        provider = StripeProvider(key, os.environ.get("STRIPE_API_BASE", "https://api.stripe.com"))
    elif local_stripe.exists():  # ./run --stripe-local
        provider = StripeProvider(SECRET_KEY, local_stripe.read_text().strip())
    else:
        provider = TestProvider(home=provider_dir(args.state_dir))
    period, grace = timedelta(days=args.days), timedelta(seconds=args.grace_seconds)
    sys.exit(asyncio.run(_reconcile(uri, provider, period, grace)))


async def _reconcile(
    uri: str, provider: PaymentProvider, period: timedelta, grace: timedelta
) -> int:
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=10_000)
    reconciler = Reconciler(client.payments, provider, interval=0, period=period, grace=grace)
    try:
        run = await reconciler.run(heal=False)
    finally:
        await client.close()
    verdict = "the books agree" if not run.left else f"{len(run.left)} difference(s)"
    print(
        f"reconcile: our payments {run.payments}, the provider's charges {run.charges}: {verdict}"
    )
    if run.too_young:  # e.g. just after a purchase: they are compared once older
        print(
            f"  ({run.too_young} payment(s) younger than {grace.total_seconds():g} s left out: "
            "the settler may still be moving them; --grace-seconds 0 compares them too)"
        )
    for difference in run.left:
        print(f"  {difference}")
    return 1 if run.left else 0
