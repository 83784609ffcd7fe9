"""Top-level usage, --help, --version, `eplb algorithms` and `eplb demo`."""

import json
import re
from pathlib import Path

import pytest

from cli_support import algorithm_args, stderr_on_a_terminal, usage_error

HEADER = Path(__file__).resolve().parents[2] / "capi" / "include" / "eplb" / "eplb.h"

HELP_MENTIONS = {
    (): ["plan", "demo", "algorithms", "--help", "--version"],
    ("plan",): ["--counts", "--replicas", "--gpus", "--nodes", "--groups", "--algorithm", "--out",
                "--report", "--json"],
    ("demo",): ["--seed", "--json"],
    ("algorithms",): ["--json"],
}


def header_version():
    match = re.search(r'#define EPLB_VERSION_STRING "([^"]+)"', HEADER.read_text())
    assert match, f"no EPLB_VERSION_STRING in {HEADER}"
    return match.group(1)


# --- --help, --version --------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("command", list(HELP_MENTIONS), ids=lambda c: " ".join(c) or "eplb")
def test_help(eplb, command, flag):
    result = eplb(*command, flag)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Usage: eplb" in result.stdout
    for option in HELP_MENTIONS[command]:
        assert option in result.stdout, f"{option} not in `eplb {' '.join(command)} {flag}`"


def test_help_wins_over_missing_required_options(eplb):
    result = eplb("plan", "--replicas", "16", "--help")
    assert result.returncode == 0
    assert "--counts" in result.stdout


def test_version(eplb):
    result = eplb("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"eplb {header_version()}"
    assert re.fullmatch(r"eplb \d+\.\d+\.\d+\n", result.stdout)


def test_version_in_top_level_help(eplb):
    assert header_version() in eplb("--help").stdout


# --- Top-level usage errors ---------------------------------------------------------------------


def test_no_subcommand(eplb):
    usage_error(eplb(), "subcommand")


def test_unknown_subcommand_is_named(eplb):
    message = usage_error(eplb("frobnicate"), "frobnicate")
    for known in ("plan", "demo", "algorithms"):
        assert known in message


def test_unknown_subcommand_with_options(eplb):
    usage_error(eplb("pla", "--counts", "x.json"), "pla")


def test_unknown_top_level_option_is_named(eplb):
    usage_error(eplb("--verbose"), "--verbose")


def test_unknown_option_before_subcommand(eplb):
    usage_error(eplb("--verbose", "algorithms"), "--verbose")


@pytest.mark.parametrize("command", [["algorithms", "--table"], ["demo", "--fast"]])
def test_unknown_subcommand_option_is_named(eplb, command):
    usage_error(eplb(*command), command[-1])


# --- eplb algorithms ----------------------------------------------------------------------------


def test_algorithms_json(eplb, algorithm_names):
    result = eplb("algorithms", "--json")
    assert result.stderr == ""
    entries = json.loads(result.stdout)["algorithms"]
    assert [entry["id"] for entry in entries] == list(range(1, len(entries) + 1))
    assert {"deepseek", "trivial"} <= set(algorithm_names)
    assert all(entry["description"] for entry in entries)


def test_algorithms_table(eplb, algorithm_names):
    result = eplb("algorithms")
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()[2:] if line.strip()]
    assert names == algorithm_names


def test_every_listed_algorithm_plans(eplb, workdir, readme_counts, algorithm_names):
    for name in algorithm_names:
        out = workdir / f"{name}.json"
        result = eplb("plan", "--counts", readme_counts, "--replicas", "16", "--gpus", "8",
                      *algorithm_args(name), "--out", out)
        assert result.returncode == 0, (name, result.stderr)
        rows = json.loads(out.read_text())["physical_to_logical_map"]
        assert all(sorted(set(row)) == list(range(12)) for row in rows), name


# --- eplb demo ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_json(eplb):
    result = eplb("demo", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def test_demo_table_has_every_algorithm(eplb, algorithm_names):
    result = eplb("demo")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    labels = [line.split("  ")[0] for line in result.stdout.splitlines()]
    for name in algorithm_names + ["no replication"]:
        assert name in labels, f"no row for {name!r} in the demo table:\n{result.stdout}"
    assert "balancedness" in result.stdout


def test_demo_json_results(demo_json, algorithm_names):
    results = demo_json["results"]
    assert isinstance(results, list) and results
    labels = {entry["algorithm"] for entry in results}
    assert set(algorithm_names) | {"no replication"} <= labels
    for entry in results:
        assert 0 < entry["balancedness"] <= 1, entry
        assert entry["max_load_over_bound"] >= 1 - 1e-12, entry
        assert entry["num_physical_experts"] >= demo_json["workload"]["num_experts"]
        assert entry["plan_ms"] >= 0
    baseline = next(e for e in results if e["algorithm"] == "no replication")
    assert baseline["num_physical_experts"] == demo_json["workload"]["num_experts"]
    assert baseline["max_replicas"] == 1


def test_demo_replication_beats_no_replication(demo_json):
    results = demo_json["results"]
    baseline = next(e for e in results if e["algorithm"] == "no replication")
    deepseek = [e for e in results if e["algorithm"] == "deepseek"]
    assert deepseek and all(e["balancedness"] > baseline["balancedness"] for e in deepseek)


def test_demo_seed(eplb, demo_json):
    result = eplb("demo", "--json", "--seed", "2")
    assert result.returncode == 0, result.stderr
    other = json.loads(result.stdout)
    assert demo_json["workload"]["seed"] == 1
    assert other["workload"]["seed"] == 2
    assert [e["balancedness"] for e in other["results"]] != \
        [e["balancedness"] for e in demo_json["results"]]


def test_demo_bad_seed(eplb):
    usage_error(eplb("demo", "--seed", "abc"), "--seed", "abc")


def test_progress_shows_on_a_terminal_only(eplb_path):
    """Progress goes to stderr when it is a terminal (and is erased at the end), never into a
    pipe. EPLB_PROGRESS_DELAY_MS=0 shows it at once, so the test does not depend on speed."""
    import os
    import subprocess

    env = dict(os.environ, EPLB_PROGRESS_DELAY_MS="0")
    status, seen = stderr_on_a_terminal([eplb_path, "demo"], env)
    assert status == 0
    assert b"demo: planning with" in seen
    assert seen.endswith(b"\r\x1b[K"), seen[-40:]  # the line is erased at the end
    piped = subprocess.run([eplb_path, "demo"], capture_output=True, env=env, check=True)
    assert piped.stderr == b""
