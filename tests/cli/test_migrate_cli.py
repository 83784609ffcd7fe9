"""`eplb migrate`: the weight migration between two placements, checked against what the files
say, recomputed here: a transfer for every slot whose expert changes, the same-GPU rule counted
from the GPUs' multisets, the target holding the new plan's GPUs (as multisets) with its metrics,
budgets respected, and the step table adding up."""

import collections
import json

import pytest

from cli_support import (README_ARGS, README_WEIGHTS, assert_error, assert_no_crash, close,
                         layer_metrics, usage_error)

GPUS, NODES, SLOTS = 8, 2, 16
PER_GPU = SLOTS // GPUS
OTHER_WEIGHTS = [list(reversed(row)) for row in README_WEIGHTS]


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstderr: {result.stderr}"
    assert result.stderr == ""
    return result


def rows_of(path):
    return json.loads(path.read_text())["physical_to_logical_map"]


def gpu_multisets(row):
    return [collections.Counter(row[g * PER_GPU:(g + 1) * PER_GPU]) for g in range(GPUS)]


@pytest.fixture
def plans(eplb, workdir):
    """OLD planned on the README weights, NEW on the reversed ones; both as .eplb and as SGLang."""
    paths = {}
    for name, weights in [("old", README_WEIGHTS), ("new", OTHER_WEIGHTS)]:
        counts = workdir.counts(weights, name=f"{name}_counts.json")
        ok(eplb("plan", "--counts", counts, *README_ARGS, "--out", workdir / f"{name}.eplb"))
        ok(eplb("convert", workdir / f"{name}.eplb", workdir / f"{name}.json"))
        paths[name] = workdir / f"{name}.eplb"
        paths[name + "_json"] = workdir / f"{name}.json"
        paths[name + "_counts"] = counts
    return paths


def test_counts_match_the_files(eplb, workdir, plans):
    target = workdir / "target.json"
    result = ok(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert", "44MB",
                     "--steps", "--max-layers-per-step", "1", "--out", target, "--json"))
    report = json.loads(result.stdout)
    summary = report["summary"]
    old, new, after = rows_of(plans["old_json"]), rows_of(plans["new_json"]), rows_of(target)
    assert report["bytes_per_expert"] == 44_000_000
    assert report["loads_from"].startswith(str(plans["new"]))
    assert summary["complete"] and summary["has_loads"]

    # One transfer per slot whose expert changes; the target holds NEW's GPUs, relabeled.
    changed = sum(a != b for o, t in zip(old, after) for a, b in zip(o, t))
    assert summary["moved_experts"] == changed > 0
    for new_row, target_row in zip(new, after):
        key = lambda counter: sorted(counter.items())
        assert sorted(map(key, gpu_multisets(new_row))) == sorted(map(key, gpu_multisets(target_row)))
    # vLLM's rule: each GPU keeps what it already holds of its new experts, nothing else.
    rule = sum(sum((n - o).values()) for o_row, n_row in zip(old, new)
               for o, n in zip(gpu_multisets(o_row), gpu_multisets(n_row)))
    assert summary["same_gpu_rule_experts"] == rule
    assert summary["full_migration_experts"] == summary["moved_experts"] <= rule
    assert summary["naive_experts"] == len(old) * SLOTS
    kinds = ("same_gpu", "intra_node", "cross_node")
    assert sum(summary[f"{k}_experts"] for k in kinds) == summary["moved_experts"]
    for k in kinds + ("moved",):
        assert summary[f"{k}_bytes"] == summary[f"{k}_experts"] * 44_000_000

    # Balance: the target has the new plan's metrics under NEW's loads (a pure relabeling).
    for row_new, row_target, loads in zip(new, after, OTHER_WEIGHTS):
        assert close(layer_metrics(row_target, loads, GPUS, NODES)["balancedness"],
                     layer_metrics(row_new, loads, GPUS, NODES)["balancedness"])
    assert close(summary["target_balancedness"], summary["new_balancedness"])

    # Steps: one layer each (--max-layers-per-step 1), adding up to the summary.
    steps = report["steps"]
    assert len(steps) == summary["num_steps"]
    assert all(len(step["layers"]) <= 1 for step in steps)
    for k in kinds + ("moved",):
        assert sum(step[f"{k}_experts"] for step in steps) == summary[f"{k}_experts"]
    assert max(step["moved_bytes"] for step in steps) == summary["max_step_bytes"]


def test_text_report_and_the_json_formats(eplb, workdir, plans):
    # SGLang maps need the topology; the load file gives the gain.
    result = ok(eplb("migrate", plans["old_json"], plans["new_json"], "--gpus", "8", "--nodes",
                     "2", "--counts", plans["new_counts"], "--bytes-per-expert", "1MiB",
                     "--steps", "--out", workdir / "target.eplb"))
    text = result.stdout
    for fragment in ["Migration ", "Loads from " + str(plans["new_counts"]),
                     "1.05 MB per expert", "this migration", "within a node", "across nodes",
                     "keep-on-same-GPU rule (vLLM)", "full reload", "100.0 %", "Balancedness ",
                     "Worth it: ", "step  layers", "Wrote " + str(workdir / "target.eplb")]:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    # The .eplb target keeps the topology and the loads the gain was predicted with.
    info = json.loads(ok(eplb("inspect", workdir / "target.eplb", "--json")).stdout)
    assert (info["num_gpus"], info["num_nodes"], info["has_loads"]) == (8, 2, True)


def test_nothing_to_move(eplb, plans):
    report = json.loads(ok(eplb("migrate", plans["old"], plans["old"], "--json")).stdout)
    summary = report["summary"]
    assert summary["moved_experts"] == 0 and summary["num_steps"] == 0
    assert not summary["worth_it"]
    assert report["steps"] == []
    text = ok(eplb("migrate", plans["old"], plans["old"])).stdout
    assert "Nothing moves" in text and "Worth it: no" in text


def test_a_total_budget_ends_at_a_partial_placement(eplb, workdir, plans):
    full = json.loads(ok(eplb("migrate", plans["old"], plans["new"], "--json")).stdout)["summary"]
    budget = full["moved_experts"] // 2
    report = json.loads(ok(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert",
                                "1KiB", "--max-total-bytes", f"{budget}KiB",
                                "--max-bytes-per-step", "2KiB", "--json",
                                "--out", workdir / "partial.json")).stdout)
    summary = report["summary"]
    assert summary["moved_bytes"] <= budget * 1024
    assert not summary["complete"]
    assert summary["full_migration_experts"] == full["moved_experts"]
    # Steps hold at most two experts, except a step that swaps along a cycle.
    old, partial = rows_of(plans["old_json"]), rows_of(workdir / "partial.json")
    assert summary["moved_experts"] == sum(a != b for o, p in zip(old, partial)
                                           for a, b in zip(o, p))
    text = ok(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert", "1KiB",
                   "--max-total-bytes", f"{budget}KiB")).stdout
    assert "cut the schedule" in text and "the whole re-plan" in text


def test_budget_below_the_smallest_change_moves_nothing(eplb, workdir, plans):
    result = ok(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert", "1KB",
                     "--max-total-bytes", "1", "--out", workdir / "same.json"))
    assert "Nothing moves: --max-total-bytes is below the smallest change" in result.stdout
    assert "every expert is already where" not in result.stdout
    assert "the placement the GPUs hold now" in result.stdout
    assert rows_of(workdir / "same.json") == rows_of(plans["old_json"])


def test_json_without_bytes_has_no_byte_fields(eplb, plans):
    report = json.loads(ok(eplb("migrate", plans["old"], plans["new"], "--json")).stdout)
    assert report["bytes_per_expert"] is None
    assert not any(key.endswith("_bytes") for key in report["summary"])
    assert all("moved_bytes" not in step for step in report["steps"])
    assert report["summary"]["max_step_experts"] == max(s["moved_experts"] for s in report["steps"])


def test_dense_rows(eplb, workdir):
    """Plans of SGLang's load files carry the dense layers' all-zero rows: they never move, the
    report says the full reload counts them, and --dense-layers may not add them twice."""
    paths = []
    for name, weights in [("old", README_WEIGHTS), ("new", OTHER_WEIGHTS)]:
        counts = workdir.counts([[0] * 12] + weights, name=f"{name}_dense.json")
        ok(eplb("plan", "--counts", counts, *README_ARGS, "--out", workdir / f"{name}_d.eplb"))
        paths.append(workdir / f"{name}_d.eplb")
    report = json.loads(ok(eplb("migrate", *paths, "--json")).stdout)
    assert report["layers_without_load"] == 1 and report["num_layers"] == 3
    assert "1 layer without load" in ok(eplb("migrate", *paths)).stdout
    usage_error(eplb("migrate", *paths, "--dense-layers", "1", "--out", workdir / "t.json"),
                "already has the dense layers' rows")
    usage_error(eplb("migrate", *paths, "--dense-layers", "1"), "nothing here uses it")
    # Without them, SGLang's map gets the dense row it expects.
    old, new = plans_without_dense(eplb, workdir)
    ok(eplb("migrate", old, new, "--dense-layers", "1", "--out", workdir / "t.json"))
    rows = rows_of(workdir / "t.json")
    assert len(rows) == 3 and rows[0] == list(range(12)) + list(range(4))


def test_dense_rows_without_loads(eplb, workdir):
    """Maps with no loads (vLLM-Ascend's) judge the dense layers' rows by their trivial
    placement, as eplb convert does: --dense-layers may not add them twice."""
    paths = []
    for name, weights in [("old", README_WEIGHTS), ("new", OTHER_WEIGHTS)]:
        counts = workdir.counts([[0] * 12] + weights, name=f"{name}_dense.json")
        plan = workdir / f"{name}_d.eplb"
        ok(eplb("plan", "--counts", counts, *README_ARGS, "--out", plan))
        vllm = workdir / f"{name}_d_vllm.json"
        ok(eplb("convert", plan, vllm, "--to", "vllm-ascend", "--dense-layers", "0"))
        paths.append(vllm)
    out = workdir / "t.json"
    usage_error(eplb("migrate", *paths, "--gpus", "8", "--dense-layers", "1", "--out", out),
                "the first layer has the trivial placement", "leave it out")
    assert not out.exists()
    ok(eplb("migrate", *paths, "--gpus", "8", "--out", out))
    assert len(rows_of(out)) == 3


def plans_without_dense(eplb, workdir):
    paths = []
    for name, weights in [("old", README_WEIGHTS), ("new", OTHER_WEIGHTS)]:
        counts = workdir.counts(weights, name=f"{name}_plain.json")
        ok(eplb("plan", "--counts", counts, *README_ARGS, "--out", workdir / f"{name}_p.eplb"))
        paths.append(workdir / f"{name}_p.eplb")
    return paths


@pytest.mark.parametrize("size,expected", [
    ("1", 1),
    ("44000000", 44_000_000),
    ("7B", 7),
    ("44MB", 44_000_000),
    ("44mb", 44_000_000),  # units in any case
    ("44 MB", 44_000_000),
    ("1kB", 1000),
    ("1KB", 1000),
    ("2TB", 2 * 10**12),
    ("42MiB", 42 * 2**20),
    ("42mib", 42 * 2**20),
    ("1GiB", 2**30),
    ("1TiB", 2**40),
    ("1.5GB", 1_500_000_000),  # a fraction that comes to whole bytes
    ("1.5GiB", 3 * 2**29),
    ("0.5KiB", 512),
    (".25MB", 250_000),
    ("1.000kB", 1000),
])
def test_sizes(eplb, plans, size, expected):
    report = json.loads(ok(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert", size,
                                "--json")).stdout)
    assert report["bytes_per_expert"] == expected


GRAMMAR = ("a whole number of bytes, or a number with a unit in any case: kB, MB, GB, TB (powers "
           "of 1000) or KiB, MiB, GiB, TiB (of 1024)")


@pytest.mark.parametrize("size,fragments", [
    ("-5MB", ["'-5MB' is negative", GRAMMAR]),
    ("-5", ["'-5' is negative", GRAMMAR]),
    ("44XB", ["'44XB' is not a SIZE", GRAMMAR]),
    ("44M", ["'44M' is not a SIZE", GRAMMAR]),  # 10^6 or 2^20? Neither is guessed.
    ("44Mi", ["'44Mi' is not a SIZE"]),
    ("1EB", ["'1EB' is not a SIZE"]),
    ("MB", ["'MB' is not a SIZE"]),
    ("5.", ["'5.' is not a SIZE"]),
    ("1e9", ["'1e9' is not a SIZE"]),
    ("0x10", ["'0x10' is not a SIZE"]),
    ("", ["'' is not a SIZE"]),
    ("0.1KiB", ["'0.1KiB' is not a whole number of bytes"]),
    ("1.5", ["'1.5' is not a whole number of bytes"]),
    ("0.0000000000000000001TB", ["is not a whole number of bytes"]),
    ("18446744073709551616", ["is too large (at most 18446744073709551615 bytes)"]),
    ("99999999TB", ["'99999999TB' is too large"]),
    ("0", ["--bytes-per-expert must be above 0"]),
    ("0.0GB", ["--bytes-per-expert must be above 0"]),
])
def test_bad_sizes(eplb, plans, size, fragments):
    message = usage_error(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert", size),
                          "--bytes-per-expert", *fragments)
    # Nothing of CLI11's size parser: "multiplied by mb factor", "converted to UINT", its units.
    for internal in ("factor", "UINT", "Could not convert", "Allowed values", "{b,"):
        assert internal not in message


@pytest.mark.parametrize("option", ["--max-bytes-per-step", "--max-total-bytes"])
def test_budgets_are_sizes(eplb, plans, option):
    usage_error(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert", "1KB", option,
                     "1.5kb!"), option, "'1.5kb!' is not a SIZE")
    usage_error(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert", "1KB", option,
                     "0KiB"), f"{option} must be above 0", "leave it out for no limit")
    report = json.loads(ok(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert",
                                "1KiB", option, "1.5MiB", "--json")).stdout)
    assert report["bytes_per_expert"] == 1024


def test_help_lists_the_units_it_takes(eplb):
    text = " ".join(ok(eplb("migrate", "--help")).stdout.split())
    assert GRAMMAR in text
    assert "a fraction must come to whole bytes" in text


def test_errors(eplb, workdir, plans):
    usage_error(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert", "1KB",
                     "--max-total-bytes", "-1000"), "--max-total-bytes", "negative")
    usage_error(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert", "-5"),
                "negative")
    usage_error(eplb("migrate", plans["old"], plans["new"], "--out", workdir / "x.txt"),
                "name it .eplb")
    assert not (workdir / "x.txt").exists()
    usage_error(eplb("migrate", plans["old_json"], plans["new"], "--gpus", "8"),
                "num_nodes", "pass --nodes")
    usage_error(eplb("migrate", plans["old"], plans["new"], "--max-total-bytes", "1GB"),
                "--max-total-bytes needs --bytes-per-expert")
    usage_error(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert", "0"),
                "--bytes-per-expert must be above 0")
    usage_error(eplb("migrate", plans["old"], plans["new"], "--bytes-per-expert", "12XB"),
                "--bytes-per-expert")
    usage_error(eplb("migrate", plans["old"], plans["new"], "--relabel", "sideways"),
                "--relabel")
    other = workdir.counts(README_WEIGHTS, name="other.json")
    ok(eplb("plan", "--counts", other, "--replicas", "24", "--groups", "4", "--nodes", "2",
            "--gpus", "8", "--out", workdir / "wider.eplb"))
    assert_error(eplb("migrate", plans["old"], workdir / "wider.eplb"), 2,
                 "num_physical_experts (24)", "(16)")
    missing = eplb("migrate", plans["old"], workdir / "missing.eplb")
    assert_no_crash(missing)
    assert_error(missing, 2, "missing.eplb")


def test_min_gain_without_loads_is_refused(eplb, workdir, plans):
    """Without loads the gain is not predicted, so a --min-gain the user asked for cannot be
    judged: an error rather than "worth it: yes"."""
    old, new = workdir / "old_noload.json", workdir / "new_noload.json"
    ok(eplb("convert", plans["old"], old, "--to", "vllm-ascend"))
    ok(eplb("convert", plans["new"], new, "--to", "vllm-ascend"))
    out = workdir / "after.json"
    usage_error(eplb("migrate", old, new, "--gpus", "8", "--nodes", "2", "--min-gain", "0.1",
                     "--out", out), "--min-gain needs loads", "--counts")
    assert not out.exists()
    ok(eplb("migrate", old, new, "--gpus", "8", "--nodes", "2", "--min-gain", "0.1",
            "--counts", plans["new_counts"]))
    # Its default does not stand in the way.
    assert "without loads the gain is not predicted" in ok(
        eplb("migrate", old, new, "--gpus", "8", "--nodes", "2")).stdout
