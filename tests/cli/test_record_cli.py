"""`eplb record` (top-k traces into a statistics snapshot) and `eplb plan --stats`.

Counts are checked against a brute-force count in Python over the same lines (loads per listed
id, pairs over the distinct valid ids of each row), read back with `eplb inspect --json --pairs`.
"""

import itertools
import json
import os
import random
import resource
from pathlib import Path

import pytest

from cli_support import assert_error, is_sanitized, README_ARGS

MIXTRAL = "real/mixtral-8x7b-routing-traces"


def brute_force(lines, experts):
    """{layer: (loads[E], {(a, b): count})} from JSON-lines text."""
    stats = {}
    for text in lines:
        if not text.strip():
            continue
        row = json.loads(text)
        loads, pairs = stats.setdefault(row["layer"], ([0] * experts, {}))
        ids = [e for e in row["experts"] if e >= 0]
        for e in ids:
            loads[e] += 1
        for a, b in itertools.combinations(sorted(set(ids)), 2):
            pairs[(a, b)] = pairs.get((a, b), 0) + 1
    return stats


def recorded(eplb, path):
    result = eplb("inspect", path, "--json", "--pairs")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def expect_counts(document, expected, experts):
    stats = document["statistics"]
    assert stats["num_experts"] == experts
    for layer in range(stats["num_layers"]):
        loads, pairs = expected.get(layer, ([0] * experts, {}))
        assert stats["loads"][layer] == loads, f"layer {layer}"
        index = 0
        for a in range(experts):
            for b in range(a + 1, experts):
                assert stats["coactivation"][layer][index] == pairs.get((a, b), 0), (layer, a, b)
                index += 1


def random_trace(rng, layers, experts, rows, max_k):
    lines = []
    for token in range(rows):
        for layer in range(layers):
            k = rng.randint(1, max_k)
            ids = [rng.randint(-1, experts - 1) for _ in range(k)]
            lines.append(json.dumps({"layer": layer, "experts": ids, "token_idx": token,
                                     "gating_probs": [1.0 / k] * k}))
    return lines


def test_random_trace_counts_equal_brute_force(eplb, workdir):
    rng = random.Random(5)
    lines = random_trace(rng, 3, 7, 200, 4)
    trace = workdir.write_text("trace.jsonl", "\n".join(lines) + "\n")
    out = workdir / "stats.eplb"
    result = eplb("record", "--trace", trace, "--experts", 7, "--out", out, "--json",
                  "--batch-tokens", 17)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["top_k"] == 4  # the widest row
    assert summary["rows"] == 600
    assert summary["rows_per_layer"] == [200, 200, 200]
    document = recorded(eplb, out)
    assert document["has_placement"] is False
    expect_counts(document, brute_force(lines, 7), 7)


def test_several_traces_and_plan_from_stats(eplb, workdir):
    rng = random.Random(9)
    first = random_trace(rng, 2, 12, 50, 3)
    second = random_trace(rng, 2, 12, 70, 3)
    a = workdir.write_text("a.jsonl", "\n".join(first))
    b = workdir.write_text("b.jsonl", "\n".join(second) + "\n\n")
    out = workdir / "stats.eplb"
    result = eplb("record", "--trace", a, b, "--experts", 12, "--out", out, "--label", "two")
    assert result.returncode == 0, result.stderr
    assert "Wrote" in result.stdout
    expected = brute_force(first + second, 12)
    expect_counts(recorded(eplb, out), expected, 12)

    # plan --stats plans from the tracker's loads: the same plan as --counts with those loads.
    loads = [expected[layer][0] for layer in range(2)]
    counts = workdir.counts(loads)
    from_stats = eplb("plan", "--stats", out, *README_ARGS, "--report")
    from_counts = eplb("plan", "--counts", counts, *README_ARGS, "--report")
    assert from_stats.returncode == 0, from_stats.stderr
    assert from_counts.returncode == 0, from_counts.stderr
    report_stats = json.loads(from_stats.stdout)
    report_counts = json.loads(from_counts.stdout)
    assert report_stats["summary"] == report_counts["summary"]

    # An .eplb --out keeps the statistics next to the placement.
    placement = workdir / "placement.eplb"
    result = eplb("plan", "--stats", out, *README_ARGS, "--out", placement)
    assert result.returncode == 0, result.stderr
    document = recorded(eplb, placement)
    assert document["has_placement"] is True
    expect_counts(document, expected, 12)


def test_plan_stats_errors(eplb, workdir):
    assert_error(eplb("plan", *README_ARGS), 2, "--counts", "--stats")
    counts = workdir.counts([[1] * 12, [2] * 12])
    placement = workdir / "p.eplb"
    assert eplb("plan", "--counts", counts, *README_ARGS, "--out", placement).returncode == 0
    assert_error(eplb("plan", "--stats", placement, *README_ARGS), 2, "--stats", "no co-activation")
    assert_error(eplb("plan", "--stats", workdir / "missing.eplb", *README_ARGS), 2, "--stats",
                 "missing.eplb")
    trace = workdir.write_text("t.jsonl", '{"layer": 0, "experts": [1, 2]}\n')
    stats = workdir / "s.eplb"
    assert eplb("record", "--trace", trace, "--experts", 12, "--out", stats).returncode == 0
    assert_error(eplb("plan", "--stats", stats, "--counts", counts, *README_ARGS), 2, "exclusive")
    assert_error(eplb("plan", "--stats", stats, *README_ARGS, "--robust"), 2, "--robust")


@pytest.mark.parametrize("line, fragments", [
    ("not json", ["t.jsonl:2:", "not valid JSON"]),
    ('{"layer": 0, "experts": [1e400]}', ["t.jsonl:2:", "number overflow parsing '1e400'"]),
    ("[1, 2]", ["t.jsonl:2:", "not a JSON object"]),
    ('{"experts": [1]}', ["t.jsonl:2:", '"layer"']),
    ('{"layer": -1, "experts": [1]}', ["t.jsonl:2:", '"layer" is -1']),
    ('{"layer": 0}', ["t.jsonl:2:", '"experts"']),
    ('{"layer": 0, "experts": 3}', ["t.jsonl:2:", "not a list"]),
    ('{"layer": 0, "experts": [1, 8]}', ["t.jsonl:2:", "expert id 8", "slot 1", "--experts 8"]),
    ('{"layer": 0, "experts": [-2]}', ["t.jsonl:2:", "expert id -2"]),
    ('{"layer": 0, "experts": [1.5]}', ["t.jsonl:2:", "expert id 1.5"]),
    ('{"layer": 4, "experts": [1]}', ["t.jsonl:2:", "unknown layer 4", "--layers 4"]),
    ('{"layer": 0, "experts": [1, 2, 3]}', ["t.jsonl:2:", "more than --top-k 2"]),
])
def test_bad_lines_name_file_and_line(eplb, workdir, line, fragments):
    trace = workdir.write_text("t.jsonl", '{"layer": 0, "experts": [1, 2]}\n' + line + "\n")
    result = eplb("record", "--trace", trace, "--experts", 8, "--layers", 4, "--top-k", 2,
                  "--out", workdir / "s.eplb")
    assert_error(result, 2, *fragments)
    assert "json.exception" not in result.stderr
    assert not (workdir / "s.eplb").exists()


def test_bad_options(eplb, workdir):
    trace = workdir.write_text("t.jsonl", '{"layer": 0, "experts": [1, 2]}\n')
    out = workdir / "s.eplb"
    base = ["record", "--trace", trace, "--experts", 8]
    assert_error(eplb(*base, "--out", out, "--window", "x"), 2, "--window: x not in")
    assert_error(eplb(*base, "--out", out, "--window", "decay", "--decay", 1.5), 2,
                 "--decay: 1.5 is outside")
    assert_error(eplb(*base, "--out", out, "--window", "decay", "--decay", 0), 2,
                 "--decay: 0 is outside (0, 1]")
    # Options of another window are errors, not ignored.
    assert_error(eplb(*base, "--out", out, "--decay", 0.5), 2,
                 "--decay applies to --window decay (--window is cumulative)")
    assert_error(eplb(*base, "--out", out, "--window", "decay", "--window-batches", 4), 2,
                 "--window-batches applies to --window sliding",
                 "(see 'eplb record --help')")  # a usage error points at the command's help
    # record writes a snapshot: a .json name is refused, and a snapshot is not a trace.
    assert_error(eplb(*base, "--out", workdir / "s.json"), 2, "name it FILE.eplb")
    assert not (workdir / "s.json").exists()
    assert eplb(*base, "--out", out).returncode == 0
    assert_error(eplb("record", "--trace", out, "--experts", 8, "--out", workdir / "t.eplb"), 2,
                 "is an .eplb snapshot, not a JSON-lines trace")
    assert_error(eplb("record", "--trace", workdir.path, "--experts", 8, "--out", out), 2,
                 "it is a directory")
    assert_error(eplb("record", "--trace", workdir / "none.jsonl", "--experts", 8, "--out", out),
                 2, "none.jsonl")
    empty = workdir.write_text("e.jsonl", "\n")
    assert_error(eplb("record", "--trace", empty, "--experts", 8, "--out", out), 2, "no rows")


@pytest.mark.parametrize("window", ["sliding", "decay"])
def test_windows_record(eplb, workdir, window):
    rng = random.Random(2)
    lines = random_trace(rng, 2, 6, 100, 2)
    trace = workdir.write_text("t.jsonl", "\n".join(lines))
    out = workdir / "s.eplb"
    # A window holding every batch, or no decay.
    option = {"cumulative": [], "sliding": ["--window-batches", 1000], "decay": ["--decay", 1.0]}
    result = eplb("record", "--trace", trace, "--experts", 6, "--out", out, "--window", window,
                  *option[window], "--batch-tokens", 10, "--json")
    assert result.returncode == 0, result.stderr
    # A window holding every batch (or no decay) counts everything.
    expect_counts(recorded(eplb, out), brute_force(lines, 6), 6)


def test_real_mixtral_traces(eplb, workdir):
    shared = os.environ.get("EPLB_SHARED")
    folder = Path(shared) / "data" / MIXTRAL if shared else None
    if folder is None or not folder.is_dir():
        pytest.skip(f"the Mixtral traces are not available ({MIXTRAL} under EPLB_SHARED)")
    files = [folder / "gsm8k_2_routing.jsonl", folder / "humaneval_2_routing.jsonl",
             folder / "routing_raw_prefill_and_decode.jsonl"]
    out = workdir / "mixtral.eplb"
    result = eplb("record", "--trace", *files, "--experts", 8, "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["num_layers"] == 32 and summary["top_k"] == 2
    lines = []
    for path in files:
        lines += path.read_text().splitlines()
    expect_counts(recorded(eplb, out), brute_force(lines, 8), 8)
    result = eplb("plan", "--stats", out, "--replicas", 16, "--gpus", 4, "--nodes", 2)
    assert result.returncode == 0, result.stderr


def test_a_huge_sample_capacity_costs_only_the_rows_kept(eplb, eplb_path, workdir):
    """--samples is a capacity: 2^31-1 rows of 8 ids would be 64 GB per layer, yet a short trace
    keeps a few rows and every command on the snapshot sizes its memory by them (run under a
    1 GB address-space limit)."""
    if is_sanitized(eplb_path):
        pytest.skip("sanitizers need more address space than this test allows")

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    rng = random.Random(3)
    trace = workdir.write_text("t.jsonl", "\n".join(random_trace(rng, 4, 12, 30, 8)))
    out = workdir / "big.eplb"
    result = eplb("record", "--trace", trace, "--experts", 12, "--out", out,
                  "--samples", str(2**31 - 1), preexec_fn=limit_memory)
    assert result.returncode == 0, result.stderr
    document = recorded(eplb, out)
    assert document["statistics"]["reservoir_capacity"] == 2**31 - 1
    kept = [0] * 4  # every row with a valid id is kept below capacity
    for line in trace.read_text().splitlines():
        row = json.loads(line)
        kept[row["layer"]] += any(e >= 0 for e in row["experts"])
    assert document["statistics"]["sampled_rows_per_layer"] == kept
    for extra in [[], ["--affinity"]]:
        result = eplb("plan", "--stats", out, *README_ARGS, *extra, "--json",
                      preexec_fn=limit_memory)
        assert result.returncode == 0, result.stderr


def test_a_statistics_snapshot_is_not_a_placement(eplb, workdir):
    trace = workdir.write_text("t.jsonl", '{"layer": 0, "experts": [1, 2]}\n')
    stats = workdir / "s.eplb"
    assert eplb("record", "--trace", trace, "--experts", 12, "--out", stats).returncode == 0
    counts = workdir.counts([[1] * 12])
    for args in [["plan", "--counts", counts, *README_ARGS, "--near", stats],
                 ["convert", stats, workdir / "x.json", "--gpus", "8"],
                 ["plot", stats, "--out", workdir / "x.svg", "--nodes", "2"]]:
        message = assert_error(eplb(*args), 2, "holds no placement")
        assert "disagrees" not in message
    assert not (workdir / "x.json").exists() and not (workdir / "x.svg").exists()
