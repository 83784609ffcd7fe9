"""`eplb plan` success paths: the published DeepSeek example, the load-file forms, the
SGLang placement file, the JSON report (checked against an independent model) and the summary."""

import json
import os
import random

import pytest

from cli_support import (
    README_ARGS,
    README_DEEPSEEK,
    README_GLOBAL_PHY2LOG,
    README_PHY2LOG,
    README_WEIGHTS,
    algorithm_args,
    close,
    layer_metrics,
    replica_counts,
    trivial_row,
    usage_error,
)

REPORT_KEYS = {"algorithm", "policy", "num_layers", "num_logical_experts", "num_physical_experts",
               "num_gpus", "num_nodes", "num_groups", "plan_seconds", "summary", "layers"}
SUMMARY_KEYS = {"layers", "loaded_layers", "balancedness", "min_balancedness",
                "node_balancedness", "max_over_mean", "max_load_over_bound",
                "worst_max_load_over_bound", "duplicate_pairs", "max_replicas"}
LAYER_KEYS = {"layer", "total_load", "mean_gpu_load", "max_gpu_load", "lower_bound",
              "balancedness", "node_balancedness", "max_load_over_bound", "duplicate_gpus",
              "max_replicas"}


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstderr: {result.stderr}"
    assert result.stderr == ""
    return result


def read_map(path):
    with open(path) as f:
        document = json.load(f)
    assert list(document) == ["physical_to_logical_map"], "exactly one key"
    return document["physical_to_logical_map"]


def plan_map(eplb, workdir, counts, *args):
    out = workdir / "plan.json"
    ok(eplb("plan", "--counts", counts, *args, "--out", out))
    return read_map(out)


def assert_valid_map(phy2log, num_layers, num_physical, num_logical):
    assert len(phy2log) == num_layers
    for layer, row in enumerate(phy2log):
        assert len(row) == num_physical, f"layer {layer}"
        assert all(isinstance(e, int) and 0 <= e < num_logical for e in row), f"layer {layer}"
        assert set(row) == set(range(num_logical)), f"layer {layer}: an expert is missing"


# --- The published example ----------------------------------------------------------------------


def test_readme_example_hierarchical(eplb, workdir, readme_counts):
    out = workdir / "x.json"
    result = ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--algorithm", "deepseek",
                     "--out", out))
    assert read_map(out) == README_PHY2LOG
    assert f"Wrote {out}" in result.stdout


def test_readme_example_written_relative_to_cwd(eplb, workdir, readme_counts):
    ok(eplb("plan", "--counts", "readme.json", *README_ARGS, "--algorithm", "deepseek", "--out",
            "x.json", cwd=workdir.path))
    assert read_map(workdir / "x.json") == README_PHY2LOG
    assert workdir.listing() == ["readme.json", "x.json"]


def test_readme_example_global_policy(eplb, workdir, readme_counts):
    args = ["--replicas", "16", "--groups", "3", "--nodes", "2", "--gpus", "8"]
    assert plan_map(eplb, workdir, readme_counts, *args, "--algorithm", "deepseek") == \
        README_GLOBAL_PHY2LOG
    report = json.loads(ok(eplb("plan", "--counts", readme_counts, *args, "--report")).stdout)
    assert report["policy"] == "global"


def test_default_algorithm(eplb, workdir, readme_counts, algorithm_names):
    # No --algorithm and --algorithm default are the same planner, one of the listed ones.
    implicit = plan_map(eplb, workdir, readme_counts, *README_ARGS)
    assert plan_map(eplb, workdir, readme_counts, *README_ARGS, "--algorithm", "default") == \
        implicit
    assert_valid_map(implicit, 2, 16, 12)
    report = json.loads(ok(eplb("plan", "--counts", readme_counts, *README_ARGS,
                                "--report")).stdout)
    assert report["algorithm"] in algorithm_names
    named = plan_map(eplb, workdir, readme_counts, *README_ARGS, "--algorithm",
                     report["algorithm"])
    assert named == implicit


def test_float_loads_give_the_same_plan(eplb, workdir):
    counts = workdir.counts([[float(w) for w in row] for row in README_WEIGHTS])
    assert plan_map(eplb, workdir, counts, *README_DEEPSEEK) == README_PHY2LOG


def test_extra_keys_are_ignored(eplb, workdir):
    counts = workdir.write_json("counts.json", {"rank": 0, "logical_count": README_WEIGHTS,
                                                "average_utilization_rate_over_window": None})
    assert plan_map(eplb, workdir, counts, *README_DEEPSEEK) == README_PHY2LOG


def test_trivial_algorithm(eplb, workdir, readme_counts):
    phy2log = plan_map(eplb, workdir, readme_counts, *README_ARGS, "--algorithm", "trivial")
    assert phy2log == [trivial_row(16, 12)] * 2


def test_no_redundancy(eplb, workdir, readme_counts):
    phy2log = plan_map(eplb, workdir, readme_counts, "--replicas", "12", "--gpus", "4")
    assert_valid_map(phy2log, 2, 12, 12)
    assert all(sorted(row) == list(range(12)) for row in phy2log)


# --- Load-file forms ----------------------------------------------------------------------------


def test_3d_form_is_summed_over_steps(eplb, workdir):
    first = [[w // 2 for w in row] for row in README_WEIGHTS]
    second = [[w - f for w, f in zip(row, frow)] for row, frow in zip(README_WEIGHTS, first)]
    assert first != README_WEIGHTS
    counts = workdir.counts([first, second])
    assert plan_map(eplb, workdir, counts, *README_DEEPSEEK) == README_PHY2LOG
    report = json.loads(ok(eplb("plan", "--counts", counts, *README_DEEPSEEK,
                                "--report")).stdout)
    assert report["num_layers"] == 2 and len(report["layers"]) == 2
    assert [layer["total_load"] for layer in report["layers"]] == \
        [float(sum(row)) for row in README_WEIGHTS]


def test_3d_form_with_one_step(eplb, workdir):
    counts = workdir.counts([README_WEIGHTS])
    assert plan_map(eplb, workdir, counts, *README_DEEPSEEK) == README_PHY2LOG


def test_3d_form_with_many_steps(eplb, workdir):
    steps = [[[0] * 12, [0] * 12] for _ in range(5)]
    for layer, row in enumerate(README_WEIGHTS):
        for expert, weight in enumerate(row):
            for unit in range(weight):
                steps[(unit + expert) % 5][layer][expert] += 1
    counts = workdir.counts(steps)
    assert plan_map(eplb, workdir, counts, *README_DEEPSEEK) == README_PHY2LOG


def test_dense_layers_get_trivial_placement(eplb, workdir):
    # SGLang reports DeepSeek-V3's first three dense layers as all-zero rows: kept, trivial.
    zeros = [0] * 12
    counts = workdir.counts([zeros, README_WEIGHTS[0], zeros, README_WEIGHTS[1]])
    phy2log = plan_map(eplb, workdir, counts, *README_DEEPSEEK)
    assert len(phy2log) == 4
    assert phy2log[0] == trivial_row(16, 12)
    assert phy2log[2] == trivial_row(16, 12)
    assert phy2log[1] == README_PHY2LOG[0]
    assert phy2log[3] == README_PHY2LOG[1]
    report = json.loads(ok(eplb("plan", "--counts", counts, *README_DEEPSEEK,
                                "--report")).stdout)
    assert len(report["layers"]) == 4
    for layer in (0, 2):
        assert report["layers"][layer]["total_load"] == 0
        assert report["layers"][layer]["balancedness"] == 1.0


def test_dense_layers_trivial_with_every_algorithm(eplb, workdir, algorithm_names):
    zeros = [0.0] * 12
    counts = workdir.counts([zeros, README_WEIGHTS[0], zeros])
    for name in algorithm_names:
        phy2log = plan_map(eplb, workdir, counts, *README_ARGS, *algorithm_args(name))
        assert phy2log[0] == phy2log[2] == trivial_row(16, 12), name
        assert_valid_map(phy2log, 3, 16, 12)


def test_dense_layers_option_refuses_inputs_that_have_them(eplb, workdir, readme_counts):
    # SGLang's own files already hold the dense rows (all zero): --dense-layers would add more.
    zeros = [0] * 12
    counts = workdir.counts([zeros, zeros, README_WEIGHTS[0]])
    out = workdir / "dense.json"
    usage_error(eplb("plan", "--counts", counts, *README_DEEPSEEK, "--dense-layers", "2",
                     "--out", out), "the first 2 layers have no load", "leave it out")
    assert not out.exists()
    # Only SGLang's map has dense rows: refused without a .json --out.
    usage_error(eplb("plan", "--counts", readme_counts, *README_DEEPSEEK, "--dense-layers", "1"),
                "--dense-layers applies to SGLang's map")
    usage_error(eplb("plan", "--counts", readme_counts, *README_DEEPSEEK, "--dense-layers", "1",
                     "--out", workdir / "p.eplb"), "--dense-layers applies to SGLang's map")
    # An input of MoE layers only gets the rows written before its own.
    phy2log = plan_map(eplb, workdir, readme_counts, *README_DEEPSEEK, "--dense-layers", "1")
    assert phy2log[0] == trivial_row(16, 12) and phy2log[1:] == README_PHY2LOG


def test_all_zero_matrix(eplb, workdir):
    counts = workdir.counts([[0.0] * 12] * 3)
    phy2log = plan_map(eplb, workdir, counts, *README_ARGS)
    assert phy2log == [trivial_row(16, 12)] * 3


def test_single_layer_single_expert(eplb, workdir):
    counts = workdir.counts([[5]])
    assert plan_map(eplb, workdir, counts, "--replicas", "4", "--gpus", "2") == [[0, 0, 0, 0]]


def test_random_matrix_is_a_valid_placement(eplb, workdir):
    rng = random.Random(7)
    matrix = [[rng.randint(0, 1000) for _ in range(64)] for _ in range(6)]
    counts = workdir.counts(matrix)
    args = ["--replicas", "96", "--gpus", "16", "--nodes", "4", "--groups", "8", "--algorithm",
            "deepseek"]
    phy2log = plan_map(eplb, workdir, counts, *args)
    assert_valid_map(phy2log, 6, 96, 64)
    # Hierarchical: every replica of a group's experts lives on the one node holding the group
    # (8 experts per group, 24 slots = 4 GPUs per node).
    for layer, row in enumerate(phy2log):
        nodes_of_group = {}
        for slot, expert in enumerate(row):
            nodes_of_group.setdefault(expert // 8, set()).add(slot // 24)
        assert all(len(nodes) == 1 for nodes in nodes_of_group.values()), layer
    report = json.loads(ok(eplb("plan", "--counts", counts, *args, "--report")).stdout)
    assert report["policy"] == "hierarchical"
    assert report["num_groups"] == 8
    assert len(report["layers"]) == 6


# --- --out --------------------------------------------------------------------------------------


def test_out_replaces_existing_file_atomically(eplb, workdir, readme_counts):
    out = workdir.write_text("plan.json", '{"physical_to_logical_map": "old"}\n' * 1000)
    ok(eplb("plan", "--counts", readme_counts, *README_DEEPSEEK, "--out", out))
    assert read_map(out) == README_PHY2LOG
    assert workdir.listing() == ["plan.json", "readme.json"], "temporary files left behind"
    assert out.read_text().endswith("\n")
    assert os.stat(out).st_mode & 0o444 == 0o444


def test_out_is_the_same_on_every_run(eplb, workdir, readme_counts):
    out = workdir / "plan.json"
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out))
    first = out.read_bytes()
    for _ in range(3):
        ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out))
        assert out.read_bytes() == first
    assert workdir.listing() == ["plan.json", "readme.json"]


def test_no_out_writes_nothing(eplb, workdir, readme_counts):
    result = ok(eplb("plan", "--counts", "readme.json", *README_ARGS, cwd=workdir.path))
    assert "Wrote" not in result.stdout
    assert workdir.listing() == ["readme.json"]


def test_out_with_report_prints_only_json(eplb, workdir, readme_counts):
    out = workdir / "plan.json"
    result = ok(eplb("plan", "--counts", readme_counts, *README_DEEPSEEK, "--report", "--out",
                     out))
    json.loads(result.stdout)  # nothing but the report on stdout
    assert read_map(out) == README_PHY2LOG


# --- --report -----------------------------------------------------------------------------------


@pytest.fixture
def readme_report(eplb, readme_counts):
    result = ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--algorithm", "deepseek",
                     "--report"))
    return json.loads(result.stdout)


def test_report_shape(readme_report):
    report = readme_report
    assert REPORT_KEYS <= set(report)
    assert report["algorithm"] == "deepseek"
    assert report["policy"] == "hierarchical"
    assert (report["num_layers"], report["num_logical_experts"], report["num_physical_experts"],
            report["num_gpus"], report["num_nodes"], report["num_groups"]) == (2, 12, 16, 8, 2, 4)
    assert isinstance(report["plan_seconds"], float) and 0 <= report["plan_seconds"] < 10
    assert SUMMARY_KEYS <= set(report["summary"])
    assert len(report["layers"]) == 2
    for index, layer in enumerate(report["layers"]):
        assert LAYER_KEYS <= set(layer)
        assert layer["layer"] == index


def test_json_is_an_alias_of_report(eplb, readme_counts, readme_report):
    result = ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--algorithm", "deepseek",
                     "--json"))
    alias = json.loads(result.stdout)
    alias.pop("plan_seconds")
    expected = dict(readme_report)
    expected.pop("plan_seconds")
    assert alias == expected


def test_report_matches_independent_metrics(readme_report):
    """GPU load = sum over a GPU's slots of load / replica count; balancedness = mean / max per
    layer, averaged over layers; the bound is max(mean, best max load per replica)."""
    report = readme_report
    expected = [layer_metrics(row, loads, 8, 2)
                for row, loads in zip(README_PHY2LOG, README_WEIGHTS)]
    for got, want in zip(report["layers"], expected):
        for key in ("total_load", "mean_gpu_load", "max_gpu_load", "balancedness",
                    "node_balancedness", "lower_bound", "max_load_over_bound"):
            assert close(got[key], want[key]), (got["layer"], key, got[key], want[key])
        assert got["duplicate_gpus"] == want["duplicate_gpus"]
        assert got["max_replicas"] == want["max_replicas"]

    summary = report["summary"]
    mean = lambda key: sum(m[key] for m in expected) / len(expected)  # noqa: E731
    assert close(summary["balancedness"], mean("balancedness"))
    assert close(summary["node_balancedness"], mean("node_balancedness"))
    assert close(summary["max_load_over_bound"], mean("max_load_over_bound"))
    assert close(summary["max_over_mean"], mean("max_over_mean"))
    assert close(summary["min_balancedness"], min(m["balancedness"] for m in expected))
    assert close(summary["worst_max_load_over_bound"],
                 max(m["max_load_over_bound"] for m in expected))
    assert summary["duplicate_pairs"] == sum(m["duplicate_gpus"] for m in expected)
    assert summary["max_replicas"] == max(m["max_replicas"] for m in expected)

    # Published numbers (SOURCE.md of the README example): max/mean 1.208 and 1.242.
    assert round(expected[0]["max_over_mean"], 3) == 1.208
    assert round(expected[1]["max_over_mean"], 3) == 1.242


def test_report_of_trivial_plan_matches_independent_metrics(eplb, readme_counts):
    result = ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--algorithm", "trivial",
                     "--report"))
    report = json.loads(result.stdout)
    assert report["algorithm"] == "trivial"
    row = trivial_row(16, 12)
    for got, loads in zip(report["layers"], README_WEIGHTS):
        want = layer_metrics(row, loads, 8, 2)
        assert close(got["balancedness"], want["balancedness"])
        assert close(got["max_gpu_load"], want["max_gpu_load"])
        assert close(got["lower_bound"], want["lower_bound"])
        assert got["max_replicas"] == max(replica_counts(row, 12)) == 2


def test_idle_layers_are_left_out_of_the_summary(eplb, workdir):
    """SGLang's load files start with the dense layers' all-zero rows: they have nothing to
    balance, so the summary averages over the other layers (and says how many it left out)."""
    zeros = [0] * 12
    counts = workdir.counts([zeros, README_WEIGHTS[0], zeros, README_WEIGHTS[1]])
    result = ok(eplb("plan", "--counts", counts, *README_ARGS, "--algorithm", "deepseek",
                     "--report"))
    report = json.loads(result.stdout)
    phy2log = plan_map(eplb, workdir, counts, *README_ARGS, "--algorithm", "deepseek")
    busy = [layer_metrics(phy2log[i], README_WEIGHTS[i // 2], 8, 2) for i in (1, 3)]
    summary = report["summary"]
    assert (summary["layers"], summary["loaded_layers"]) == (4, 2)
    mean = lambda key: sum(m[key] for m in busy) / 2  # noqa: E731
    for key in ("balancedness", "node_balancedness", "max_load_over_bound", "max_over_mean"):
        assert close(summary[key], mean(key)), key
    assert close(summary["min_balancedness"], min(m["balancedness"] for m in busy))
    assert summary["duplicate_pairs"] == sum(m["duplicate_gpus"] for m in busy)
    text = ok(eplb("plan", "--counts", counts, *README_ARGS, "--algorithm", "deepseek")).stdout
    assert "layers without load (left out above)" in text
    assert f"{summary['balancedness']:.4f}" in text
    # Without idle layers the line is not there.
    busy_only = workdir.counts([README_WEIGHTS[0], README_WEIGHTS[1]])
    text = ok(eplb("plan", "--counts", busy_only, *README_ARGS)).stdout
    assert "without load" not in text


# --- The readable summary -----------------------------------------------------------------------


def test_summary_counts_in_the_singular(eplb, workdir):
    counts = workdir.counts([[3, 5]])
    text = ok(eplb("plan", "--counts", counts, "--replicas", "2", "--gpus", "1")).stdout
    assert "Planned 1 layer x 2 experts onto 2 slots per layer (1 GPU in 1 node, 2 per GPU)" in text


def test_summary_says_why_a_hierarchical_algorithm_planned_globally(eplb, readme_counts):
    for algorithm in ("balanced-hierarchical", "deepseek"):
        text = ok(eplb("plan", "--counts", readme_counts, "--replicas", "16", "--gpus", "8",
                       "--nodes", "2", "--groups", "1", "--algorithm", algorithm)).stdout
        assert f"with {algorithm} (global)" in text
        assert "needs --groups to be a multiple of --nodes (here 1 and 2)" in text
    text = ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--algorithm",
                   "balanced-hierarchical")).stdout
    assert "(hierarchical)" in text and "Planned globally" not in text


def test_summary_without_report(eplb, readme_counts, readme_report):
    result = ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--algorithm", "deepseek"))
    text = result.stdout
    with pytest.raises(ValueError):
        json.loads(text)
    assert "Planned 2 layers x 12 experts onto 16 slots per layer" in text
    assert "8 GPUs in 2 nodes, 2 per GPU" in text
    assert "deepseek (hierarchical)" in text
    assert "balancedness" in text
    assert f"{readme_report['summary']['balancedness']:.4f}" in text
    assert f"{readme_report['summary']['max_load_over_bound']:.4f}" in text
    assert "Wrote" not in text
