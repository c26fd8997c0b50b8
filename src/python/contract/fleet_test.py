"""Where an earlier release's code comes from (`source_tree`): a commit, wheels, a
directory; a commit the clone does not have is said in words."""

from __future__ import annotations

import os
import zipfile

import pytest

from contract.fleet import source_tree
from contract.rolling import PREVIOUS_RELEASE


def test_a_commit_gives_its_src_python(tmp_path):
    tree = source_tree(PREVIOUS_RELEASE, tmp_path)
    assert (tree / "orders" / "main.py").is_file()
    assert "schema_version" not in (tree / "common" / "events" / "contracts.py").read_text()


def test_wheels_are_unpacked_into_one_tree(tmp_path):
    wheels = []
    for name, module in (("orders", "orders/main.py"), ("common", "common/__init__.py")):
        wheel = tmp_path / f"ticketing_{name}-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as packed:
            packed.writestr(module, "# an earlier release\n")
        wheels.append(str(wheel))
    tree = source_tree(os.pathsep.join(wheels), tmp_path)
    assert (tree / "orders/main.py").is_file() and (tree / "common/__init__.py").is_file()
    assert source_tree(str(tree), tmp_path) == tree  # a directory is taken as it is


def test_a_commit_the_clone_lacks_is_said_with_what_to_do(tmp_path):
    with pytest.raises(RuntimeError, match="a shallow clone\\? `git fetch --unshallow`"):
        source_tree("0" * 40, tmp_path)
