"""The README's `curl` walk-through, run as written against a running stack (the stack
test does): a front door whose commands do not work is caught by the test command."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from testkit.waiting import eventually

README = Path(__file__).resolve().parents[3] / "README.md"
WALK = "**Buy a ticket with `curl`**"
ADDRESS = "http://127.0.0.1:8080"  # the README's; the test's stack listens elsewhere


def walk_lines() -> tuple[str, list[str]]:
    """The walk-through's first line (its variables) and its `curl` lines, as written."""
    block = README.read_text().split(WALK, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    setup, *lines = block.splitlines()
    return setup, [line for line in lines if line.startswith("curl ")]


async def walk_the_readme(gateway: str, cookies: Path) -> int:
    """Each line as written — its placeholders (T, O, O2) bound to the ids the answers
    named, its cookie files in `cookies` — at a person's pace: a line refused (4xx) is
    tried again until it answers as its comment says (the status it names, else 2xx,
    and every `"key": "value"` it shows), since a service may not have heard of a ticket
    made a moment ago; a read, until it shows what the comment says. Returns the lines
    run."""
    setup, lines = walk_lines()
    setup = setup.replace(ADDRESS, gateway)
    names: dict[str, str] = {}
    for line in lines:
        command, _, said = line.partition("#")
        for name, value in names.items():
            command = re.sub(rf'(?<=["/]){name}(?=["\s]|$)', value, command)
        command = command.replace("/tmp/", f"{cookies}/")  # noqa: S108 (the README's, moved)
        body = await _as_said(setup, command, said, line)
        if bound := re.search(r"→ (?:\{\"id\": )?([A-Z]\w*)", said):
            names[bound.group(1)] = body["id"]
    return len(lines)


async def _as_said(setup: str, command: str, said: str, line: str) -> Any:
    """Run the line until it answers as its comment says; returns the answer's body."""
    status = re.match(r"\s*(\d{3})\b", said)
    wanted = dict(re.findall(r'"(\w+)": "(\w+)"', said))
    writes = " -d " in command or " -X " in command
    answers: list[tuple[int, Any]] = []

    async def answered() -> bool:
        code, body = await _curl(setup, command)
        answers.append((code, body))
        ok = code == int(status.group(1)) if status else 200 <= code < 300
        shows = isinstance(body, dict) and all(body.get(k) == v for k, v in wanted.items())
        if writes and not (ok and (shows or not wanted)) and not 400 <= code < 500:
            raise AssertionError(f"README: {line}\n answered {code} {body}")  # not twice
        return ok and (shows or not wanted)

    try:
        await eventually(answered, within=30, every=0.5)
    except AssertionError as exc:
        if str(exc).startswith("README"):
            raise
        raise AssertionError(f"README: {line}\n answered {answers[-1:]}") from None
    return answers[-1][1]


async def _curl(setup: str, command: str) -> tuple[int, Any]:
    script = f"{setup}\n{command} -s -w '\\n%{{http_code}}'"
    done = await asyncio.to_thread(
        subprocess.run, ["bash", "-c", script], capture_output=True, text=True, timeout=30
    )
    body, _, code = done.stdout.rpartition("\n")
    try:
        return int(code), json.loads(body) if body.strip() else None
    except ValueError:
        return int(code or 0), body
