"""Build an image's Python environment from the project's lockfile, inside the image.

Runs on the image's own interpreter (stdlib only), in two steps so that the dependency
layer is cached across code changes:

  python3.11 venv_from_lock.py requirements WHEEL... > requirements.txt
      the third-party requirements the project's wheels declare (their Requires-Dist,
      without the project's own `ticketing-*` wheels)
  python3.11 venv_from_lock.py venv LOCKFILE REQUIREMENTS VENV
      a venv holding exactly those requirements and what they need, resolved by pex
      from the lockfile for this interpreter and platform, every file hash-checked

The wheels then go on top (`VENV/bin/pip install --no-deps`). Nothing here depends on
the machine that prepared the build context: the wheels are pure Python and the
lockfile holds the wheels of every platform.
"""

import os
import subprocess
import sys
import tempfile
import zipfile
from email.parser import BytesParser
from pathlib import Path

# pex reads the lockfile it wrote (its version is the lockfile's "pex_version"); pip
# installs it with this hash only.
PEX = "pex==2.1.137 --hash=sha256:5031c3b283d63470faeaf82d0fc1344e6f71b3ad4ac4ca34572a42bae6dfc4b8"
FIRST_PARTY_PREFIX = "ticketing-"


def requirements(wheels: list[Path]) -> list[str]:
    found: set[str] = set()
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            headers = BytesParser().parsebytes(archive.read(metadata), headersonly=True)
        for requirement in headers.get_all("Requires-Dist") or []:
            if not requirement.lower().startswith(FIRST_PARTY_PREFIX):
                found.add(requirement)
    return sorted(found)


def make_venv(lockfile: Path, requirements_file: Path, venv: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # Pants prefixes its lockfiles with `//` comment lines; pex reads plain JSON.
        lock = Path(tmp, "lock.json")
        text = lockfile.read_text()
        lock.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("//")))
        tool = Path(tmp, "pex-venv")
        Path(tmp, "pex.txt").write_text(PEX + "\n")
        run(sys.executable, "-m", "venv", str(tool))
        pip = [str(tool / "bin/pip"), "install", "--quiet", "--no-cache-dir"]
        run(*pip, "--require-hashes", "-r", str(Path(tmp, "pex.txt")))
        # a CA bundle pip is told to use (PIP_CERT: a proxy's), pex is told too
        cert = ["--cert", os.environ["PIP_CERT"]] if os.environ.get("PIP_CERT") else []
        run(
            str(tool / "bin/pex3"), "venv", "create", "--dest-dir", str(venv),
            "--lock", str(lock), "--requirement", str(requirements_file),
            "--pip", "--compile", "--disable-cache", *cert,
        )  # fmt: skip


def run(*command: str) -> None:
    subprocess.run(command, check=True)


def main(argv: list[str]) -> None:
    match argv:
        case ["requirements", *wheels] if wheels:
            print("\n".join(requirements([Path(w) for w in wheels])))
        case ["venv", lockfile, requirements_file, venv]:
            make_venv(Path(lockfile), Path(requirements_file), Path(venv))
        case _:
            sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
