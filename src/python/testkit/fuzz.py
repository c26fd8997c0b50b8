"""Fuzz a running service through its own OpenAPI document (schemathesis + hypothesis).

Every operation gets valid (positive) and invalid (negative) generated requests, and
each generated JSON body is sent once more with a lone surrogate in every string (valid
JSON, not valid text: schemathesis never generates one); each response must be below
500 and, for 4xx, in the `{"errors": [...]}` shape.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from common.auth import SESSION_COOKIE
from harness.servers import ServiceProcess
from testkit.auth import CRAFTED_SESSION_COOKIES, TEST_JWT_KEY, session_cookie
from testkit.settings import process_env

NOT_TEXT = "\ud800"  # a lone surrogate: json.dumps writes it as the escape \\ud800

CRAFTED_COOKIE_EXAMPLES = 3
"""Requests per operation with each crafted `session` cookie (on top of `examples`)."""


@dataclass
class FuzzReport:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # 5xx, or a 4xx not in the error shape

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def fuzz_service(
    name: str,
    env: dict[str, str],
    workdir: Path,
    *,
    examples: int,
    cookies: dict[str, str] | None = None,
) -> FuzzReport:
    """Start service `name` (`python -m <name>.main`) as a process, fuzz it, stop it, and
    print its RELIABILITY line."""
    with ServiceProcess(name, f"{name}.main", env, workdir) as service:
        base_url = service.url  # type: ignore[attr-defined]
        report = fuzz_openapi(base_url, examples=examples, cookies=cookies)
        # every operation again with each crafted session cookie: signed out, never a 500
        for crafted in CRAFTED_SESSION_COOKIES.values():
            fuzz_openapi(
                base_url,
                examples=CRAFTED_COOKIE_EXAMPLES,
                cookies={SESSION_COOKIE: crafted},
                modes=(GenerationMode.POSITIVE,),
                report=report,
            )
    figures = {
        "requests": report.requests,
        "5xx": report.server_errors,
        "statuses": report.statuses,
    }
    print(f"\nRELIABILITY fuzz-{name} " + json.dumps(figures))
    return report


def fuzz_eventing_service(
    name: str, mongo_server: Any, nats_server: Any, workdir: Path, *, examples: int
) -> FuzzReport:
    """`fuzz_service` for a service with a database and NATS, signed in."""
    env = process_env(mongo_server, nats_server)
    return fuzz_service(name, env, workdir, examples=examples, cookies=session_cookie(TEST_JWT_KEY))


def fuzz_openapi(
    base_url: str,
    *,
    examples: int,
    cookies: dict[str, str] | None = None,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    report: FuzzReport | None = None,
) -> FuzzReport:
    """Up to `examples` requests per operation and generation mode (added to `report`)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    report = FuzzReport() if report is None else report
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in modes:
            try:
                _fuzz_operation(operation, mode, base_url, examples, cookies, report)
            except Unsatisfiable:
                pass  # nothing invalid to send (e.g. GET /healthz has no inputs)
    return report


def _fuzz_operation(
    operation,
    mode: GenerationMode,
    base_url: str,
    examples: int,
    cookies: dict[str, str] | None,
    report: FuzzReport,
) -> None:
    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case) -> None:
        record(case.call(base_url=base_url, cookies=cookies, timeout=30), mode.value)
        if isinstance(case.body, dict) and any(isinstance(v, str) for v in case.body.values()):
            body = {k: v + NOT_TEXT if isinstance(v, str) else v for k, v in case.body.items()}
            response = httpx.request(
                case.method,
                f"{base_url}{case.formatted_path}",
                params=case.query,
                content=json.dumps(body),  # ASCII: the surrogate as its escape
                headers={"content-type": "application/json"},
                cookies=cookies,
                timeout=30,
            )
            record(response, f"{mode.value}, not text")

    def record(response, how: str) -> None:
        report.requests += 1
        report.statuses[response.status_code] += 1
        if response.status_code >= 500 or (
            response.status_code >= 400 and not _error_shape(response)
        ):
            report.problems.append(
                f"{operation.label} [{how}] -> {response.status_code}: {response.text[:200]}"
            )

    exercise()


def _error_shape(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    return (
        isinstance(errors, list)
        and bool(errors)
        and all(isinstance(e, dict) and isinstance(e.get("message"), str) for e in errors)
    )
