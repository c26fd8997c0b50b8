"""Run the web client: `./pants run src/python/web:web` (prod mode, one port).

Prepares what Reflex needs offline — bun from the npm registry (pinned in
`tools/package-lock.json`), Reflex's version check and telemetry off, its caches kept
out of the home folder — then starts `reflex run --env prod` from the app root in its
own process group, and stops that whole group on SIGINT/SIGTERM (bun/vite children
included).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "aarch64", "arm64": "aarch64"}
# What an app root holds (the web image's Dockerfile copies the same, the package from its
# wheel).
APP_FILES = (
    "ticketing_web",
    "rxconfig.py",
    "reflex.lock",
    "tools/package.json",
    "tools/package-lock.json",
    "assets",
)


def find_app_root() -> Path:
    """The folder holding rxconfig.py: WEB_APP_DIR, else src/python/web from the repo."""
    if os.environ.get("WEB_APP_DIR"):
        return Path(os.environ["WEB_APP_DIR"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        for candidate in (folder, folder / "src" / "python" / "web"):
            if (candidate / "rxconfig.py").is_file() and (candidate / "ticketing_web").is_dir():
                return candidate
    raise SystemExit(
        "web: cannot find the app root (rxconfig.py); run from the repo or set WEB_APP_DIR"
    )


def copy_app(destination: Path) -> Path:
    """A private copy of the app root (Reflex writes .web/ and its lock there): each test
    and each stack builds in its own."""
    source = find_app_root()
    for name in APP_FILES:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (source / name).is_dir():
            shutil.copytree(
                source / name,
                target,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__", "*_test.py", "conftest.py"),
            )
        else:
            shutil.copy2(source / name, target)
    return destination


def ensure_bun(app_root: Path) -> Path:
    """bun at Reflex's pinned version, installed from the npm registry on first use, and
    kept once per machine in the cache: every copy of the app (the tests make several)
    uses that one, so the registry is asked once, not once per copy."""
    tools = app_root / "tools"
    arch = ARCH.get(platform.machine().lower())
    if arch is None or sys.platform != "linux":
        raise SystemExit(
            f"web: no pinned bun for {sys.platform}/{platform.machine()}; set REFLEX_BUN_PATH"
        )
    package = f"@oven/bun-linux-{arch}"
    bun = tools / "node_modules" / package / "bin" / "bun"
    version = json.loads((tools / "package.json").read_text())["optionalDependencies"][package]
    shared = _cache_dir() / f"bun-{version}-linux-{arch}" / "bun"
    if bun.is_file():
        return bun
    if shared.is_file():
        return shared
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("web: npm not found; install Node.js with npm (needed once, for bun)")
    # One install at a time on this machine: concurrent `npm ci` runs on a cold npm cache
    # were seen to skip the optional package and still exit 0 (so did one run alone, on
    # a slow registry: hence the tries).
    lock_path = _cache_dir() / "bun-install.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for _attempt in range(3):
            if bun.is_file() or shared.is_file():
                break
            print("web: installing bun from the npm registry (first run only) ...", file=sys.stderr)
            try:
                subprocess.run(
                    [
                        npm,
                        "ci",
                        "--ignore-scripts",
                        "--no-audit",
                        "--no-fund",
                        "--prefix",
                        str(tools),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            except (OSError, subprocess.CalledProcessError) as exc:
                raise SystemExit(
                    f"web: could not install bun with npm ({exc}); is Node.js/npm installed?"
                ) from None
        if bun.is_file() and not shared.is_file():
            _keep(bun, shared)
    if shared.is_file():
        return shared
    if not bun.is_file():  # npm treats the package as optional: it may "succeed" without it
        raise SystemExit(f"web: npm ran but did not install {bun}; see npm's output above")
    return bun


def _keep(bun: Path, shared: Path) -> None:
    """The installed binary, kept in the cache: a hard link where it can be (no second
    copy of ~90 MB, e.g. in the web image), else a copy; put in place atomically."""
    shared.parent.mkdir(parents=True, exist_ok=True)
    partial = shared.with_suffix(f".{os.getpid()}")
    try:
        os.link(bun, partial)
    except OSError:
        shutil.copy2(bun, partial)
    os.replace(partial, shared)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ticketing-web"


def reflex_command(app_root: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """argv and environment to run `reflex <args>` for the app at `app_root`, offline:
    pinned bun, no version check or telemetry, caches out of the home folder."""
    cache_dir = _cache_dir()
    env = dict(os.environ)
    if "REFLEX_BUN_PATH" not in env:  # a bun of your own wins; no npm then
        env["REFLEX_BUN_PATH"] = str(ensure_bun(app_root))
    env.update(
        REFLEX_CHECK_LATEST_VERSION="0",
        REFLEX_TELEMETRY_ENABLED="false",
        NPM_CONFIG_REGISTRY=env.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org"),
        REFLEX_DIR=str(cache_dir / "reflex"),
        BUN_INSTALL_CACHE_DIR=str(cache_dir / "bun"),
        # the Reflex subprocess imports this package from wherever this one came from
        PYTHONPATH=os.pathsep.join([str(app_root), *(os.path.abspath(p) for p in sys.path if p)]),
    )
    return [sys.executable, "-m", "reflex", *args], env


def start(app_root: Path, *, host: str, port: int) -> subprocess.Popen[bytes]:
    """Start Reflex (prod, one port) in its own process group; stop it with `stop()`."""
    argv, env = reflex_command(
        app_root,
        "run",
        "--env",
        "prod",
        "--backend-host",
        host,
        "--frontend-port",
        str(port),
        "--backend-port",
        str(port),
        "--loglevel",
        "info",
    )
    return subprocess.Popen(
        argv, cwd=app_root, env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )


def build(app_root: Path) -> int:
    """Install the frontend's packages and build it (what a container image bakes in)."""
    argv, env = reflex_command(app_root, "export", "--frontend-only", "--no-zip", "--env", "prod")
    return subprocess.run(argv, cwd=app_root, env=env, stdin=subprocess.DEVNULL).returncode


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM the group (bun/vite included); SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            continue
    return process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Run the Ticketing web client (Reflex, prod mode)."
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))  # noqa: S104
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="install bun and build the frontend, then exit (container images)",
    )
    args = parser.parse_args()
    if args.build_only:
        sys.exit(build(find_app_root()))
    process = start(find_app_root(), host=args.host, port=args.port)

    def forward(signum: int, _frame: object) -> None:
        stop(process)
        sys.exit(0)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    sys.exit(process.wait())


if __name__ == "__main__":
    main()
