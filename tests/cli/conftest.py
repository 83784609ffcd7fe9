"""Fixtures for the `eplb` CLI tests.

Environment (set by CTest's `cli.pytest`):
  EPLB_CLI            path of the built `eplb` binary (required)
  EPLB_SHARED         the shared reference folder (optional; real-data tests skip without it)
  EPLB_TEST_DATA_DIR  tests/data (optional)

Run by hand:
  EPLB_CLI=build/bin/eplb EPLB_SHARED=/work/shared /usr/bin/python3 -m pytest -q tests/cli
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from cli_support import Result, assert_no_crash



@pytest.fixture(scope="session")
def eplb_path():
    path = os.environ.get("EPLB_CLI")
    if not path:
        pytest.fail("EPLB_CLI is not set: point it at the built `eplb` binary "
                    "(e.g. EPLB_CLI=build/bin/eplb)", pytrace=False)
    if not os.access(path, os.X_OK):
        pytest.fail(f"EPLB_CLI={path} is not an executable file", pytrace=False)
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def eplb(eplb_path):
    """Runs `eplb ARGS...`; returns Result(returncode, stdout, stderr).

    Every call is checked for crashes (a signal, an uncaught exception, a sanitizer report), so a
    test only has to check what it is about. Keyword arguments: cwd, stdin (a file object to read
    standard input from; default: empty), stdout (a file object to write stdout to instead of
    capturing it), preexec_fn, timeout.
    """

    def run(*args, cwd=None, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, preexec_fn=None,
            timeout=60):
        completed = subprocess.run(
            [eplb_path, *[str(a) for a in args]],
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            preexec_fn=preexec_fn,
            timeout=timeout,
            check=False,
        )
        result = Result(
            completed.returncode,
            completed.stdout.decode("utf-8", "replace") if completed.stdout is not None else "",
            completed.stderr.decode("utf-8", "replace"),
        )
        assert_no_crash(result, args)
        return result

    return run


class Workdir:
    """A fresh directory per test, with helpers to write load files into it."""

    def __init__(self, path: Path):
        self.path = path

    def __truediv__(self, name):
        return self.path / name

    def write_text(self, name, text):
        target = self.path / name
        target.write_text(text)
        return target

    def write_json(self, name, document):
        return self.write_text(name, json.dumps(document))

    def counts(self, logical_count, name="counts.json"):
        """Writes {"logical_count": logical_count} and returns its path."""
        return self.write_json(name, {"logical_count": logical_count})

    def listing(self):
        return sorted(p.name for p in self.path.iterdir())


@pytest.fixture
def workdir(tmp_path):
    return Workdir(tmp_path)


@pytest.fixture
def readme_counts(workdir):
    """The DeepSeek EPLB README example as an SGLang load file."""
    from cli_support import README_WEIGHTS

    return workdir.counts(README_WEIGHTS, name="readme.json")


@pytest.fixture(scope="session")
def shared_dir():
    path = os.environ.get("EPLB_SHARED")
    return Path(path) if path else None


@pytest.fixture(scope="session")
def algorithm_names(eplb):
    """Names from `eplb algorithms --json`, in id order."""
    result = eplb("algorithms", "--json")
    assert result.returncode == 0, result.stderr
    return [entry["name"] for entry in json.loads(result.stdout)["algorithms"]]
