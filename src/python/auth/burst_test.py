"""A burst of sign-ups with the PRODUCTION argon2 cost (64 MiB each), against the auth
service as a process on the real MongoDB-wire server: memory stays bounded, and every
request is answered 201 or 503 `Busy, retry shortly` — none fails, none is lost.

The reported problem: 12 simultaneous sign-ups took the process to 447 MiB (one 64 MiB
hash per thread of the default pool), past the 384 MiB Kubernetes limit."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
from pymongo import AsyncMongoClient

from harness.servers import ServiceProcess
from testkit.auth import TEST_JWT_KEY

SIGNUPS = 40
BUDGET_MIB = 256  # the default ARGON2_MEMORY_BUDGET_MIB: 4 hashes of 64 MiB at once
POD_LIMIT_MIB = 384  # infra/k8s/auth-depl.yaml


def memory_mib(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (the peak so far) of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


async def test_a_signup_burst_stays_within_the_memory_budget(mongo_server, nats_server, tmp_path):
    env = {
        "MONGO_URI": mongo_server.uri,
        "NATS_URL": nats_server.url,
        "JWT_KEY": TEST_JWT_KEY,
        "COOKIE_SECURE": "false",
        # production argon2 parameters (the defaults), production memory budget
    }
    service = ServiceProcess("auth", "auth.main", env, tmp_path).start()
    try:
        assert service.process is not None
        pid = service.process.pid
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            await client.get("/readyz")
            baseline = memory_mib(pid, "VmRSS")
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/api/users/signup",
                        json={"email": f"burst{i}@test.com", "password": "secret1"},
                    )
                    for i in range(SIGNUPS)
                )
            )
        peak = memory_mib(pid, "VmHWM")
    finally:
        service.stop()
    codes = Counter(r.status_code for r in responses)
    print(
        f"\nRELIABILITY auth burst: {SIGNUPS} simultaneous sign-ups (argon2 64 MiB, t=3): "
        f"{dict(codes)}; RSS {baseline:.0f} MiB before, peak {peak:.0f} MiB "
        f"(budget {BUDGET_MIB} MiB, pod limit {POD_LIMIT_MIB} MiB)"
    )
    assert set(codes) <= {201, 503}, codes
    assert codes[201] >= 4  # the bound lets work through, it does not stop it
    for response in responses:
        if response.status_code == 503:
            assert response.json() == {"errors": [{"message": "Busy, retry shortly"}]}
            assert response.headers["retry-after"] == "1"
    assert peak < baseline + BUDGET_MIB + 32, (baseline, peak)
    assert peak < POD_LIMIT_MIB
    # nothing lost: every 201 is a stored user, no 503 left one behind
    mongo: AsyncMongoClient = AsyncMongoClient(mongo_server.uri)
    try:
        stored = await mongo["auth"]["users"].count_documents({})
    finally:
        await mongo.close()
    assert stored == codes[201]
