"""`eplb plan --near FILE`: re-plan near the placement the GPUs hold. The numbers the command
prints are checked against its own JSON and against independent Python: the moved experts of a
plan of the same loads near itself are zero, a drifted load moves fewer experts than a fresh plan
would, and the balance stays within --min-balance of the fresh plan."""

import json
import random

from cli_support import usage_error

SHAPE = ["--replicas", "48", "--gpus", "8", "--nodes", "2", "--groups", "4"]
LAYERS, EXPERTS = 6, 32


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstderr: {result.stderr}"
    return result


def loads(seed, base=None):
    rng = random.Random(seed)
    if base is None:
        return [[round(1000 * rng.lognormvariate(0, 1)) for _ in range(EXPERTS)]
                for _ in range(LAYERS)]
    return [[round(x * rng.lognormvariate(0, 0.4)) for x in row] for row in base]


def gpu_balancedness(row, layer_loads, gpus=8):
    """Mean over max GPU load with each expert's load split evenly over its replicas."""
    per_gpu = len(row) // gpus
    count = {e: row.count(e) for e in set(row)}
    gpu = [sum(layer_loads[e] / count[e] for e in row[g * per_gpu:(g + 1) * per_gpu])
           for g in range(gpus)]
    return sum(gpu) / gpus / max(gpu)


def test_near_plan_moves_fewer_experts_and_stays_balanced(eplb, workdir):
    old = loads(1)
    new = loads(2, old)
    ok(eplb("plan", "--counts", workdir.counts(old, "old.json"), *SHAPE, "--out",
            workdir.path / "now.eplb"))
    counts = workdir.counts(new, "new.json")
    out = workdir.path / "near.json"
    report = json.loads(ok(eplb("plan", "--counts", counts, *SHAPE, "--near",
                                workdir.path / "now.eplb", "--out", out, "--json")).stdout)
    near = report["near"]
    assert near["min_balance"] == 0.998
    assert (near["layers_kept"] + near["layers_rebalanced"] + near["layers_partly_replanned"]
            + near["layers_replanned"]) == LAYERS
    assert near["layers_partly_replanned"] == 0  # the balanced algorithm places globally
    assert near["moved_experts"] < near["fresh_plan_moved_experts"]
    with open(out) as f:
        rows = json.load(f)["physical_to_logical_map"]
    fresh = json.loads(ok(eplb("plan", "--counts", counts, *SHAPE, "--json")).stdout)
    for layer, row in enumerate(rows):
        assert set(row) == set(range(EXPERTS)), f"layer {layer}: an expert is missing"
        ours = gpu_balancedness(row, new[layer])
        assert abs(ours - report["layers"][layer]["balancedness"]) < 1e-9
        assert ours >= 0.998 * fresh["layers"][layer]["balancedness"] - 1e-12, f"layer {layer}"
    # The table says the same as the JSON.
    table = ok(eplb("plan", "--counts", counts, *SHAPE, "--near", workdir.path / "now.eplb")).stdout
    assert (f"layers kept: {near['layers_kept']}, rebalanced: {near['layers_rebalanced']}, "
            f"partly re-planned: {near['layers_partly_replanned']}, "
            f"re-planned: {near['layers_replanned']}") in table
    line = next(line for line in table.splitlines() if line.startswith("experts moved from it"))
    assert line.split()[-2:] == [str(near["moved_experts"]), str(near["fresh_plan_moved_experts"])]


def test_the_same_loads_near_their_own_plan_move_nothing(eplb, workdir):
    counts = workdir.counts(loads(3))
    ok(eplb("plan", "--counts", counts, *SHAPE, "--out", workdir.path / "now.json"))
    report = json.loads(ok(eplb("plan", "--counts", counts, *SHAPE, "--near",
                                workdir.path / "now.json", "--min-balance", "1",
                                "--json")).stdout)
    assert report["near"]["layers_kept"] == LAYERS
    assert report["near"]["moved_experts"] == 0
    assert report["near"]["min_balance"] == 1


def test_near_reads_a_map_written_with_dense_layers(eplb, workdir):
    counts = workdir.counts(loads(5))
    ok(eplb("plan", "--counts", counts, *SHAPE, "--dense-layers", "3", "--out",
            workdir.path / "now.json"))
    report = json.loads(ok(eplb("plan", "--counts", counts, *SHAPE, "--dense-layers", "3",
                                "--near", workdir.path / "now.json", "--out",
                                workdir.path / "next.json", "--json")).stdout)
    assert report["near"]["layers_kept"] == LAYERS
    with open(workdir.path / "now.json") as a, open(workdir.path / "next.json") as b:
        assert json.load(a) == json.load(b)


def test_near_errors(eplb, workdir):
    counts = workdir.counts(loads(4))
    ok(eplb("plan", "--counts", counts, "--replicas", "64", "--gpus", "8", "--nodes", "2",
            "--out", workdir.path / "other.eplb"))
    usage_error(eplb("plan", "--counts", counts, *SHAPE, "--near", workdir.path / "other.eplb"),
                "64")
    usage_error(eplb("plan", "--counts", counts, *SHAPE, "--near", workdir.path / "other.eplb",
                     "--robust"), "--near and --robust are exclusive")
    usage_error(eplb("plan", "--counts", counts, *SHAPE, "--near", workdir.path / "other.eplb",
                     "--affinity"), "--near and --affinity are exclusive")
    usage_error(eplb("plan", "--counts", counts, *SHAPE, "--min-balance", "0.9"),
                "--min-balance requires --affinity or --near")
    usage_error(eplb("plan", "--counts", counts, *SHAPE, "--near", workdir.path / "missing.eplb"),
                "missing.eplb")
