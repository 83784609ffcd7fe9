"""`eplb plan --stats ... --affinity`: affinity-aware planning from recorded top-k traces.

The traces are generated here with a known structure (tokens pick experts from fixed pairs), so
the balance-only plan's traffic is measured independently in Python with the traffic rule and the
affinity plan must not be worse; errors are checked too.
"""

import json
import random
import re

from cli_support import assert_error, stderr_on_a_terminal


def write_trace(path, layers=4, experts=8, tokens=600, seed=3):
    """Tokens pick (2i, 2i+1) pairs mostly, so the two experts of a pair should share a node."""
    rng = random.Random(seed)
    lines = []
    for layer in range(layers):
        for _ in range(tokens):
            if rng.random() < 0.8:
                pair = rng.randrange(experts // 2)
                ids = [2 * pair, 2 * pair + 1]
            else:
                ids = rng.sample(range(experts), 2)
            lines.append(json.dumps({"layer": layer, "experts": ids}))
    path.write_text("\n".join(lines) + "\n")


def nodes_touched(phy2log_row, rows, slots_per_node):
    """The traffic rule of the C API, in Python (the oracle)."""
    nodes_of = {}
    for slot, expert in enumerate(phy2log_row):
        nodes_of.setdefault(expert, set()).add(slot // slots_per_node)
    total = 0
    for row in rows:
        experts = list(dict.fromkeys(e for e in row if e >= 0))
        chosen = set()
        for e in experts:
            if len(nodes_of[e]) == 1:
                chosen |= nodes_of[e]
        uncovered = [e for e in experts if not (nodes_of[e] & chosen)]
        while uncovered:
            votes = {}
            for e in uncovered:
                for n in nodes_of[e]:
                    votes[n] = votes.get(n, 0) + 1
            best = min(votes, key=lambda n: (-votes[n], n))
            chosen.add(best)
            uncovered = [e for e in uncovered if not (nodes_of[e] & chosen)]
        total += len(chosen)
    return total / len(rows)


def test_affinity_lowers_nodes_touched(eplb, workdir):
    trace = workdir.path / "trace.jsonl"
    write_trace(trace)
    stats = workdir.path / "stats.eplb"
    result = eplb("record", "--trace", trace, "--experts", 8, "--out", stats)
    assert result.returncode == 0, result.stderr
    common = ["plan", "--stats", stats, "--replicas", 16, "--gpus", 8, "--nodes", 2]
    base = eplb(*common, "--json")
    assert base.returncode == 0, base.stderr
    improved = eplb(*common, "--affinity", "--json")
    assert improved.returncode == 0, improved.stderr
    base_report = json.loads(base.stdout)
    report = json.loads(improved.stdout)
    traffic = report["traffic"]
    assert traffic["affinity"] is True
    assert traffic["lower_bound"] == 1.0
    assert abs(traffic["balance_only_nodes_touched"]
               - base_report["traffic"]["nodes_touched_per_token"]) < 1e-12
    # Pairs can share a node: the affinity plan must cut traffic substantially.
    assert traffic["nodes_touched_per_token"] < 0.85 * traffic["balance_only_nodes_touched"]
    # Balance bound (default 0.99 of the balance-only plan), layer by layer.
    for mine, theirs in zip(report["layers"], base_report["layers"]):
        assert mine["max_gpu_load"] <= theirs["max_gpu_load"] / 0.99 * (1 + 1e-9)

    # The Python oracle agrees with the reported figure for the written placement.
    out = workdir.path / "placement.json"
    result = eplb(*common, "--affinity", "--out", out)
    assert result.returncode == 0, result.stderr
    phy2log = json.loads(out.read_text())["physical_to_logical_map"]
    lines = [json.loads(t) for t in trace.read_text().splitlines()]
    mean = sum(nodes_touched(phy2log[layer], [r["experts"] for r in lines if r["layer"] == layer],
                             8) for layer in range(4)) / 4
    assert abs(mean - traffic["nodes_touched_per_token"]) < 1e-9


def test_planning_progress_on_a_terminal_only(eplb, eplb_path, workdir):
    """A plan (seconds with --affinity on a whole model) shows what it does, the share of its
    layers planned and the seconds so far on a terminal, erased at the end, and nothing in a pipe.
    EPLB_PROGRESS_DELAY_MS=0 shows it at once, so the test does not depend on speed."""
    import os
    import subprocess

    trace = workdir.path / "trace.jsonl"
    write_trace(trace)
    stats = workdir.path / "stats.eplb"
    assert eplb("record", "--trace", trace, "--experts", 8, "--out", stats).returncode == 0
    args = [eplb_path, "plan", "--stats", stats, "--replicas", 16, "--gpus", 8, "--nodes", 2,
            "--affinity", "--threads", 2]
    env = dict(os.environ, EPLB_PROGRESS_DELAY_MS="0")
    status, seen = stderr_on_a_terminal(args, env)
    assert status == 0
    shown = re.findall(rb"planning 4 layers with --affinity on 2 threads: (\d+) % \d+\.\d s", seen)
    assert shown, seen
    assert all(0 <= int(percent) <= 100 for percent in shown), shown
    assert seen.endswith(b"\r\x1b[K"), seen[-40:]  # the line is erased at the end
    piped = subprocess.run([str(a) for a in args], capture_output=True, env=env, check=True)
    assert piped.stderr == b""


def test_affinity_errors(eplb, workdir, readme_counts):
    result = eplb("plan", "--counts", readme_counts, "--replicas", 16, "--gpus", 4, "--nodes", 2,
                  "--affinity")
    assert_error(result, 2, "--affinity needs co-activation statistics", "--stats")
    result = eplb("plan", "--counts", readme_counts, "--replicas", 16, "--gpus", 4,
                  "--min-balance", 0.9)
    assert_error(result, 2, "--min-balance", "--affinity")
    trace = workdir.path / "trace.jsonl"
    write_trace(trace)
    stats = workdir.path / "stats.eplb"
    assert eplb("record", "--trace", trace, "--experts", 8, "--out", stats).returncode == 0
    result = eplb("plan", "--stats", stats, "--replicas", 16, "--gpus", 8, "--nodes", 2,
                  "--affinity", "--min-balance", 1.5)
    assert_error(result, 2, "--min-balance")
