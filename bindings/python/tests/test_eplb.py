"""Tests of the Python binding against independent oracles: DeepSeek's published README example,
numpy recomputations of every derived array, and brute-force tracker statistics."""

import itertools
import threading

import numpy as np
import pytest

import eplb
from eplb import capi

# deepseek-ai/EPLB README example and the reference's output (torch 1.13).
WEIGHT = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
          [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]
PHY2LOG = [[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
           [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]]
LOGCNT = [[1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1],
          [1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1]]
LOG2PHY = [[[12, -1], [15, 13], [11, -1], [6, -1], [7, 5], [0, 2], [1, -1], [3, -1], [4, -1],
            [9, -1], [8, 10], [14, -1]],
           [[13, -1], [15, 11], [8, -1], [14, -1], [9, -1], [10, 12], [2, 4], [0, -1], [6, 3],
            [7, -1], [1, -1], [5, -1]]]


def test_rebalance_experts_reproduces_deepseek_readme():
    phy2log, log2phy, logcnt = eplb.rebalance_experts(WEIGHT, 16, 4, 2, 8)
    assert phy2log.dtype == log2phy.dtype == logcnt.dtype == np.int64
    assert phy2log.tolist() == PHY2LOG
    assert logcnt.tolist() == LOGCNT
    assert log2phy.tolist() == LOG2PHY


def test_readme_snippet_rebalance_experts():
    weight = np.array(WEIGHT, dtype=np.float64)
    # readme-snippet:begin (README.md, Bindings; checked by the python_readme_snippets test)
    import eplb
    phy2log, log2phy, logcnt = eplb.rebalance_experts(weight, num_replicas=16, num_groups=4,
                                                      num_nodes=2, num_gpus=8)  # algorithm="balanced" plans better
    # readme-snippet:end
    assert phy2log.tolist() == PHY2LOG and logcnt.tolist() == LOGCNT


def test_readme_snippet_plan_control_deadline():
    # 600 layers take ~0.1 s to plan: a deadline of 0 s cancels before or during the plan.
    planner = eplb.Planner(600, 256, 288, 32, num_nodes=4)
    loads = np.random.default_rng(0).lognormal(0.0, 1.5, size=(600, 256))
    seconds = 0.0
    # readme-snippet:begin (README.md, Bindings; checked by the python_readme_snippets test)
    control = eplb.PlanControl()  # planning releases the GIL: any thread may cancel
    planner.control = control     # or eplb.Planner(..., control=control)
    deadline = threading.Timer(seconds, control.cancel)
    deadline.start()
    try:
        placement = planner.plan(loads)  # stops at its next layer once cancelled
    except eplb.CancelledError:
        placement = None  # keep the old plan; planner.control = None (or a new one) plans again
    finally:
        deadline.cancel()
    print(control.progress)  # e.g. PlanProgress(steps_done=3, steps_total=600, cancelled=True)
    # readme-snippet:end
    assert placement is None
    done, total, cancelled = control.progress
    assert cancelled and (done < total or total == 0)  # total 0: cancelled before it started
    planner.control = None
    assert planner.plan(loads) == eplb.Planner(600, 256, 288, 32, num_nodes=4).plan(loads)


def test_rebalance_experts_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    phy2log, log2phy, logcnt = eplb.rebalance_experts(torch.tensor(WEIGHT), 16, 4, 2, 8)
    for tensor in (phy2log, log2phy, logcnt):
        assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.int64
    assert phy2log.tolist() == PHY2LOG and logcnt.tolist() == LOGCNT
    assert log2phy.tolist() == LOG2PHY


def _check_consistent(phy2log, log2phy, logcnt, experts):
    """Recomputes logcnt and log2phy's slot sets from phy2log with numpy."""
    for layer in range(phy2log.shape[0]):
        assert np.bincount(phy2log[layer], minlength=experts).tolist() == logcnt[layer].tolist()
        for expert in range(experts):
            slots = sorted(s for s in log2phy[layer, expert] if s >= 0)
            assert slots == np.flatnonzero(phy2log[layer] == expert).tolist()
    assert log2phy.shape[2] == logcnt.max()


@pytest.mark.parametrize("algorithm", ["deepseek", "balanced", "balanced-hierarchical", "trivial"])
def test_rebalance_experts_random_inputs_are_consistent(algorithm):
    rng = np.random.default_rng(7)
    for _ in range(20):
        layers, groups, nodes = rng.integers(1, 4), int(rng.choice([1, 2, 4])), int(rng.choice([1, 2]))
        experts = groups * int(rng.integers(1, 5))
        gpus = nodes * int(rng.integers(1, 4))
        replicas = gpus * int(rng.integers(-(-experts // gpus), -(-experts // gpus) + 3))
        weight = rng.lognormal(size=(layers, experts)) * 100
        phy2log, log2phy, logcnt = eplb.rebalance_experts(weight, replicas, groups, nodes, gpus,
                                                          algorithm=algorithm)
        assert phy2log.shape == (layers, replicas)
        _check_consistent(phy2log, log2phy, logcnt, experts)


def test_balanced_is_never_busier_than_deepseek_on_the_readme_example():
    deepseek = eplb.Planner(2, 12, 16, 8, num_nodes=2, num_groups=4, algorithm="deepseek")
    balanced = eplb.Planner(2, 12, 16, 8, num_nodes=2, num_groups=4, algorithm="balanced")
    ours, theirs = balanced.plan(WEIGHT).gpu_loads(WEIGHT), deepseek.plan(WEIGHT).gpu_loads(WEIGHT)
    assert (ours.max(axis=1) <= theirs.max(axis=1) + 1e-9).all()
    # Per-GPU loads by hand: load / replicas summed over each GPU's two slots.
    placement = deepseek.plan(WEIGHT)
    w, counts = np.array(WEIGHT, float), np.array(LOGCNT)
    phy = np.array(PHY2LOG)
    by_hand = (np.take_along_axis(w / counts, phy, axis=1)).reshape(2, 8, 2).sum(axis=2)
    np.testing.assert_allclose(placement.gpu_loads(WEIGHT), by_hand)


def test_errors_carry_status_and_message():
    with pytest.raises(eplb.InvalidArgumentError) as info:
        eplb.Planner(2, 12, 15, 8)
    assert info.value.status == capi.EPLB_ERR_INVALID_ARGUMENT
    assert "num_physical_experts (15)" in str(info.value) and isinstance(info.value, eplb.Error)
    assert isinstance(info.value, ValueError)
    planner = eplb.Planner(2, 12, 16, 8)
    bad = np.array(WEIGHT, float)
    bad[1, 3] = -5
    with pytest.raises(eplb.InvalidArgumentError, match="-5"):
        planner.plan(bad)
    with pytest.raises(eplb.InvalidArgumentError, match="loads"):
        planner.plan(bad[:1])
    with pytest.raises(eplb.InvalidArgumentError, match="nope"):
        eplb.Planner(2, 12, 16, 8, algorithm="nope")
    placement = planner.plan(WEIGHT)
    with pytest.raises(eplb.BufferTooSmallError) as info:
        capi.eplb_placement_get_phy2log(placement._h, np.empty(3, np.int32))
    assert info.value.status == capi.EPLB_ERR_BUFFER_TOO_SMALL
    with pytest.raises(TypeError, match="int32|format"):
        capi.eplb_placement_get_phy2log(placement._h, np.empty(32, np.int64))


def test_file_errors(tmp_path):
    with pytest.raises(eplb.IOError, match="missing.eplb") as info:
        eplb.load_snapshot(tmp_path / "missing.eplb")
    assert info.value.status == capi.EPLB_ERR_IO and isinstance(info.value, OSError)
    with pytest.raises(eplb.CorruptError):
        eplb.Snapshot.from_bytes(b"EPLB" + b"\0" * 200)
    placement = eplb.Planner(2, 12, 16, 8).plan(WEIGHT)
    data = eplb.snapshot_bytes(placement)
    with pytest.raises(eplb.CorruptError):  # TruncatedError is a CorruptError
        eplb.Snapshot.from_bytes(data[: len(data) // 2])
    with pytest.raises(eplb.InvalidArgumentError, match="label"):
        placement.save(tmp_path / "x.eplb", label="x" * 300)


def test_outputs_are_written_in_place_without_copies():
    placement = eplb.Planner(2, 12, 16, 8, num_nodes=2, num_groups=4,
                             algorithm="deepseek").plan(np.array(WEIGHT, float))
    out = np.full(32, -7, dtype=np.int32)
    capi.eplb_placement_get_phy2log(placement._h, out)
    assert out.reshape(2, 16).tolist() == PHY2LOG
    view = out[::2]  # not contiguous: refused rather than silently copied
    with pytest.raises(TypeError, match="contiguous"):
        capi.eplb_placement_get_phy2log(placement._h, view)


def test_snapshot_round_trip(tmp_path):
    planner = eplb.Planner(2, 12, 16, 8, num_nodes=2, num_groups=4)
    placement = planner.plan(WEIGHT)
    path = tmp_path / "plan.eplb"
    placement.save(path, loads=WEIGHT, label="week 47")
    info = eplb.Snapshot.inspect(path)
    assert info["label"] == "week 47" and info["num_layers"] == 2 and info["has_loads"] == 1
    with eplb.load_snapshot(path) as snapshot:
        assert snapshot.info["algorithm"] == "balanced"
        np.testing.assert_array_equal(snapshot.loads(), np.array(WEIGHT, float))
        restored = snapshot.placement()
    np.testing.assert_array_equal(restored.phy2log, placement.phy2log)
    np.testing.assert_array_equal(restored.log2phy, placement.log2phy)
    again = eplb.Snapshot.from_bytes(eplb.snapshot_bytes(placement)).placement()
    np.testing.assert_array_equal(again.phy2log, placement.phy2log)
    assert again.metrics(WEIGHT).balancedness == pytest.approx(placement.metrics(WEIGHT).balancedness)


def test_metrics_leave_idle_layers_out():
    # A dense model's leading layers carry no load: the means are over the other layers.
    planner = eplb.Planner(3, 12, 16, 8, num_nodes=2, num_groups=4)
    loads = [[0] * 12] + WEIGHT
    placement = planner.plan(loads)
    metrics = placement.metrics(loads)
    assert (metrics.num_layers, metrics.loaded_layers) == (3, 2)
    gpu = np.asarray(placement.gpu_loads(loads)).reshape(3, 8)[1:]
    expected = np.mean(gpu.mean(axis=1) / gpu.max(axis=1))
    assert metrics.balancedness == pytest.approx(expected)


def test_sglang_json_round_trip():
    placement = eplb.Planner(2, 12, 16, 8).plan(WEIGHT)
    text = placement.to_sglang_json(num_dense_layers=1)
    back = eplb.Placement.from_sglang_json(text, num_nodes=1, num_gpus=8, num_dense_layers=1)
    np.testing.assert_array_equal(back.phy2log, placement.phy2log)
    loads = eplb.loads_from_sglang_json('{"logical_count": [[[1, 2], [3, 4]], [[1, 1], [1, 1]]]}')
    assert loads.tolist() == [[2.0, 3.0], [4.0, 5.0]]
    with pytest.raises(eplb.CorruptError, match="logical_count"):
        eplb.loads_from_sglang_json('{"logical_count": [[1, -2]]}')


def test_tracker_matches_brute_force():
    rng = np.random.default_rng(3)
    experts, top_k = 10, 3
    tracker = eplb.Tracker(num_layers=2, num_logical_experts=experts, top_k=top_k,
                           reservoir_capacity=1000)
    loads = np.zeros((2, experts))
    pairs = np.zeros((experts, experts))
    for _ in range(5):
        ids = rng.integers(-1, experts, size=(50, top_k)).astype(np.int32)
        tracker.record(0, ids)
        for row in ids:
            for e in row[row >= 0]:
                loads[0, e] += 1
            for a, b in itertools.combinations(sorted(set(row[row >= 0].tolist())), 2):
                pairs[a, b] += 1
    np.testing.assert_array_equal(tracker.loads(), loads)
    triangle = pairs[np.triu_indices(experts, 1)]
    np.testing.assert_array_equal(tracker.coactivation(0), triangle)
    assert tracker.samples(0).shape[1] == top_k and tracker.samples(1).shape == (0, top_k)
    with pytest.raises(eplb.InvalidArgumentError, match="layer 0, token 1, slot 2"):
        tracker.record(0, np.array([[0, 1, 2], [0, 1, experts]]))
    with pytest.raises(eplb.InvalidArgumentError, match="top_k"):
        tracker.record(0, np.zeros((4, 2), np.int32))
    np.testing.assert_array_equal(tracker.loads(), loads)  # a failed call changes nothing
    tracker.reset()
    assert tracker.loads().sum() == 0


def test_concurrent_planning_from_threads_matches_serial():
    rng = np.random.default_rng(11)
    loads = [rng.lognormal(size=(4, 64)) * 100 for _ in range(8)]
    planner = eplb.Planner(4, 64, 80, 16, num_nodes=2, num_groups=4)
    serial = [planner.plan(w).phy2log for w in loads]
    results = [None] * len(loads)
    shared = eplb.Planner(4, 64, 80, 16, num_nodes=2, num_groups=4)

    def work(i):
        own = eplb.Planner(4, 64, 80, 16, num_nodes=2, num_groups=4)
        results[i] = (own.plan(loads[i]).phy2log, shared.plan(loads[i]).phy2log)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(loads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for expected, (own, via_shared) in zip(serial, results):
        np.testing.assert_array_equal(own, expected)
        np.testing.assert_array_equal(via_shared, expected)


def test_version_and_closed_handles():
    assert eplb.HEADER_VERSION == capi.eplb_version_number()
    assert eplb.version() == capi.EPLB_VERSION_STRING
    assert set(eplb.algorithms()) >= {"deepseek", "balanced", "trivial"}
    planner = eplb.Planner(1, 4, 4, 2)
    planner.close()
    planner.close()
    with pytest.raises(ValueError, match="closed"):
        planner.plan([[1, 2, 3, 4]])


def test_closing_a_handle_while_another_thread_uses_it_is_safe():
    # Closing drops the handle's reference; a call already in C keeps the object alive until it
    # returns, and later calls raise ValueError instead of touching freed memory.
    ids = np.random.default_rng(3).integers(0, 64, size=(4096, 8), dtype=np.int32)
    loads = np.random.default_rng(4).lognormal(size=(4, 64))
    for _ in range(20):
        tracker = eplb.Tracker(1, 64, 8)
        placement = eplb.Planner(4, 64, 80, 16, num_nodes=2).plan(loads)
        outcomes = []

        def use(work):
            try:
                for _ in range(200):
                    work()
                outcomes.append("finished")
            except Exception as error:  # anything but "is closed" fails the test below
                outcomes.append(repr(error))

        threads = [threading.Thread(target=use, args=(lambda: tracker.record(0, ids),)),
                   threading.Thread(target=use, args=(lambda: placement.metrics(loads),)),
                   threading.Thread(target=use, args=(lambda: placement.log2phy,))]
        for thread in threads:
            thread.start()
        tracker.close()
        placement.close()
        for thread in threads:
            thread.join()
        assert len(outcomes) == 3, outcomes
        assert all(o == "finished" or o.startswith("ValueError") and "is closed" in o
                   for o in outcomes), outcomes


def test_arrays_of_the_wrong_shape_or_type_are_errors():
    planner = eplb.Planner(2, 12, 16, 8, num_nodes=2, num_groups=4)
    weight = np.array(WEIGHT, float)
    with pytest.raises(eplb.InvalidArgumentError, match=r"shape \(12, 2\), expected \(2, 12\)"):
        planner.plan(weight.T)  # the right size, but transposed: no longer read as nonsense
    with pytest.raises(eplb.InvalidArgumentError, match=r"expected \(any, 2, 12\)"):
        planner.plan_windows(weight)
    placement = planner.plan(weight)
    with pytest.raises(eplb.InvalidArgumentError, match="shape"):
        placement.metrics(weight.ravel())
    with pytest.raises(eplb.InvalidArgumentError, match="shape"):
        placement.gpu_loads(weight[:1])
    with pytest.raises(eplb.InvalidArgumentError, match="shape"):
        eplb.snapshot_bytes(placement, loads=weight.T)
    assert planner.plan_windows([weight, weight]).num_layers == 2

    tracker = eplb.Tracker(1, 8, 2)
    with pytest.raises(eplb.InvalidArgumentError, match="integers, got dtype float64"):
        tracker.record(0, [[0.9, 3.7], [1.2, 2.99]])  # was truncated to experts 0, 3, 1, 2
    with pytest.raises(eplb.InvalidArgumentError, match="4294967297, outside int32"):
        tracker.record(0, np.array([[2**32 + 1, 3]], np.int64))  # was wrapped to expert 1
    tracker.record(0, np.array([[1, 3], [-1, 2]], np.int64))  # int64 ids in range are fine
    assert tracker.loads().tolist() == [[0, 1, 1, 1, 0, 0, 0, 0]]
    with pytest.raises(eplb.InvalidArgumentError, match="'slidng' is unknown"):
        eplb.Tracker(1, 8, 2, window="slidng")


def test_merge_locks_both_trackers():
    ids = np.random.default_rng(5).integers(0, 16, size=(256, 4), dtype=np.int32)
    total, source = eplb.Tracker(1, 16, 4), eplb.Tracker(1, 16, 4)
    recorded = threading.Event()

    def record():
        for _ in range(100):
            source.record(0, ids)
        recorded.set()

    thread = threading.Thread(target=record)
    thread.start()
    while not recorded.is_set():
        scratch = eplb.Tracker(1, 16, 4)
        scratch.merge(source)  # reads `source` while it records: must see whole batches
        assert scratch.loads().sum() % ids.size == 0
    thread.join()
    total.merge(source)
    total.merge(total)
    assert total.loads().sum() == 2 * 100 * ids.size


def test_planner_default_is_the_librarys():
    placement = eplb.Planner(2, 12, 16, 8).plan(WEIGHT)
    assert placement.algorithm == capi.eplb_algorithm_name(capi.eplb_algorithm_default())


def test_statistics_snapshots_and_affinity_planning(tmp_path):
    # A tracker saved with its whole state, loaded back, continues exactly as the original; a
    # placement snapshot can carry the same statistics; affinity plans come from a tracker.
    rng = np.random.default_rng(8)
    batches = [rng.integers(0, 16, size=(64, 4), dtype=np.int32) for _ in range(6)]
    tracker = eplb.Tracker(2, 16, 4, window="sliding", window_batches=3, reservoir_capacity=32,
                           seed=5)
    for ids in batches[:3]:
        tracker.record(0, ids)
        tracker.record(1, ids[::-1])
    assert tracker.layer_counts(0) == (3, 192)
    assert tracker.options()["window"] == "sliding" and tracker.options()["window_batches"] == 3
    tracker.save(tmp_path / "stats.eplb", label="warm-up")
    with eplb.load_snapshot(tmp_path / "stats.eplb") as snapshot:
        assert snapshot.info["has_coactivation"] == 1 and snapshot.info["label"] == "warm-up"
        restored = snapshot.tracker()
    assert eplb.Snapshot.from_bytes(eplb.statistics_bytes(tracker)).tracker().options() == \
        tracker.options()
    for ids in batches[3:]:
        for t in (tracker, restored):
            t.record(0, ids)
            t.record(1, ids[::-1])
    np.testing.assert_array_equal(restored.loads(), tracker.loads())
    np.testing.assert_array_equal(restored.coactivation(1), tracker.coactivation(1))
    np.testing.assert_array_equal(restored.samples(0), tracker.samples(0))

    planner = eplb.Planner(2, 16, 20, 4, num_nodes=2)
    balance_only = planner.plan_tracked(tracker)
    np.testing.assert_array_equal(balance_only.phy2log, planner.plan(tracker.loads()).phy2log)
    affinity = eplb.Planner(2, 16, 20, 4, num_nodes=2, affinity=True, affinity_min_balance=0.9)
    placed = affinity.plan_tracked(tracker)
    assert placed.metrics(tracker.loads()).balancedness >= \
        0.9 * balance_only.metrics(tracker.loads()).balancedness - 1e-12
    with pytest.raises(eplb.InvalidArgumentError, match="affinity"):
        affinity.plan(tracker.loads())  # affinity needs the tracker's statistics

    placed.save(tmp_path / "plan.eplb", loads=tracker.loads(), tracker=tracker)
    with eplb.load_snapshot(tmp_path / "plan.eplb") as snapshot:
        np.testing.assert_array_equal(snapshot.tracker().loads(), tracker.loads())
        np.testing.assert_array_equal(snapshot.placement().phy2log, placed.phy2log)
    assert eplb.Snapshot.from_bytes(eplb.snapshot_bytes(placed)).tracker() is None


def test_raw_capi_outputs_and_structs():
    # Output scalars come back as return values, and every struct with struct_size is sized.
    placement = eplb.Planner(2, 12, 16, 8, num_nodes=2, num_groups=4).plan(WEIGHT)
    loads = np.array(WEIGHT, float)
    bound = capi.eplb_metrics_relaxed_bound(placement._h, loads[0], 2)
    assert isinstance(bound, float) and bound > 0
    for struct in (capi.eplb_migration_summary(), capi.eplb_migration_options(),
                   capi.eplb_workload_options(), capi.eplb_device_tables_info(),
                   capi.eplb_token_exchange_options()):
        assert struct.struct_size > 0


def _splits(count, parts):
    """Every way to split `count` tokens over `parts` replicas."""
    if parts == 1:
        yield (count,)
        return
    for first in range(count + 1):
        for rest in _splits(count - first, parts - 1):
            yield (first,) + rest


def test_split_solver_matches_a_brute_force():
    rng = np.random.default_rng(12)
    solver = eplb.SplitSolver()
    for trial in range(40):
        gpus = 2 + trial % 2
        placement = eplb.Planner(1, 4, 3 * gpus, gpus).plan(rng.integers(1, 9, size=(1, 4)))
        phy2log = placement.phy2log[0]
        counts = rng.integers(0, 6, size=4).astype(np.int32)
        weights = rng.uniform(0.5, 2.0, size=gpus) if trial % 3 == 0 else None
        quotas, max_load = solver.solve(placement, 0, counts, gpu_weights=weights)
        w = np.ones(gpus) if weights is None else weights
        gpu_of = np.arange(len(phy2log)) // 3

        def busiest(q):
            return max(w[g] * q[gpu_of == g].sum() for g in range(gpus))

        for e in range(4):
            assert quotas[phy2log == e].sum() == counts[e]
        assert (quotas >= 0).all() and busiest(quotas) == pytest.approx(max_load)
        slots = [np.flatnonzero(phy2log == e) for e in range(4)]
        best = np.inf
        for choice in itertools.product(*(_splits(int(counts[e]), len(slots[e]))
                                          for e in range(4))):
            q = np.zeros(len(phy2log))
            for e, split in enumerate(choice):
                q[slots[e]] = split
            best = min(best, busiest(q))
        assert max_load == pytest.approx(best), (trial, phy2log, counts)
    with pytest.raises(eplb.InvalidArgumentError, match=r"gpu_weights has shape \(1,\)"):
        solver.solve(placement, 0, counts, gpu_weights=[1.0])
    with pytest.raises(eplb.InvalidArgumentError, match="count"):
        solver.solve(placement, 0, [-1, 0, 0, 0])
    # The raw module: per-GPU arrays of different lengths are refused, not cut to the shorter.
    with pytest.raises(eplb.InvalidArgumentError, match="gpu_len"):
        capi.eplb_split_solve(None, placement._h, 0, counts, np.ones(gpus + 1), np.zeros(gpus),
                              np.empty(placement.num_physical_experts, np.int32))


def test_split_by_node_and_rank_quotas_keep_every_count():
    placement = eplb.Planner(1, 8, 16, 4, num_nodes=2).plan([[9, 1, 4, 4, 2, 7, 3, 1]])
    counts_by_node = np.array([[5, 4], [1, 0], [2, 2], [0, 4], [1, 1], [3, 4], [2, 1], [0, 1]])
    solver = eplb.SplitSolver()
    quotas, max_load, cross = solver.solve_by_node(placement, 0, counts_by_node)
    phy2log = placement.phy2log[0]
    for e in range(8):
        np.testing.assert_array_equal(quotas[phy2log == e].sum(axis=0), counts_by_node[e])
    assert max_load == pytest.approx(solver.solve(placement, 0, counts_by_node.sum(axis=1))[1])
    # Each rank's share of a batch-wide split: the shares add up to the split.
    total, _ = solver.solve(placement, 0, counts_by_node.sum(axis=1))
    rank_counts = np.array([counts_by_node[:, 0], counts_by_node[:, 1]])
    shares = [eplb.split_rank_quotas(placement, 0, total, rank_counts, r) for r in range(2)]
    np.testing.assert_array_equal(shares[0] + shares[1], total)
    for r in range(2):
        for e in range(8):
            assert shares[r][phy2log == e].sum() == rank_counts[r][e]
