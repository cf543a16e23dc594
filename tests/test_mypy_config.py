"""The type checker's configuration applies: strict, over everything the repository runs.

A strict setting lost with a moved or deleted config file goes unnoticed: every file
still "passes". These tests read the configuration and run mypy with it on a file that
strict mode must refuse.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # mypy itself depends on tomli before Python 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def test_mypy_checks_every_tree_strictly() -> None:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["mypy"]
    assert config["strict"] is True
    assert config["warn_unreachable"] is True
    assert config["files"] == ["src", "examples", "tests", "bench", "scripts"]


def test_the_strict_flags_reach_a_checked_file(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def untyped(value):\n    return value\n\n\ndef typed() -> int:\n    return 'x'\n"
    )

    # In a process of its own: mypy raises the recursion limit of the process it runs in.
    argv = [sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT)]
    argv += ["--cache-dir", os.devnull, str(sample)]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    stdout = run.stdout

    assert run.returncode == 1, stdout + run.stderr
    assert "sample.py:1: error: Function is missing a type annotation  [no-untyped-def]" in stdout
    assert "sample.py:6: error: Incompatible return value type" in stdout
