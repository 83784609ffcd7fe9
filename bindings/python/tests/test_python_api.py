"""The pythonic layer's own contract: read-only shapes, argument checking that names the argument
(numpy integers accepted, wrong types and values refused with eplb errors), exact copies and
pickling, equality, reprs and the vLLM-Ascend format. Oracles: DeepSeek's published README
example, the C info structs read through the raw module, json and numpy recounts."""

import contextlib
import copy
import gc
import json
import os
import pickle
import sys

import numpy as np
import pytest

import eplb
from eplb import capi

# deepseek-ai/EPLB README example and the reference's output (as in test_eplb.py).
WEIGHT = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
          [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]
PHY2LOG = [[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
           [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]]


def deepseek_plan():
    return eplb.Planner(2, 12, 16, 8, num_nodes=2, num_groups=4, algorithm="deepseek").plan(WEIGHT)


@contextlib.contextmanager
def refused(error, *parts):
    """Expects `error`, an eplb.Error whose message names every one of `parts`."""
    with pytest.raises(error) as info:
        yield info
    assert isinstance(info.value, eplb.Error), repr(info.value)
    for part in parts:
        assert part in str(info.value), (part, str(info.value))


def counts(batches, layers, experts):
    """Brute-force tracker loads: each valid id counts once."""
    loads = np.zeros((layers, experts))
    for layer, ids in batches:
        np.add.at(loads[layer], ids[ids >= 0], 1)
    return loads


# ---- 1: shapes are read-only and come from the C object -----------------------------------------

def test_shape_attributes_are_read_only_and_match_the_c_info():
    placement = deepseek_plan()
    info = capi.eplb_placement_info()
    capi.eplb_placement_get_info(placement._h, info)
    for name in ("num_layers", "num_logical_experts", "num_physical_experts", "num_nodes",
                 "num_gpus", "num_groups", "slots_per_gpu", "log2phy_width", "plan_seconds"):
        assert getattr(placement, name) == getattr(info, name), name
        with pytest.raises(AttributeError, match=name):
            setattr(placement, name, 48)
    assert placement.algorithm == "deepseek" and placement.hierarchical is True
    assert placement.phy2log.tolist() == PHY2LOG  # nothing changed by the attempts

    tracker = eplb.Tracker(2, 16, 4)
    for name, value in (("num_layers", 2), ("num_logical_experts", 16), ("top_k", 4)):
        assert getattr(tracker, name) == value == tracker.options()[name]
        with pytest.raises(AttributeError, match=name):
            setattr(tracker, name, 99)
    migration = eplb.plan_migration(placement, placement)
    for name in ("num_layers", "num_gpus", "slots_per_gpu", "num_steps"):
        with pytest.raises(AttributeError, match=name):
            setattr(migration, name, 3)
    assert (migration.num_gpus, migration.slots_per_gpu, migration.num_steps) == (8, 2, 0)
    workload = eplb.Workload(num_layers=2, num_experts=16, top_k=4)
    with pytest.raises(AttributeError, match="num_layers"):
        workload.num_layers = 3
    assert workload.next_batch(5).shape == (2, 5, 4)


def test_planner_exposes_its_options():
    planner = eplb.Planner(np.int64(2), 12, 16, 8, num_nodes=2, num_groups=4,
                           algorithm="balanced-relaxed", cross_node_budget=3, affinity=True,
                           affinity_min_balance=0.95)
    assert (planner.num_layers, planner.num_logical_experts, planner.num_physical_experts,
            planner.num_gpus, planner.num_nodes, planner.num_groups) == (2, 12, 16, 8, 2, 4)
    assert (planner.cross_node_budget, planner.num_threads, planner.affinity,
            planner.affinity_min_balance) == (3, 1, True, 0.95)
    assert planner.algorithm == "balanced-relaxed"
    default = eplb.Planner(2, 12, 16, 8)
    assert default.algorithm == capi.eplb_algorithm_name(capi.eplb_algorithm_default())
    with pytest.raises(AttributeError, match="num_gpus"):
        planner.num_gpus = 4


# ---- 2: IOError -----------------------------------------------------------------------------

def test_star_import_does_not_shadow_the_builtin_ioerror(tmp_path):
    namespace = {}
    exec("from eplb import *", namespace)
    assert "IOError" not in namespace and "IOError" not in eplb.__all__
    assert set(eplb.__all__) <= set(namespace)
    assert issubclass(eplb.IOError, OSError) and issubclass(eplb.IOError, eplb.Error)
    with pytest.raises(eplb.IOError, match="missing.eplb") as info:
        eplb.load_snapshot(tmp_path / "missing.eplb")
    assert isinstance(info.value, OSError) and info.value.status == capi.EPLB_ERR_IO
    assert "IOError" in (eplb.IOError.__doc__ or "")  # the class documents the choice


# ---- 3: options a window would ignore ----------------------------------------------------------

@pytest.mark.parametrize("window, option, value", [
    ("cumulative", "window_batches", 10), ("decay", "window_batches", 10),
    ("sliding", "decay", 0.5), ("cumulative", "decay", 0.5)])
def test_tracker_options_the_window_ignores_are_refused(window, option, value):
    with refused(eplb.InvalidArgumentError, option, repr(window)):
        eplb.Tracker(2, 16, 4, window=window, **{option: value})


def test_tracker_options_the_window_uses_are_kept():
    assert eplb.Tracker(2, 16, 4, window="sliding", window_batches=10).options()[
        "window_batches"] == 10
    assert eplb.Tracker(2, 16, 4, window="decay", decay=0.5).options()["decay"] == 0.5
    with refused(eplb.InvalidArgumentError, "window_batches", "'cumulative'"):
        eplb.Tracker(2, 16, 4, window=capi.EPLB_WINDOW_CUMULATIVE, window_batches=3)


def test_planner_affinity_min_balance_without_affinity_is_refused():
    # The library ignores it without affinity; it was accepted and reported by the attribute.
    with refused(eplb.InvalidArgumentError, "affinity_min_balance (0.5)", "affinity=True"):
        eplb.Planner(2, 12, 16, 8, affinity_min_balance=0.5)
    for planner in (eplb.Planner(2, 12, 16, 8),
                    eplb.Planner(2, 12, 16, 8, affinity=True, affinity_min_balance=0.9)):
        twin = pickle.loads(pickle.dumps(planner))  # the copy passes the option only with affinity
        assert repr(twin) == repr(planner)
        assert twin.affinity_min_balance == planner.affinity_min_balance


# ---- 4: labels ---------------------------------------------------------------------------------

def test_labels_are_refused_rather_than_cut_or_misread(tmp_path):
    placement = deepseek_plan()
    tracker = eplb.Tracker(2, 12, 4)
    for save in (lambda **kw: eplb.snapshot_bytes(placement, **kw),
                 lambda **kw: placement.save(tmp_path / "p.eplb", **kw),
                 lambda **kw: eplb.statistics_bytes(tracker, **kw)):
        with refused(eplb.InvalidArgumentError, "label", "NUL"):
            save(label="a\x00b")
        with refused(TypeError, "label", "bytes"):
            save(label=b"ab")
    text = "r\u00e9sum\u00e9 \u2713"  # non-ASCII round-trips as UTF-8
    info = eplb.Snapshot.from_bytes(eplb.snapshot_bytes(placement, label=text)).info
    assert info["label"] == text
    assert not (tmp_path / "p.eplb").exists()  # nothing was written by the refusals


# ---- 5: loads must be real numbers ------------------------------------------------------------

@pytest.mark.parametrize("loads, dtype", [
    (np.array(WEIGHT) + 1j, "complex128"), (np.ones((2, 12), bool), "bool"),
    (np.full((2, 12), None), "object"), (np.full((2, 12), "1"), "<U1"),
    ([[1.0] * 12, [None] * 12], "object")])
def test_loads_of_the_wrong_dtype_are_type_errors(loads, dtype):
    placement = deepseek_plan()
    planner = eplb.Planner(2, 12, 16, 8)
    with refused(TypeError, "loads", dtype):
        planner.plan(loads)
    with refused(TypeError, "loads", dtype):
        placement.metrics(loads)
    with refused(TypeError, "weight", dtype):
        eplb.rebalance_experts(loads, 16, 4, 2, 8)
    with refused(TypeError, "gpu_weights", "complex"):
        eplb.SplitSolver().solve(placement, 0, np.ones(12, np.int32), gpu_weights=np.ones(8) + 0j)
    with refused(TypeError, "topk_ids", "bool"):
        eplb.Tracker(1, 12, 2).record(0, np.ones((3, 2), bool))
    # Integer and real dtypes still convert.
    assert planner.plan(np.array(WEIGHT, np.int64)) == planner.plan(np.array(WEIGHT, np.float32))


# ---- 6: copies, pickling, equality -------------------------------------------------------------

@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy,
                                       lambda x: pickle.loads(pickle.dumps(x))])
def test_placement_copies_are_exact_and_independent(duplicate):
    placement = deepseek_plan()
    twin = duplicate(placement)
    assert twin == placement and twin is not placement and twin._handle is not placement._handle
    assert twin.phy2log.tolist() == PHY2LOG
    assert (twin.algorithm, twin.num_groups, twin.hierarchical, twin.plan_seconds) == (
        placement.algorithm, placement.num_groups, placement.hierarchical, placement.plan_seconds)
    placement.close()  # the copy owns its own native object
    assert twin.phy2log.tolist() == PHY2LOG
    with pytest.raises(ValueError, match="closed"):
        duplicate(placement)


def test_placement_equality_is_shape_and_phy2log():
    placement = deepseek_plan()
    imported = eplb.Placement.from_phy2log(PHY2LOG, 12, 2, 8)  # no algorithm, 1 group
    assert imported == placement and not imported != placement
    swapped = np.array(PHY2LOG)
    swapped[0, [0, 2]] = swapped[0, [2, 0]]  # same experts, different slots: a different plan
    swapped[0, [1, 0]] = swapped[0, [0, 1]]
    assert eplb.Placement.from_phy2log(swapped, 12, 2, 8) != placement
    assert eplb.Placement.from_phy2log(PHY2LOG, 12, 1, 8) != placement  # another topology
    assert placement != PHY2LOG and placement != None  # noqa: E711
    # Hashable consistently with ==: equal placements are one dict key and one set member.
    assert hash(imported) == hash(placement)
    assert len({placement, imported, eplb.Placement.from_phy2log(swapped, 12, 2, 8)}) == 2
    assert {placement: "plan"}[imported] == "plan"
    # A closed placement equals only itself, and membership tests do not raise.
    closed = eplb.Placement.from_phy2log(PHY2LOG, 12, 2, 8)
    closed.close()
    assert closed == closed and closed != placement and placement != closed
    assert closed not in [placement] and placement in [closed, placement]


@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy,
                                       lambda x: pickle.loads(pickle.dumps(x))])
def test_tracker_copies_are_exact_and_independent(duplicate):
    rng = np.random.default_rng(4)
    batches = [(i % 2, rng.integers(-1, 16, size=(32, 4)).astype(np.int32)) for i in range(8)]
    tracker = eplb.Tracker(2, 16, 4, window="sliding", window_batches=3, reservoir_capacity=16,
                           seed=9)
    for layer, ids in batches[:4]:
        tracker.record(layer, ids)
    twin = duplicate(tracker)
    assert twin.options() == tracker.options() and twin._handle is not tracker._handle
    for layer, ids in batches[4:]:
        twin.record(layer, ids)
    # The original is untouched (its loads are the brute-force count of what it recorded) ...
    np.testing.assert_array_equal(tracker.loads(), counts(batches[:4], 2, 16))
    # ... and the copy continues exactly as the original would have.
    for layer, ids in batches[4:]:
        tracker.record(layer, ids)
    np.testing.assert_array_equal(twin.loads(), tracker.loads())
    np.testing.assert_array_equal(twin.loads(), counts(batches[2:], 2, 16))  # the last 3 per layer
    np.testing.assert_array_equal(twin.samples(1), tracker.samples(1))
    np.testing.assert_array_equal(twin.coactivation(0), tracker.coactivation(0))


@pytest.mark.parametrize("window", [{"window": "cumulative"},
                                    {"window": "sliding", "window_batches": 3},
                                    {"window": "decay", "decay": 0.5}])
def test_tracker_clone_has_the_whole_state_and_is_independent(window, monkeypatch):
    rng = np.random.default_rng(7)
    batches = [(i % 2, rng.integers(-1, 16, size=(48, 4)).astype(np.int32)) for i in range(12)]
    options = dict(window, reservoir_capacity=8, seed=5)  # a small reservoir: the RNG decides
    tracker, twin = eplb.Tracker(2, 16, 4, **options), eplb.Tracker(2, 16, 4, **options)
    for layer, ids in batches[:6]:
        tracker.record(layer, ids)
        twin.record(layer, ids)
    clone = tracker.clone()
    assert type(clone) is eplb.Tracker and clone._handle is not tracker._handle
    assert clone.options() == tracker.options() and repr(clone) == repr(tracker)
    for layer in (0, 1):
        assert clone.layer_counts(layer) == tracker.layer_counts(layer)
        np.testing.assert_array_equal(clone.coactivation(layer), tracker.coactivation(layer))
        np.testing.assert_array_equal(clone.samples(layer), tracker.samples(layer))
    np.testing.assert_array_equal(clone.loads(), tracker.loads())
    assert clone.samples(1).shape == (8, 4)  # a full reservoir
    before = (tracker.layer_counts(1), tracker.loads(), tracker.coactivation(1),
              tracker.samples(1))
    # The same further batches into the clone and into a tracker that recorded all the original
    # did give the same statistics: the window and the sampler's RNG state were copied.
    for layer, ids in batches[6:]:
        clone.record(layer, ids)
        twin.record(layer, ids)
    for layer in (0, 1):
        assert clone.layer_counts(layer) == twin.layer_counts(layer)
        np.testing.assert_array_equal(clone.coactivation(layer), twin.coactivation(layer))
        np.testing.assert_array_equal(clone.samples(layer), twin.samples(layer))
    np.testing.assert_array_equal(clone.loads(), twin.loads())
    # Recording into the clone left the original as it was.
    assert tracker.layer_counts(1)[0] == 3 and tracker.layer_counts(1) == before[0]
    for old, now in zip(before[1:], (tracker.loads(), tracker.coactivation(1),
                                     tracker.samples(1))):
        np.testing.assert_array_equal(now, old)
    # copy.copy and copy.deepcopy clone (no statistics snapshot); pickle still goes through one.
    monkeypatch.setattr(eplb, "statistics_bytes", None)
    for duplicate in (copy.copy, copy.deepcopy):
        copied = duplicate(clone)
        assert copied._handle is not clone._handle
        np.testing.assert_array_equal(copied.samples(0), clone.samples(0))
    with pytest.raises(TypeError):
        pickle.dumps(clone)
    monkeypatch.undo()
    # The clone owns its native object: closing the original leaves it usable.
    tracker.close()
    clone.record(0, batches[0][1])
    twin.record(0, batches[0][1])
    np.testing.assert_array_equal(clone.loads(), twin.loads())
    np.testing.assert_array_equal(clone.samples(0), twin.samples(0))
    with pytest.raises(ValueError, match="closed"):
        tracker.clone()


def test_planner_and_solver_copies_plan_the_same():
    planner = eplb.Planner(2, 12, 16, 8, num_nodes=2, num_groups=4, algorithm="deepseek")
    for twin in (copy.copy(planner), copy.deepcopy(planner), pickle.loads(pickle.dumps(planner))):
        assert twin._handle is not planner._handle and repr(twin) == repr(planner)
        assert twin.plan(WEIGHT).phy2log.tolist() == PHY2LOG
    solver = eplb.SplitSolver()
    twin = copy.deepcopy(solver)
    assert twin._handle is not solver._handle
    placement = deepseek_plan()
    ids = np.arange(12, dtype=np.int32)
    np.testing.assert_array_equal(twin.solve(placement, 0, ids)[0],
                                  solver.solve(placement, 0, ids)[0])


def test_handles_that_cannot_be_copied_say_so_without_noise(monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    placement = deepseek_plan()
    snapshot = eplb.Snapshot.from_bytes(eplb.snapshot_bytes(placement))
    for handle in (eplb.plan_migration(placement, placement), eplb.Workload(), snapshot,
                   eplb.PlanControl(), placement._h):
        for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
            with pytest.raises(TypeError, match="copy or pickle"):
                duplicate(handle)
    half_made = eplb._Native.__new__(eplb._Native)  # __init__ never ran
    del half_made
    gc.collect()
    assert unraisable == []


# ---- 7: integer arguments ------------------------------------------------------------------------

def integer_calls():
    """(argument name, call taking the value) for every integer argument the package forwards."""
    placement = deepseek_plan()
    tracker = eplb.Tracker(2, 12, 4, reservoir_capacity=8)
    tracker.record(0, np.arange(12, dtype=np.int32).reshape(3, 4))
    solver = eplb.SplitSolver()
    ids = np.ones(12, np.int32)
    quotas = [solver.solve(placement, layer, ids)[0] for layer in (0, 1)]
    sglang = placement.to_sglang_json()
    return [
        ("layer", lambda v: tracker.record(v, np.zeros((2, 4), np.int32))),
        ("layer", lambda v: tracker.coactivation(v)),
        ("layer", lambda v: tracker.samples(v)),
        ("layer", lambda v: tracker.layer_counts(v)),
        ("layer", lambda v: tracker.record_physical(placement, v, np.zeros((2, 4), np.int32))),
        ("layer", lambda v: solver.solve(placement, v, ids)),
        ("layer", lambda v: solver.solve_by_node(placement, v, np.ones((12, 2), np.int32))),
        ("layer", lambda v: eplb.split_rank_quotas(placement, v, quotas[1], ids[None], 0)),
        ("rank", lambda v: eplb.split_rank_quotas(placement, 0, quotas[0], ids[None], v)),
        ("num_dense_layers", lambda v: placement.to_sglang_json(v)),
        ("num_logical_experts", lambda v: eplb.Placement.from_phy2log(PHY2LOG, v, 2, 8)),
        ("num_nodes", lambda v: eplb.Placement.from_phy2log(PHY2LOG, 12, v, 8)),
        ("num_gpus", lambda v: eplb.Placement.from_sglang_json(sglang, 2, v)),
        ("num_dense_layers", lambda v: eplb.Placement.from_sglang_json(sglang, 2, 8, 12, v)),
        ("num_nodes", lambda v: eplb.Placement.from_vllm_ascend_json(
            placement.to_vllm_ascend_json(), v)),
        ("num_layers", lambda v: eplb.Planner(v, 12, 16, 8)),
        ("num_physical_experts", lambda v: eplb.Planner(2, 12, v, 8)),
        ("num_groups", lambda v: eplb.Planner(2, 12, 16, 8, num_groups=v)),
        ("cross_node_budget", lambda v: eplb.Planner(2, 12, 16, 8, algorithm="balanced-relaxed",
                                                     cross_node_budget=v)),
        ("num_threads", lambda v: eplb.Planner(2, 12, 16, 8, num_threads=v)),
        ("algorithm", lambda v: eplb.Planner(2, 12, 16, 8, algorithm=v)),
        ("num_layers", lambda v: eplb.Tracker(v, 12, 4)),
        ("top_k", lambda v: eplb.Tracker(2, 12, v)),
        ("window", lambda v: eplb.Tracker(2, 12, 4, window=v)),
        ("window_batches", lambda v: eplb.Tracker(2, 12, 4, window="sliding", window_batches=v)),
        ("reservoir_capacity", lambda v: eplb.Tracker(2, 12, 4, reservoir_capacity=v)),
        ("seed", lambda v: eplb.Tracker(2, 12, 4, seed=v)),
        ("compression_level", lambda v: eplb.snapshot_bytes(placement, compression_level=v)),
        ("compression_level", lambda v: eplb.statistics_bytes(tracker, compression_level=v)),
        ("num_replicas", lambda v: eplb.rebalance_experts(WEIGHT, v, 4, 2, 8)),
        ("num_groups", lambda v: eplb.rebalance_experts(WEIGHT, 16, v, 2, 8)),
        ("num_nodes", lambda v: eplb.rebalance_experts(WEIGHT, 16, 4, v, 8)),
        ("num_gpus", lambda v: eplb.rebalance_experts(WEIGHT, 16, 4, 2, v)),
    ]


# A value each call accepts (as a Python int and as numpy integers alike). None means the
# default for some arguments, and a str names an algorithm or a window.
NONE_IS_DEFAULT = {"algorithm", "window_batches", "reservoir_capacity", "compression_level"}
STR_IS_NAME = {"algorithm", "window"}
GOOD = {"layer": 1, "rank": 0, "num_dense_layers": 1, "num_logical_experts": 12, "num_nodes": 2,
        "num_gpus": 8, "num_layers": 2, "num_physical_experts": 16, "num_groups": 4,
        "cross_node_budget": 2, "num_threads": 2, "algorithm": 1, "top_k": 4, "window": 1,
        "window_batches": 5, "reservoir_capacity": 7, "seed": 7, "compression_level": 5,
        "num_replicas": 16}


def outcome(result):
    """A comparable summary of a call's result."""
    if isinstance(result, tuple):
        return tuple(outcome(r) for r in result)
    if isinstance(result, np.ndarray):
        return result.tolist()
    if isinstance(result, eplb.Placement):
        return result.phy2log.tolist()
    if isinstance(result, (eplb.Planner, eplb.Tracker)):
        return repr(result)
    return result


@pytest.mark.parametrize("index", range(len(integer_calls())))
def test_integer_arguments_accept_numpy_and_name_bad_values(index):
    name, call = integer_calls()[index]
    good = GOOD[name]
    expected = outcome(call(good))
    for kind in (np.int64, np.uint32, np.int32):
        assert outcome(call(kind(good))) == expected, kind
    with refused(eplb.InvalidArgumentError, name, "(-1)"):
        call(-1)
    with refused(eplb.InvalidArgumentError, name, str(2**64)):
        call(2**64)
    for bad in (1.5, "1", None, True, np.float64(2.0)):
        if (bad is None and name in NONE_IS_DEFAULT) or (bad == "1" and name in STR_IS_NAME):
            continue
        with refused(TypeError, name, repr(bad)):
            call(bad)


# ---- 8: dimensions and handle arguments ------------------------------------------------------

def test_ids_of_the_wrong_dimensionality_are_invalid_arguments():
    placement = deepseek_plan()
    tracker = eplb.Tracker(2, 12, 4)
    ids = np.zeros((3, 4), np.int32)
    for bad in (ids.ravel(), ids[None]):
        with refused(eplb.InvalidArgumentError, "topk_ids", str(bad.shape)):
            tracker.record(0, bad)
        with refused(eplb.InvalidArgumentError, "topk_ids", str(bad.shape)):
            tracker.record_physical(placement, 0, bad)
    with refused(eplb.InvalidArgumentError, "loads", "(2, 12)"):
        eplb.Planner(2, 12, 16, 8).plan_windows(np.array(WEIGHT, float))
    tracker.record(0, [])  # an empty batch is still fine
    assert tracker.layer_counts(0) == (1, 0)


def test_metrics_compare_field_by_field():
    placement = deepseek_plan()
    a, b = placement.metrics(WEIGHT), placement.metrics(np.array(WEIGHT, float))
    assert a == b and not a != b
    other = placement.metrics(np.array(WEIGHT, float)[::-1].copy())
    assert a != other
    assert placement.layer_metrics(0, WEIGHT[0]) == placement.layer_metrics(0, WEIGHT[0])
    assert a != placement.layer_metrics(0, WEIGHT[0])  # another kind of metrics
    b.balancedness = 0.5
    assert a != b


def test_masked_ids_are_masked_slots_and_masked_loads_are_refused():
    """np.asarray drops a mask: the hidden values would be recorded or planned silently."""
    hidden = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], np.int32)
    mask = np.array([[False, True, False, False], [False, False, False, True]])
    masked = eplb.Tracker(2, 12, 4)
    masked.record(0, np.ma.masked_array(hidden, mask))
    filled = eplb.Tracker(2, 12, 4)
    filled.record(0, np.where(mask, -1, hidden))
    assert np.array_equal(masked.loads(), filled.loads())
    assert masked.loads()[0, 1] == 0 and masked.loads()[0, 0] == 1
    loads = np.ma.masked_array(np.array(WEIGHT, float), np.zeros((2, 12), bool))
    loads[1, 3] = np.ma.masked
    with refused(eplb.InvalidArgumentError, "loads", "masked"):
        eplb.Planner(2, 12, 16, 8).plan(loads)
    # Ids that are not top-k slots (phy2log) have no masked value to stand for.
    phy2log = np.ma.masked_array(np.array(PHY2LOG, np.int32), np.zeros_like(PHY2LOG, bool))
    phy2log[0, 0] = np.ma.masked
    with refused(eplb.InvalidArgumentError, "phy2log", "masked"):
        eplb.Placement.from_phy2log(phy2log, 12, 2, 8)
    # A masked array without masked values is its data.
    plain = np.ma.masked_array(np.array(WEIGHT, float))
    assert eplb.Planner(2, 12, 16, 8).plan(plain) == eplb.Planner(2, 12, 16, 8).plan(WEIGHT)


def test_wrong_objects_for_handles_are_type_errors_naming_the_argument(tmp_path):
    placement = deepseek_plan()
    planner = eplb.Planner(2, 12, 16, 8)
    tracker = eplb.Tracker(2, 12, 4)
    solver = eplb.SplitSolver()
    cases = [
        ("other", "Tracker", lambda v: tracker.merge(v)),
        ("tracker", "Tracker", lambda v: planner.plan_tracked(v)),
        ("placement", "Placement", lambda v: solver.solve(v, 0, np.ones(12, np.int32))),
        ("placement", "Placement", lambda v: solver.solve_by_node(v, 0, np.ones((12, 2)))),
        ("placement", "Placement", lambda v: eplb.split_rank_quotas(v, 0, [], [[]], 0)),
        ("placement", "Placement", lambda v: eplb.shared_expert_waterfill(v, [[0]])),
        ("placement", "Placement", lambda v: tracker.record_physical(v, 0, [[0, 1, 2, 3]])),
        ("old", "Placement", lambda v: eplb.plan_migration(v, placement)),
        ("new", "Placement", lambda v: eplb.plan_migration(placement, v)),
        ("placement", "Placement", lambda v: eplb.snapshot_bytes(v)),
        ("placement", "Placement", lambda v: eplb.save_snapshot(tmp_path / "x.eplb", v)),
        ("tracker", "Tracker", lambda v: eplb.statistics_bytes(v)),
        ("tracker", "Tracker", lambda v: eplb.save_statistics(tmp_path / "x.eplb", v)),
    ]
    for name, expected, call in cases:
        for wrong in (None, planner):
            with refused(TypeError, name, f"eplb.{expected}", type(wrong).__name__):
                call(wrong)
    for call in (lambda v: placement.save(tmp_path / "x.eplb", tracker=v),  # None: no statistics
                 lambda v: eplb.snapshot_bytes(placement, tracker=v)):
        with refused(TypeError, "tracker", "eplb.Tracker", "Planner"):
            call(planner)
    assert not (tmp_path / "x.eplb").exists()
    with refused(TypeError, "text", "int"):
        eplb.Placement.from_sglang_json(5, 1, 8)  # was read as five NUL bytes


# ---- 9: conveniences ---------------------------------------------------------------------------

def test_reprs_name_the_shape_and_say_closed():
    placement = deepseek_plan()
    planner = eplb.Planner(2, 12, 16, 8, num_nodes=2, num_groups=4, algorithm="deepseek")
    tracker = eplb.Tracker(2, 12, 4, window="sliding", window_batches=5)
    snapshot = eplb.Snapshot.from_bytes(eplb.snapshot_bytes(placement, loads=WEIGHT, label="w"))
    solver = eplb.SplitSolver()
    workload = eplb.Workload(num_layers=2, num_experts=12, top_k=4)
    migration = eplb.plan_migration(placement, placement)
    control = eplb.PlanControl()
    assert repr(workload) == "Workload(layers=2, experts=12, top_k=4)"
    assert repr(planner) == ("Planner(layers=2, logical=12, physical=16, gpus=8, nodes=2, "
                             "groups=4, algorithm='deepseek')")
    assert repr(tracker) == ("Tracker(layers=2, logical=12, top_k=4, window='sliding', "
                             "window_batches=5)")
    assert repr(snapshot) == ("Snapshot(layers=2, logical=12, physical=16, algorithm='deepseek', "
                              "has_loads=True, has_coactivation=False, label='w')")
    assert repr(solver) == "SplitSolver()"
    for handle in (placement, planner, tracker, snapshot, solver, workload, migration, control):
        handle.close()
        assert repr(handle) == f"{type(handle).__name__}(closed)"


def test_snapshot_info_flags_are_bools_and_the_info_is_a_copy(tmp_path):
    tracker = eplb.Tracker(2, 12, 4)
    placement = deepseek_plan()
    snapshot = eplb.Snapshot.from_bytes(eplb.snapshot_bytes(placement, loads=WEIGHT,
                                                            tracker=tracker))
    assert snapshot.info["has_loads"] is True and snapshot.info["has_coactivation"] is True
    plain = eplb.Snapshot.from_bytes(eplb.snapshot_bytes(placement))
    assert plain.info["has_loads"] is False and plain.info["has_coactivation"] is False
    placement.save(tmp_path / "p.eplb")
    assert eplb.Snapshot.inspect(tmp_path / "p.eplb")["has_loads"] is False
    snapshot.info["num_layers"] = 7  # changes a copy only
    assert snapshot.loads().tolist() == np.array(WEIGHT, float).tolist()


def test_vllm_ascend_json_round_trip():
    placement = deepseek_plan()
    text = placement.to_vllm_ascend_json()
    document = json.loads(text)  # an independent reading of the format
    assert document["moe_layer_count"] == 2
    for layer, entry in enumerate(document["layer_list"]):
        experts = [device["device_expert"] for device in entry["device_list"]]
        assert np.array(experts).ravel().tolist() == PHY2LOG[layer]
    back = eplb.Placement.from_vllm_ascend_json(text, num_nodes=2, num_logical_experts=12)
    assert back == placement and (back.num_gpus, back.num_nodes) == (8, 2)
    assert eplb.Placement.from_vllm_ascend_json(text.encode(), 2) == placement
    minimal = ('{"moe_layer_count": 1, "layer_list": [{"device_list": [{"device_expert": [0, 1]}, '
               '{"device_expert": [2, 0]}]}]}')
    small = eplb.Placement.from_vllm_ascend_json(minimal, 1)
    assert small.phy2log.tolist() == [[0, 1, 2, 0]] and small.num_logical_experts == 3
    wrong_id = minimal.replace('{"device_expert": [2, 0]}',
                               '{"device_id": 5, "device_expert": [2, 0]}')
    with pytest.raises(eplb.CorruptError):
        eplb.Placement.from_vllm_ascend_json(wrong_id, 1)


# ---- 10: paths, errors across processes, what handles are made from --------------------------

def test_paths_are_os_paths_and_a_nul_is_refused_not_cut(tmp_path):
    placement = deepseek_plan()
    tracker = eplb.Tracker(2, 12, 4)
    # bytes and non-UTF-8 names reach the OS as they are (SWIG refused both with a TypeError
    # naming its wrapper).
    name = bytes(tmp_path) + b"/caf\xe9.eplb"
    placement.save(name, loads=WEIGHT)
    assert eplb.load_snapshot(os.fsdecode(name)).placement() == placement
    assert eplb.Snapshot.inspect(name)["has_loads"] is True
    tracker.save(bytes(tmp_path) + b"/stats.eplb")
    assert eplb.load_snapshot(tmp_path / "stats.eplb").tracker().options() == tracker.options()
    # A NUL ended the path in C: save("x.eplb\0.bak") wrote x.eplb, load read it.
    calls = [lambda p: placement.save(p), lambda p: tracker.save(p),
             lambda p: eplb.save_statistics(p, tracker), eplb.load_snapshot,
             eplb.Snapshot.inspect]
    for call in calls:
        for path in (str(tmp_path / "x.eplb") + "\0.bak", bytes(tmp_path) + b"/x.eplb\0.bak"):
            with refused(eplb.InvalidArgumentError, "NUL", "x.eplb"):
                call(path)
        with refused(TypeError, "path", "NoneType"):
            call(None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["caf\udce9.eplb", "stats.eplb"]


def test_messages_that_quote_bytes_that_are_not_utf8_still_raise_the_librarys_error(tmp_path):
    """The library quotes paths and documents byte for byte: such a message reaches Python as
    the library's error, its bad bytes as \\xff, never as a UnicodeDecodeError."""
    missing = bytes(tmp_path) + b"/\xff.eplb"
    for call in (eplb.load_snapshot, eplb.Snapshot.inspect):
        with refused(eplb.IOError, "\\xff.eplb"):
            call(missing)
        with refused(eplb.IOError, "\\xff.eplb"):
            call(os.fsdecode(missing))
    with refused(eplb.CorruptError):
        eplb.loads_from_sglang_json(b"\xff\xfe")
    with refused(eplb.CorruptError):
        eplb.Placement.from_sglang_json(b'{"physical_to_logical_map": [[0, "\xff"]]}', 1, 1)


def test_shapes_too_wide_for_the_c_types_are_invalid_arguments():
    """A [tokens][top_k] matrix's width is a uint32 top_k, a map's rows and columns uint32 counts:
    wider zero-size arrays are refused by name, not cut to 32 bits."""
    tracker = eplb.Tracker(1, 4, 2)
    with refused(eplb.InvalidArgumentError, "topk_ids", str(2**32 + 2)):
        tracker.record(0, np.zeros((0, 2**32 + 2), np.int32))
    assert tracker.layer_counts(0) == (0, 0)
    with refused(eplb.InvalidArgumentError, "rows", str(2**32)):
        deepseek_plan().nodes_touched(0, np.zeros((0, 2**32), np.int32))
    with refused(eplb.InvalidArgumentError, "phy2log", str(2**33)):
        eplb.Placement.from_phy2log(np.zeros((2**33, 0), np.int32), 1, 1, 1)


def test_an_algorithm_name_with_a_nul_is_refused_not_cut():
    with refused(eplb.InvalidArgumentError, "algorithm", "NUL"):
        eplb.Planner(2, 12, 16, 8, algorithm="deepseek\0balanced")  # was planned as deepseek


def test_errors_survive_pickling_as_process_pools_send_them():
    with pytest.raises(eplb.InvalidArgumentError) as info:
        eplb.Planner(2, 12, 16, 8).plan(np.full((2, 12), np.nan))
    raised = info.value
    raised.add_note("while planning")
    made = [cls(cls.status if cls.status > 0 else 9, "m") for cls in (
        eplb.Error, eplb.InvalidTypeError, eplb.IOError, eplb.TruncatedError,
        eplb.CancelledError)]
    for error in [raised] + made:
        # Error.__init__ needs (status, message) but BaseException pickled (message,): the
        # unpickling TypeError broke a ProcessPoolExecutor instead of reaching the caller.
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error)
        assert (back.status, back.message, str(back)) == (error.status, error.message, str(error))
        assert getattr(back, "__notes__", None) == getattr(error, "__notes__", None)
    assert pickle.loads(pickle.dumps(raised)).status == capi.EPLB_ERR_INVALID_ARGUMENT


def test_handles_are_made_by_the_package_not_from_other_objects(monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    cases = [(lambda: eplb.Placement(np.array(PHY2LOG)), "ndarray", "Placement.from_phy2log"),
             (lambda: eplb.Placement(None), "NoneType", "Planner.plan"),
             (lambda: eplb.Snapshot("plan.eplb"), "str", "eplb.load_snapshot"),
             (lambda: eplb.Migration(None, None), "NoneType", "eplb.plan_migration")]
    for call, got, hint in cases:
        with refused(TypeError, "not constructed directly", got, hint):
            call()
    gc.collect()
    assert unraisable == []  # no second TypeError from a half-made handle's destructor


def test_snapshot_from_bytes_takes_bytes_like_objects_only():
    placement = deepseek_plan()
    data = eplb.snapshot_bytes(placement)
    strided = np.frombuffer(bytes(b for byte in data for b in (byte, 0)), np.uint8)[::2]
    for like in (bytearray(data), memoryview(data), np.frombuffer(data, np.uint8), strided):
        assert eplb.Snapshot.from_bytes(like).placement() == placement
    for bad in (None, data.decode("latin-1"), 5):  # None was read as an empty buffer
        with refused(TypeError, "data", "bytes-like", type(bad).__name__):
            eplb.Snapshot.from_bytes(bad)
