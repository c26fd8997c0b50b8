"""The local stack's state directory: what a running `./run` leaves there for the
commands beside it (`./run audit`, `reconcile`, `traces`) to find it by."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("STATE_DIR", ".state")),
        help="where data, the dev JWT key, logs and traces live (default ./.state)",
    )


def nats_url_file(state_dir: Path) -> Path:
    """Where a running stack says which NATS it uses (`./run audit` reads it)."""
    return state_dir / "nats-url"


def stripe_url_file(state_dir: Path) -> Path:
    """Where a stack run with --stripe-local says where its Stripe server is."""
    return state_dir / "stripe-url"


def mongo_uri_file(state_dir: Path) -> Path:
    """Where a running stack says which MongoDB it uses (`./run reconcile` reads it)."""
    return state_dir / "mongo-uri"


def provider_dir(state_dir: Path) -> Path:
    """The test payment provider's books (`TEST_PROVIDER_DIR`)."""
    return state_dir / "payments" / "provider"


def traces_dir(state_dir: Path) -> Path:
    """Where every process of the stack writes its spans (`TRACES_DIR`)."""
    return state_dir / "traces"
