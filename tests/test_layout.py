"""The distribution's layout: three import packages of this project, and the dependency direction."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["ticketfmt", "converters", "cards"])
def test_packages_resolve_to_this_project(package: str) -> None:
    # Another installed package called `converters` or `cards` would shadow ours.
    module = __import__(package)
    assert Path(module.__file__).resolve().parent == ROOT / package


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(__import__("sys").executable).parent / "lint-imports")
    proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:]
