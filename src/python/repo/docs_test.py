"""The documentation stays true to the code: every link between the pages leads to a
page and a heading that exist, every repository path named in backticks exists, and
every `common.…` / `testkit.…` / `harness.…` name resolves to a module and a name
defined in it. And the README stays a front door (at most 200 lines)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]  # src/python/repo/ -> the repository
PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "BENCHMARKS.md",
        ROOT / "RELIABILITY.md",
        *(ROOT / "docs").rglob("*.md"),
    ]
)
REPO_DIRS = ("src/", "infra/", "build-support/", "3rdparty/", "docs/")
CURRENT = [page for page in PAGES if "history" not in page.parts]  # history names what was
GENERATED = (".web/",)  # made by builds, ignored by git
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
PYTHON_NAME = re.compile(r"^((?:common|testkit|harness)(?:\.[A-Za-z_]\w*)+)")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def slugs(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("#") and not line.startswith("#!"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def prose(page: Path) -> str:
    """The page without its fenced code blocks (shell sessions, sample output)."""
    return re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)


def test_the_readme_is_a_front_door() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_links_lead_to_pages_and_headings_that_exist(page: Path) -> None:
    broken = []
    for target in LINK.findall(prose(page)):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in slugs(linked):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("page", CURRENT, ids=page_id)
def test_repository_paths_named_exist(page: Path) -> None:
    missing = []
    for code in CODE.findall(prose(page)):
        path = code.split()[0] if code.split() else ""
        if not path.startswith(REPO_DIRS) or any(c in path for c in "<*{$"):
            continue
        if any(part in path for part in GENERATED):
            continue
        if not (ROOT / path.split(":")[0]).exists():
            missing.append(path)
    assert missing == []


@pytest.mark.parametrize("page", CURRENT, ids=page_id)
def test_python_names_resolve(page: Path) -> None:
    unresolved = []
    for code in CODE.findall(page.read_text()):
        match = PYTHON_NAME.match(code)
        if match and not resolves(match.group(1)):
            unresolved.append(match.group(1))
    assert unresolved == []


def resolves(dotted: str) -> bool:
    """`a.b.c`: the longest prefix that is a module (or package) of ours, and the next
    part (if any) a name defined at its top level."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        base = ROOT / "src" / "python" / Path(*parts[:split])
        source = (
            base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        )
        if source.exists():
            rest = parts[split:]
            return (
                not rest or rest[0] in top_level_names(source) or (base / f"{rest[0]}.py").exists()
            )
    return False


def top_level_names(source: Path) -> set[str]:
    names = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names
