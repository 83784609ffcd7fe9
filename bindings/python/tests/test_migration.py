"""Migration planning against independent oracles: the transfers replayed in numpy reach every
step placement and the target, the target holds the new plan's GPU contents, and every summary
field is recounted from the transfers and the placements."""

import numpy as np
import pytest

import eplb
from eplb import capi

LAYERS, EXPERTS, SLOTS, NODES, GPUS = 3, 20, 32, 2, 8
PER_GPU, GPUS_PER_NODE = SLOTS // GPUS, GPUS // NODES
MIB = 1 << 20
GIB = 1 << 30


def random_rows(rng, layers=LAYERS, experts=EXPERTS, slots=SLOTS):
    """[layers][slots]: every expert once, the other slots random replicas, shuffled."""
    rows = []
    for _ in range(layers):
        row = np.concatenate([np.arange(experts), rng.integers(0, experts, slots - experts)])
        rng.shuffle(row)
        rows.append(row)
    return np.array(rows, dtype=np.int32)


def placement(rows, nodes=NODES):
    return eplb.Placement.from_phy2log(rows, EXPERTS, nodes, GPUS)


def gpu_contents(rows):
    """[layers][gpus] sorted expert lists of each GPU."""
    return [[sorted(row[g * PER_GPU:(g + 1) * PER_GPU].tolist()) for g in range(GPUS)]
            for row in rows]


def replay(migration, old_rows):
    """Applies the transfers step by step (sources read before the step's writes), checking each
    step against the library's step placement; returns the final phy2log."""
    summary = migration.summary()
    experts, slots = migration.num_logical_experts, migration.num_physical_experts
    per_gpu = migration.slots_per_gpu
    gpus_per_node = migration.num_gpus // migration.num_nodes
    state = old_rows.copy()
    steps = []
    for step in range(summary.num_steps):
        t = migration.transfers(step)
        assert t.dtype == eplb.TRANSFER_DTYPE and len(t) > 0
        assert (t["step"] == step).all()
        key = t["layer"].astype(np.int64) * slots + t["dst_slot"]
        assert (np.diff(key) > 0).all()  # ordered by layer, destination; each slot written once
        assert (state[t["layer"], t["src_slot"]] == t["expert"]).all()  # source holds the expert
        assert (t["src_gpu"] == t["src_slot"] // per_gpu).all()
        assert (t["dst_gpu"] == t["dst_slot"] // per_gpu).all()
        same_node = t["src_gpu"] // gpus_per_node == t["dst_gpu"] // gpus_per_node
        kind = np.where(t["src_gpu"] == t["dst_gpu"], eplb.TRANSFER_SAME_GPU,
                        np.where(same_node, eplb.TRANSFER_INTRA_NODE, eplb.TRANSFER_CROSS_NODE))
        assert (t["kind"] == kind).all()
        state[t["layer"], t["dst_slot"]] = t["expert"]
        for row in state:  # servable after every step: each expert keeps a replica
            assert set(row.tolist()) == set(range(experts))
        with migration.step_placement(step) as after:
            assert (after.phy2log == state).all()
        steps.append(t)
    everything = migration.transfers()
    assert everything.tolist() == (np.concatenate(steps) if steps else everything).tolist()
    return state


def check_step_budget(migration, old_rows, max_experts):
    """Steps stay within the byte budget, except a swap cycle of only replicas, which moves
    whole and alone (one layer) in its step."""
    state = old_rows.copy()
    for step in range(migration.num_steps):
        t = migration.transfers(step)
        if len(t) > max_experts:
            assert len(set(t["layer"].tolist())) == 1
            replicas = np.bincount(state[t["layer"][0]], minlength=migration.num_logical_experts)
            assert (replicas[t["expert"]] == 1).all()
        state[t["layer"], t["dst_slot"]] = t["expert"]


def check_summary(s, migration, old, new, old_rows, loads, bytes_per_expert, min_gain=0.005,
                  min_gain_per_gib=0.0):
    """Recounts every summary field from the transfers and the placements."""
    t = migration.transfers()
    target = migration.target()
    target_rows = target.phy2log
    assert s.moved_experts == len(t)
    assert s.same_gpu_experts == np.sum(t["kind"] == eplb.TRANSFER_SAME_GPU)
    assert s.intra_node_experts == np.sum(t["kind"] == eplb.TRANSFER_INTRA_NODE)
    assert s.cross_node_experts == np.sum(t["kind"] == eplb.TRANSFER_CROSS_NODE)
    for field in ("moved", "same_gpu", "intra_node", "cross_node"):
        assert getattr(s, field + "_bytes") == getattr(s, field + "_experts") * bytes_per_expert
    per_step = np.bincount(t["step"], minlength=s.num_steps) if len(t) else np.zeros(0, int)
    assert s.num_steps == len(per_step) and (per_step > 0).all()
    assert s.max_step_bytes == (per_step.max() if len(t) else 0) * bytes_per_expert
    staged = np.zeros((max(s.num_steps, 1), GPUS), dtype=int)
    np.add.at(staged, (t["step"], t["dst_gpu"]), 1)
    assert s.max_staging_experts == staged.max()
    assert s.naive_experts == LAYERS * SLOTS
    # vLLM's rule: per GPU, the new plan's experts that GPU does not hold yet.
    rule = 0
    for old_layer, new_layer in zip(gpu_contents(old_rows), gpu_contents(new.phy2log)):
        for have, want in zip(old_layer, new_layer):
            have_count = np.bincount(have, minlength=EXPERTS)
            want_count = np.bincount(want, minlength=EXPERTS)
            rule += np.maximum(want_count - have_count, 0).sum()
    assert s.same_gpu_rule_experts == rule
    if s.complete:
        assert s.full_migration_experts == np.sum(old_rows != target_rows) == s.moved_experts
    assert s.has_loads == (loads is not None)
    if loads is None:
        assert s.old_balancedness == s.new_balancedness == s.target_balancedness == s.gain == 0
        assert s.worth_it == (s.moved_experts > 0)
    else:
        assert s.old_balancedness == pytest.approx(old.metrics(loads).balancedness, abs=1e-12)
        assert s.target_balancedness == pytest.approx(target.metrics(loads).balancedness,
                                                      abs=1e-12)
        assert s.gain == pytest.approx(s.target_balancedness - s.old_balancedness, abs=1e-15)
        # The library also requires a positive gain (eplb.h states only the two minimums; the
        # cases here never set min_gain <= 0 with a gain <= 0, where the two readings differ).
        gate = (s.moved_experts > 0 and s.gain > 0 and s.gain >= min_gain and
                s.gain >= min_gain_per_gib * s.moved_bytes / GIB)
        assert s.worth_it == gate
    return target_rows


def check_repack(layer, gpu_map, new_rows, target_rows, loads):
    """The header's promises for repack_in_node: nodes are relabeled whole and keep the new plan's
    replicas, no GPU goes above the new plan's busiest one, and no GPU gets a new duplicate."""
    per_node = SLOTS // NODES
    for node in range(NODES):
        gpus = range(node * GPUS_PER_NODE, (node + 1) * GPUS_PER_NODE)
        moved_to = {int(gpu_map[layer, g]) // GPUS_PER_NODE for g in gpus}
        assert len(moved_to) == 1
        (target_node,) = moved_to
        assert (sorted(new_rows[layer, node * per_node:(node + 1) * per_node]) ==
                sorted(target_rows[layer, target_node * per_node:(target_node + 1) * per_node]))
    if loads is not None:
        busiest = placement(new_rows).gpu_loads(loads)[layer].max()
        assert placement(target_rows).gpu_loads(loads)[layer].max() <= busiest * (1 + 1e-12)

    def duplicates(rows):
        return sum(len(set(rows[layer, g * PER_GPU:(g + 1) * PER_GPU])) < PER_GPU
                   for g in range(GPUS))
    assert duplicates(target_rows) <= duplicates(new_rows)


@pytest.mark.parametrize("relabel", list(eplb.RELABEL_MODES))
def test_transfers_replay_to_the_target_and_the_summary_recounts(relabel):
    rng = np.random.default_rng(42)
    for trial in range(6):
        loads = rng.uniform(1, 100, size=(LAYERS, EXPERTS)) if trial % 3 else None
        old_rows, new_rows = random_rows(rng), random_rows(rng)
        old, new = placement(old_rows), placement(new_rows)
        bpe = 44 * MIB
        with eplb.plan_migration(old, new, loads=loads, relabel=relabel, bytes_per_expert=bpe,
                                 max_bytes_per_step=4 * bpe) as migration:
            s = migration.summary()
            assert s.complete and s.num_steps == migration.num_steps >= 2
            state = replay(migration, old_rows)
            target_rows = check_summary(s, migration, old, new, old_rows, loads, bpe)
            assert (state == target_rows).all()
            gpu_map = migration.gpu_map()
            assert gpu_map.dtype == np.uint32 and gpu_map.shape == (LAYERS, GPUS)
            for layer in range(LAYERS):
                assert sorted(gpu_map[layer].tolist()) == list(range(GPUS))  # a permutation
            if relabel == "none":
                assert (gpu_map == np.arange(GPUS)).all()
            if relabel == "gpus_in_node":
                assert (gpu_map // GPUS_PER_NODE == np.arange(GPUS) // GPUS_PER_NODE).all()
            target_gpus, new_gpus = gpu_contents(target_rows), gpu_contents(new_rows)
            for layer in range(LAYERS):
                # Each node keeps the new plan's replicas (repack moves them between its GPUs).
                assert (np.bincount(target_rows[layer], minlength=EXPERTS) ==
                        np.bincount(new_rows[layer], minlength=EXPERTS)).all()
                if relabel == "repack_in_node":
                    check_repack(layer, gpu_map, new_rows, target_rows, loads)
                    continue
                # A pure relabeling: new GPU g's experts are on GPU gpu_map[g] of the target.
                for g in range(GPUS):
                    assert target_gpus[layer][gpu_map[layer, g]] == new_gpus[layer][g]
            if loads is not None and relabel != "repack_in_node":
                assert s.new_balancedness == pytest.approx(new.metrics(loads).balancedness,
                                                           abs=1e-12)
            if loads is not None:  # repack never loses balance
                assert s.target_balancedness >= new.metrics(loads).balancedness - 1e-12
            # Relabeling only helps: never more transfers than vLLM's same-GPU rule.
            assert s.moved_experts <= s.same_gpu_rule_experts
            check_step_budget(migration, old_rows, 4)


def test_total_budget_and_layers_per_step():
    rng = np.random.default_rng(11)
    loads = rng.uniform(1, 100, size=(LAYERS, EXPERTS))
    old_rows = random_rows(rng)
    old, new = placement(old_rows), placement(random_rows(rng))
    full = eplb.plan_migration(old, new, loads).summary()
    budget = full.moved_bytes // 4
    with eplb.plan_migration(old, new, loads, max_total_bytes=budget) as cut:
        s = cut.summary()
        assert not s.complete and 0 < s.moved_bytes <= budget
        assert s.full_migration_experts == full.full_migration_experts
        assert s.gain >= 0
        state = replay(cut, old_rows)
        assert (state == check_summary(s, cut, old, new, old_rows, loads, 1)).all()
    with eplb.plan_migration(old, new, loads, max_layers_per_step=1) as one_layer:
        assert one_layer.summary().complete
        for step in range(one_layer.num_steps):
            assert len(set(one_layer.transfers(step)["layer"].tolist())) == 1
        assert (replay(one_layer, old_rows) == one_layer.target().phy2log).all()


def test_worth_it_gate():
    rng = np.random.default_rng(5)
    loads = rng.lognormal(size=(LAYERS, EXPERTS)) * 100
    old_rows = random_rows(rng)
    old = placement(old_rows)
    planner = eplb.Planner(LAYERS, EXPERTS, SLOTS, GPUS, num_nodes=NODES, algorithm="balanced")
    new = planner.plan(loads)

    # Nothing to move: no steps, no transfers, not worth it, the target is the old placement.
    with eplb.plan_migration(old, old, loads) as same:
        s = same.summary()
        assert (s.num_steps, s.moved_experts, s.worth_it, s.complete) == (0, 0, False, True)
        assert same.transfers().shape == (0,) and same.transfers().dtype == eplb.TRANSFER_DTYPE
        assert (same.target().phy2log == old_rows).all()
        with pytest.raises(eplb.InvalidArgumentError) as info:
            same.step_placement(0)
        assert info.value.status == capi.EPLB_ERR_INVALID_ARGUMENT and "step" in info.value.message

    gain = eplb.plan_migration(old, new, loads).summary().gain
    assert gain > 0.01  # a planned placement beats a random one
    bpe = 64 * MIB
    cases = [dict(min_gain=0.0), dict(min_gain=gain + 1e-6), dict(min_gain=gain - 1e-6),
             dict(min_gain=0.0, min_gain_per_gib=1e6), dict(min_gain=0.0, min_gain_per_gib=1e-9)]
    seen = set()
    for gate in cases:
        with eplb.plan_migration(old, new, loads, bytes_per_expert=bpe, **gate) as m:
            s = m.summary()
            check_summary(s, m, old, new, old_rows, loads, bpe, **gate)
            seen.add(s.worth_it)
    assert seen == {True, False}
    without = eplb.plan_migration(old, new).summary()  # no loads: worth it when anything moves
    assert not without.has_loads and without.worth_it and without.gain == 0


def test_bad_input_raises_with_the_c_status():
    rng = np.random.default_rng(3)
    rows = random_rows(rng)
    a, b = placement(rows), placement(random_rows(rng))
    invalid = capi.EPLB_ERR_INVALID_ARGUMENT

    def refused(message_part, *args, **kwargs):
        with pytest.raises(eplb.InvalidArgumentError) as info:
            eplb.plan_migration(*args, **kwargs)
        assert info.value.status == invalid
        assert message_part in info.value.message, info.value.message

    refused("num_nodes", a, placement(rows, nodes=1))  # the library: shapes differ
    refused("loads", a, b, loads=np.ones((EXPERTS, LAYERS)))  # transposed
    loads = np.ones((LAYERS, EXPERTS))
    loads[1, 4] = -3
    refused("-3", a, b, loads=loads)
    loads[1, 4] = np.nan
    refused("NaN", a, b, loads=loads)
    refused("relabel 'bogus'", a, b, relabel="bogus")
    refused("relabel (9)", a, b, relabel=9)
    refused("bytes_per_expert", a, b, bytes_per_expert=0)
    refused("bytes_per_expert (-1)", a, b, bytes_per_expert=-1)
    refused("max_total_bytes", a, b, max_total_bytes=1 << 64)
    refused("max_layers_per_step", a, b, max_layers_per_step=2.5)
    refused("min_gain", a, b, min_gain=float("inf"))
    refused("min_gain_per_gib", a, b, min_gain_per_gib=-1)
    refused("min_gain", a, b, min_gain="high")

    m = eplb.plan_migration(a, b)
    steps = m.num_steps
    for bad in (steps, -1, 2**32 - 1, 2**32, "0"):
        with pytest.raises(eplb.InvalidArgumentError) as info:
            m.transfers(bad)
        assert info.value.status == invalid
        with pytest.raises(eplb.InvalidArgumentError):
            m.step_placement(bad)
    with pytest.raises(eplb.InvalidArgumentError):
        m.step_placement(None)
    # The raw module: a short caller buffer is BUFFER_TOO_SMALL, as the header says.
    with pytest.raises(eplb.BufferTooSmallError) as info:
        capi.eplb_migration_get_transfers(m._h, capi.EPLB_MIGRATION_ALL_STEPS,
                                          np.empty((1, 8), np.uint32))
    assert info.value.status == capi.EPLB_ERR_BUFFER_TOO_SMALL
    with pytest.raises(ValueError):  # not whole transfers
        capi.eplb_migration_get_transfers(m._h, 0, np.empty(7, np.uint32))
    with pytest.raises(TypeError):  # wrong item type
        capi.eplb_migration_get_transfers(m._h, 0, np.empty((1, 8), np.int64))
    with pytest.raises(eplb.BufferTooSmallError):
        capi.eplb_migration_get_gpu_map(m._h, np.empty(3, np.uint32))
    m.close()
    with pytest.raises(ValueError):
        m.summary()
    assert repr(m) == "Migration(closed)"


def test_raw_capi_copies_agree_and_the_plan_outlives_its_inputs():
    rng = np.random.default_rng(8)
    old_rows = random_rows(rng)
    old, new = placement(old_rows), placement(random_rows(rng))
    m = eplb.plan_migration(old, new)
    old.close()
    new.close()  # the plan copied what it needs
    owned = capi.eplb_migration_copy_transfers(m._h, capi.EPLB_MIGRATION_ALL_STEPS)
    assert isinstance(owned, bytes)
    assert np.frombuffer(owned, dtype=eplb.TRANSFER_DTYPE).tolist() == m.transfers().tolist()
    assert capi.eplb_migration_copy_transfers(m._h, 0) == m.transfers(0).tobytes()
    assert capi.eplb_migration_get_transfers(m._h, 0, None) == len(m.transfers(0))
    assert (replay(m, old_rows) == m.target().phy2log).all()
    assert "moved_experts" in repr(m)


def test_a_swap_cycle_moves_whole_and_keeps_every_expert():
    # One replica per expert; the new plan rotates GPU contents, and relabel="none" keeps the
    # rotation: every GPU needs its neighbour's only replicas, a cycle no budget can cut.
    old_rows = np.arange(8, dtype=np.int32).reshape(1, 8)
    new_rows = np.roll(old_rows, -2, axis=1)
    old = eplb.Placement.from_phy2log(old_rows, 8, 2, 4)
    new = eplb.Placement.from_phy2log(new_rows, 8, 2, 4)
    with eplb.plan_migration(old, new, relabel="none", max_bytes_per_step=1) as m:
        s = m.summary()
        assert s.complete and s.moved_experts == 8 and s.max_step_bytes > 1
        assert (replay(m, old_rows) == new_rows).all()  # swaps read before they write
        check_step_budget(m, old_rows, 1)
        kinds = m.transfers()["kind"]
        assert s.cross_node_experts == np.sum(kinds == eplb.TRANSFER_CROSS_NODE) > 0
    # Relabeling keeps one GPU of each node in place ({2,3} on node 0, {6,7} on node 1); the two
    # others must cross nodes whatever the permutation, as GPUs move with their node.
    with eplb.plan_migration(old, new) as relabeled:
        s = relabeled.summary()
        assert s.moved_experts == s.full_migration_experts == 4 and s.same_gpu_rule_experts == 8
        assert (replay(relabeled, old_rows) == relabeled.target().phy2log).all()
    # On one node, GPUs are free to trade places: nothing moves.
    old1 = eplb.Placement.from_phy2log(old_rows, 8, 1, 4)
    new1 = eplb.Placement.from_phy2log(new_rows, 8, 1, 4)
    with eplb.plan_migration(old1, new1) as free:
        assert free.summary().moved_experts == 0 and free.num_steps == 0
        assert (free.target().phy2log == old_rows).all()
        assert free.gpu_map().tolist() == [[1, 2, 3, 0]]  # new GPU g sits where g's experts are


def test_one_plan_is_read_from_many_threads():
    import threading

    rng = np.random.default_rng(9)
    loads = rng.uniform(1, 100, size=(LAYERS, EXPERTS))
    old, new = placement(random_rows(rng)), placement(random_rows(rng))
    m = eplb.plan_migration(old, new, loads, max_bytes_per_step=6)
    serial = [(m.transfers(step).tobytes(), m.step_placement(step).phy2log.tobytes())
              for step in range(m.num_steps)]
    results, errors = {}, []

    def read(worker):
        try:
            for _ in range(20):
                for step in range(m.num_steps):
                    got = (m.transfers(step).tobytes(), m.step_placement(step).phy2log.tobytes())
                    assert got == serial[step]
            results[worker] = m.summary()
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 4 and len(set(results.values())) == 1
