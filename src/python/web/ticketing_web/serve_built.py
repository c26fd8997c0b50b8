"""Serve a frontend already built in `.web/build/client` with the Reflex backend, on one
port: what `reflex run --env prod` does once its build is done, without compiling and
building again (the launcher builds once per code version; a restart takes seconds).

    python -m ticketing_web.serve_built --host 127.0.0.1 --port 3000   (from the app root)

It uses Reflex's own prod entry points (`reflex.utils.exec.run_backend_prod`, as
`reflex run` calls it), pinned with Reflex in the lockfile."""

from __future__ import annotations

import argparse

from reflex import constants
from reflex.config import get_config
from reflex.environment import environment
from reflex.utils import exec as reflex_exec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    environment.REFLEX_ENV_MODE.set(constants.Env.PROD)
    environment.REFLEX_SKIP_COMPILE.set(True)  # the frontend is built; the backend only serves
    config = get_config()
    config._set_persistent(frontend_port=args.port, backend_port=args.port)
    reflex_exec.notify_app_running()
    reflex_exec.notify_frontend(f"http://{args.host}:{args.port}", backend_present=True)
    reflex_exec.run_backend_prod(
        args.host, args.port, config.loglevel.subprocess_level(), mount_frontend_compiled_app=True
    )


if __name__ == "__main__":
    main()
