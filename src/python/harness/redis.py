"""A real Redis for the web client's state when several web processes share it.

Debian's `redis-server` (`apt-get install redis-server`; `.ci/run` installs it), on a
free loopback port, in its own process group like every server here. No persistence:
what it holds is the state of open tabs, which start over if it is lost. Keyspace
notifications are on from the start, as a managed Redis would be configured: Reflex's
state locks wait on them (it also sets them itself where `CONFIG SET` is allowed)."""

from __future__ import annotations

import re
import shutil

from harness.servers import ServerProcess, free_port

# Reflex's flags (reflex.istate.manager.redis): keyspace events for strings, sets,
# generic commands, expiry and eviction
KEYSPACE_EVENTS = "K$sgxe"


class RedisServer(ServerProcess):
    name = "redis"
    ready_pattern = re.compile(r"Ready to accept connections")
    password = ""  # set: clients must AUTH with it (as the Kubernetes manifest's)

    def argv(self) -> list[str]:
        executable = shutil.which("redis-server")
        if executable is None:
            raise FileNotFoundError(
                "redis-server not found on PATH: install Debian's redis-server "
                "(apt-get install redis-server)"
            )
        self.requested_port = self.requested_port or free_port()
        return [
            executable,
            "--bind", self.host,
            "--port", str(self.requested_port),
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--notify-keyspace-events", KEYSPACE_EVENTS,
            *(["--requirepass", self.password] if self.password else []),
        ]  # fmt: skip

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"
