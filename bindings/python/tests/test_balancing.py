"""Shared-expert waterfill, the workload simulator and the extra metrics against independent
oracles: a straightforward Python waterfill written from the header's rule, brute-force optima,
and properties recounted in numpy."""

import itertools

import numpy as np
import pytest

import eplb
from eplb import capi


def waterfill_oracle(placement, slots, source=None, weights=None, loads=None, any_gpu=False):
    """The header's rule, literally: candidates = the GPUs of a token's slots plus its source
    (every GPU with any_gpu); tokens with fewer candidates first, then in token order; each takes
    the candidate with the smallest weighted load after taking it, ties to its source, then the
    lowest GPU id. loads None: one per valid entry."""
    gpus, per_gpu = placement.num_gpus, placement.slots_per_gpu
    weights = np.ones(gpus) if weights is None else np.asarray(weights, dtype=float)
    if loads is None:
        loads = np.zeros(gpus)
        for s in slots.ravel():
            if s >= 0:
                loads[s // per_gpu] += 1
    loads = np.array(loads, dtype=float)
    candidates = []
    for i, row in enumerate(slots):
        gs = {int(s) // per_gpu for s in row if s >= 0}
        if gs and source is not None:
            gs.add(int(source[i]))
        if gs and any_gpu:
            gs = set(range(gpus))
        candidates.append(gs)
    shared = np.full(len(slots), -1)
    for i in sorted(range(len(slots)), key=lambda i: (len(candidates[i]), i)):
        if not candidates[i]:
            continue
        src = -1 if source is None else int(source[i])
        best = min(candidates[i], key=lambda g: (weights[g] * (loads[g] + 1), g != src, g))
        loads[best] += 1
        shared[i] = placement.num_physical_experts + best
    return np.column_stack([slots, shared]).astype(np.int32), loads


def test_waterfill_matches_the_rule_written_in_python():
    rng = np.random.default_rng(1)
    for trial in range(60):
        nodes = int(rng.choice([1, 2]))
        gpus = nodes * int(rng.integers(1, 5))
        per_gpu = int(rng.integers(1, 4))
        slots_total, experts = gpus * per_gpu, gpus * per_gpu  # only the topology matters
        placement = eplb.Placement.from_phy2log([np.arange(experts)], experts, nodes, gpus)
        tokens, top_k = int(rng.integers(0, 40)), int(rng.integers(1, 5))
        slots = rng.integers(-1, slots_total, size=(tokens, top_k)).astype(np.int32)
        source = rng.integers(0, gpus, tokens) if trial % 2 else None
        # Small integer weights and loads make ties common (they exercise the tie rules).
        weights = rng.integers(1, 3, gpus).astype(float) if trial % 3 == 1 else None
        loads = rng.integers(0, 4, gpus).astype(float) if trial % 4 >= 2 else None
        any_gpu = trial % 5 == 0
        given_loads = None if loads is None else loads.copy()
        out, out_loads = eplb.shared_expert_waterfill(placement, slots, source, weights, loads,
                                                      any_gpu=any_gpu)
        want, want_loads = waterfill_oracle(placement, slots, source, weights, loads, any_gpu)
        assert out.dtype == np.int32 and out.shape == (tokens, top_k + 1)
        assert out.tolist() == want.tolist()
        assert out_loads.tolist() == want_loads.tolist()
        if loads is not None:
            assert loads.tolist() == given_loads.tolist()  # the caller's array is not modified
        # Stated properties, independently of the oracle.
        routed = (slots >= 0).any(axis=1)
        assert (out[~routed, top_k] == -1).all()
        chosen = out[routed, top_k] - slots_total
        for row, g, i in zip(slots[routed], chosen, np.flatnonzero(routed)):
            own = {int(s) // per_gpu for s in row if s >= 0}
            if source is not None:
                own.add(int(source[i]))
            assert any_gpu or g in own
        assert out_loads.sum() == pytest.approx(
            (loads.sum() if loads is not None else (slots >= 0).sum()) + routed.sum())
        again, again_loads = eplb.shared_expert_waterfill(placement, slots, source, weights, loads,
                                                          any_gpu=any_gpu)
        assert again.tolist() == out.tolist() and again_loads.tolist() == out_loads.tolist()


def test_waterfill_fills_least_loaded_first():
    # Four GPUs, one slot each; every token may use every GPU: the shared work levels the loads.
    placement = eplb.Placement.from_phy2log([np.arange(4)], 4, 1, 4)
    slots = np.zeros((10, 1), dtype=np.int32)
    out, loads = eplb.shared_expert_waterfill(placement, slots, gpu_loads=[10, 0, 3, 5],
                                              any_gpu=True)
    assert loads.tolist() == [10, 6, 6, 6]
    assert np.bincount(out[:, 1] - 4, minlength=4).tolist() == [0, 6, 3, 1]
    # A GPU twice as slow takes half as much: weighted loads after each choice stay level.
    out, loads = eplb.shared_expert_waterfill(placement, np.zeros((9, 1), np.int32),
                                              gpu_weights=[2, 1, 1, 1], gpu_loads=[0, 0, 0, 0],
                                              any_gpu=True)
    assert loads.tolist() == [1, 3, 3, 2]  # GPU 0 ends at weighted load 2, like the others


def test_waterfill_bad_input_raises_with_the_c_status():
    placement = eplb.Placement.from_phy2log([np.arange(8)], 8, 2, 4)
    slots = np.array([[0, 2], [1, 7]], dtype=np.int32)
    invalid = capi.EPLB_ERR_INVALID_ARGUMENT
    cases = [
        (dict(topk_slots=[[0, 8]]), "topk_slots[1] = 8"),  # the library names the entry
        (dict(topk_slots=[[0, -2]]), "-2"),
        (dict(topk_slots=np.zeros((2, 0), np.int32)), "top_k (0)"),
        (dict(topk_slots=[0, 1]), "2-D"),
        (dict(topk_slots=[[0.5, 1]]), "integers"),
        (dict(topk_slots=[[2**31, 1]]), "outside int32"),
        (dict(source_gpu=[0]), "source_gpu"),
        (dict(source_gpu=[0, 4]), "source_gpu[1] = 4"),
        (dict(gpu_loads=[1, 2, 3]), "gpu_loads"),
        (dict(gpu_loads=[1, -1, 0, 0]), "gpu_loads[1]"),
        (dict(gpu_weights=[1, 1, 0, 1]), "gpu_weights[2]"),
        (dict(gpu_weights=[1, 1]), "gpu_weights"),
    ]
    for kwargs, part in cases:
        kwargs = {"topk_slots": slots, **kwargs}
        with pytest.raises(eplb.InvalidArgumentError) as info:
            eplb.shared_expert_waterfill(placement, **kwargs)
        assert info.value.status == invalid
        assert part in info.value.message, (kwargs, info.value.message)
    # The raw module checks the lengths the C function does not take before calling it.
    out = np.empty((2, 3), np.int32)
    for args, part in [((np.array([0], np.int32), None, None), "source_gpu has 1 entries"),
                       ((None, np.ones(4), np.zeros(3)), "gpu_loads has 3 entries"),
                       ((None, np.ones(3), None), "gpu_len (3)")]:
        with pytest.raises(eplb.InvalidArgumentError) as info:
            capi.eplb_shared_expert_waterfill(placement._h, slots, *args, 0, out)
        assert info.value.status == invalid and part in info.value.message
    with pytest.raises(eplb.InvalidArgumentError) as info:
        capi.eplb_shared_expert_waterfill(placement._h, slots, None, None, None, 2, out)
    assert "flags (2)" in info.value.message
    with pytest.raises(eplb.InvalidArgumentError) as info:  # out_topk of the wrong size
        capi.eplb_shared_expert_waterfill(placement._h, slots, None, None, None, 0,
                                          np.empty(5, np.int32))
    assert "out_topk_len (5)" in info.value.message
    # A later failure of the library itself gets the library's message, not a stale one.
    with pytest.raises(eplb.InvalidArgumentError) as info:
        eplb.shared_expert_waterfill(placement, [[0, 9]])
    assert "topk_slots" in info.value.message and "entries" not in info.value.message


def test_workload_batches_are_valid_and_deterministic():
    w = eplb.Workload(num_layers=3, num_experts=64, top_k=6, seed=7)
    assert (w.num_layers, w.num_experts, w.top_k) == (3, 64, 6)
    batches = [w.next_batch(50) for _ in range(3)]
    for b in batches:
        assert b.dtype == np.int32 and b.shape == (3, 50, 6)
        assert b.min() >= 0 and b.max() < 64
        rows = np.sort(b.reshape(-1, 6), axis=1)
        assert (np.diff(rows, axis=1) > 0).all()  # distinct within a row
    same = eplb.Workload(num_layers=3, num_experts=64, top_k=6, seed=7)
    assert all((same.next_batch(50) == b).all() for b in batches)
    other = eplb.Workload(num_layers=3, num_experts=64, top_k=6, seed=8)
    assert not (other.next_batch(50) == batches[0]).all()
    # Defaults are the library's: 1 layer, 256 experts, top 8.
    with eplb.Workload() as default:
        assert default.next_batch(2).shape == (1, 2, 8)
    # The batches feed a tracker, whose loads are the id counts.
    tracker = eplb.Tracker(3, 64, 6)
    for layer in range(3):
        tracker.record(layer, batches[0][layer])
    counts = np.array([np.bincount(batches[0][layer].ravel(), minlength=64) for layer in range(3)])
    assert (tracker.loads() == counts).all()


def test_workload_group_limited_routing_and_popularity():
    # DeepSeek-V3 style: 8 groups of 8 experts, a token uses at most 4 groups.
    w = eplb.Workload(num_layers=2, num_experts=64, top_k=8, num_groups=8, topk_groups=4, seed=1)
    batch = w.next_batch(400)
    groups = batch // 8
    used = np.array([[len(set(row)) for row in layer] for layer in groups.tolist()])
    assert used.max() <= 4
    unlimited = eplb.Workload(num_layers=2, num_experts=64, top_k=8, num_groups=8, seed=1)
    used = [len(set(row)) for row in (unlimited.next_batch(400)[0] // 8).tolist()]
    assert max(used) > 4
    # No noise, no topics: every token takes the same top_k most popular experts.
    fixed = eplb.Workload(num_experts=32, top_k=4, num_topics=0, noise_scale=0.0, seed=3)
    rows = np.sort(fixed.next_batch(20)[0], axis=1)
    assert (rows == rows[0]).all()


def test_workload_bad_options_raise_with_the_c_status():
    for kwargs, part in [(dict(num_experts=4, top_k=8), "top_k"),
                         (dict(num_layers=0), "num_layers"),
                         (dict(drift_rho=1.5), "drift_rho"),
                         (dict(noise_scale=-1.0), "noise_scale"),
                         (dict(num_layers=-1), "num_layers (-1)"),
                         (dict(seed=2**64), "seed"),
                         (dict(sigma_min="wide"), "sigma_min")]:
        with pytest.raises(eplb.InvalidArgumentError) as info:
            eplb.Workload(**kwargs)
        assert info.value.status == capi.EPLB_ERR_INVALID_ARGUMENT
        assert part in info.value.message, (kwargs, info.value.message)
    w = eplb.Workload(num_experts=16, top_k=2)
    for bad in (0, -1, 1.5):
        with pytest.raises(eplb.InvalidArgumentError):
            w.next_batch(bad)
    w.close()
    with pytest.raises(ValueError):
        w.next_batch(1)


def _min_max_per_replica(loads, slots):
    """Brute force, one slot per GPU: replica counts c >= 1 summing to `slots`; the busiest GPU
    carries max(load / c)."""
    best = np.inf
    for counts in itertools.product(range(1, slots + 1), repeat=len(loads)):
        if sum(counts) == slots:
            best = min(best, max(l / c for l, c in zip(loads, counts)))
    return best


def _pairings(items):
    if not items:
        yield []
        return
    for i in range(1, len(items)):
        for rest in _pairings(items[1:i] + items[i + 1:]):
            yield [(items[0], items[i])] + rest


def _min_max_two_per_gpu(loads, gpus):
    """Brute force, two slots per GPU: every replica count (at most one replica of an expert per
    GPU) and every pairing of the replicas onto GPUs."""
    best = np.inf
    for counts in itertools.product(range(1, gpus + 1), repeat=len(loads)):
        if sum(counts) != 2 * gpus:
            continue
        replicas = [(e, loads[e] / c) for e, c in enumerate(counts) for _ in range(c)]
        for pairs in _pairings(replicas):
            if all(a[0] != b[0] for a, b in pairs):
                best = min(best, max(a[1] + b[1] for a, b in pairs))
    return best


def test_exact_optimum_with_two_slots_per_gpu_matches_a_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(25):
        gpus = int(rng.integers(2, 5))
        experts = int(rng.integers(2, 2 * gpus + 1))
        nodes = 2 if gpus % 2 == 0 and trial % 2 else 1
        loads = rng.uniform(0, 100, experts).round(1)
        if trial % 5 == 0:
            loads[0] = 0
        rows = np.concatenate([np.arange(experts), rng.integers(0, experts, 2 * gpus - experts)])
        placement = eplb.Placement.from_phy2log(rows[None].astype(np.int32), experts, nodes, gpus)
        assert placement.exact_optimum(loads) == pytest.approx(
            _min_max_two_per_gpu(list(loads), gpus), rel=1e-12, abs=1e-12)


def test_exact_optimum_matches_a_brute_force_and_brackets_plans():
    rng = np.random.default_rng(4)
    for _ in range(10):
        experts, gpus = 4, int(rng.integers(4, 8))
        loads = rng.uniform(1, 100, experts)
        planner = eplb.Planner(1, experts, gpus, gpus, algorithm="balanced")
        plan = planner.plan(loads[None])
        optimum = plan.exact_optimum(loads)
        assert optimum == pytest.approx(_min_max_per_replica(loads, gpus), rel=1e-12)
        metrics = plan.layer_metrics(0, loads)
        assert metrics.lower_bound <= optimum + 1e-9 <= metrics.max_gpu_load + 2e-9
        assert metrics.max_gpu_load == pytest.approx(plan.gpu_loads(loads[None]).max())
    # Three slots per GPU is beyond the exact solver: None.
    big = eplb.Placement.from_phy2log([np.arange(12)], 12, 1, 4)
    assert big.exact_optimum(np.ones(12)) is None
    with pytest.raises(eplb.InvalidArgumentError) as info:
        big.exact_optimum(np.ones(11))
    assert info.value.status == capi.EPLB_ERR_INVALID_ARGUMENT


def test_relaxed_bound_and_nodes_touched():
    rng = np.random.default_rng(6)
    loads = rng.uniform(1, 100, 16)
    # 16 experts in 4 groups on 2 nodes, 4 GPUs, 24 slots: [group-major experts | 8 replicas].
    rows = np.concatenate([np.arange(16), rng.integers(0, 16, 8)]).astype(np.int32)[None]
    two_nodes = eplb.Placement.from_phy2log(rows, 16, 2, 4)
    bound = two_nodes.layer_metrics(0, loads).lower_bound
    relaxed = [two_nodes.relaxed_bound(loads, budget) for budget in (0, 2, 8, 100)]
    assert all(r >= bound - 1e-9 for r in relaxed)
    assert all(a >= b - 1e-9 for a, b in zip(relaxed, relaxed[1:]))  # budget only helps
    assert relaxed[-1] == pytest.approx(relaxed[-2])  # above R - E counts as R - E
    one_node = eplb.Placement.from_phy2log(rows, 16, 1, 4)
    assert one_node.relaxed_bound(loads, 0) == pytest.approx(
        one_node.layer_metrics(0, loads).lower_bound)

    # Without replicas each expert's node is fixed: the count is the distinct nodes of a row.
    single = eplb.Placement.from_phy2log([rng.permutation(16)], 16, 2, 4)
    node_of = np.empty(16, int)
    node_of[single.phy2log[0]] = np.arange(16) // 8
    samples = rng.integers(-1, 16, size=(200, 4)).astype(np.int32)
    samples[:5] = -1  # rows without a valid id are left out
    valid = (samples >= 0).any(axis=1)
    want = np.mean([len({node_of[e] for e in row if e >= 0}) for row in samples[valid]])
    assert single.nodes_touched(0, samples) == pytest.approx(want)
    assert one_node.nodes_touched(0, samples) == 1.0
    assert single.nodes_touched(0, np.full((3, 4), -1, np.int32)) == 0.0
    with pytest.raises(eplb.InvalidArgumentError) as info:
        single.nodes_touched(0, [[0, 16]])
    assert info.value.status == capi.EPLB_ERR_INVALID_ARGUMENT and "16" in info.value.message
    with pytest.raises(eplb.InvalidArgumentError):
        single.nodes_touched(1, samples)  # layer out of range (the library)
    with pytest.raises(eplb.InvalidArgumentError):
        single.nodes_touched(0, [0, 1])  # 1-D
    with pytest.raises(eplb.InvalidArgumentError):
        single.relaxed_bound(loads, -1)


def nodes_touched_oracle(phy2log, nodes, rows):
    """The header's rule: experts with replicas on a single node fix it; an expert with a replica
    on a chosen node uses it; else the node holding the most uncovered experts (lowest on ties)
    is chosen, and again. The mean count over rows with a valid id."""
    node_of_slot = np.arange(len(phy2log)) // (len(phy2log) // nodes)
    holders = [set(node_of_slot[phy2log == e].tolist()) for e in range(phy2log.max() + 1)]
    counts = []
    for row in rows:
        experts = {int(e) for e in row if e >= 0}
        if not experts:
            continue
        chosen = {next(iter(holders[e])) for e in experts if len(holders[e]) == 1}
        uncovered = {e for e in experts if not holders[e] & chosen}
        while uncovered:
            chosen.add(max(range(nodes),
                           key=lambda n: (sum(n in holders[e] for e in uncovered), -n)))
            uncovered = {e for e in uncovered if not holders[e] & chosen}
        counts.append(len(chosen))
    return float(np.mean(counts)) if counts else 0.0


def test_nodes_touched_follows_the_stated_rule_with_replicas():
    rng = np.random.default_rng(5)
    for _ in range(100):
        nodes = int(rng.choice([2, 3, 4]))
        gpus = nodes * int(rng.integers(1, 3))
        slots = gpus * int(rng.integers(1, 4))
        experts = int(rng.integers(max(1, slots // 3), slots + 1))
        phy2log = np.concatenate([np.arange(experts), rng.integers(0, experts, slots - experts)])
        rng.shuffle(phy2log)
        placement = eplb.Placement.from_phy2log(phy2log[None], experts, nodes, gpus)
        rows = rng.integers(-1, experts, size=(30, int(rng.integers(1, 5))))
        assert placement.nodes_touched(0, rows) == pytest.approx(
            nodes_touched_oracle(phy2log, nodes, rows), abs=1e-12)
