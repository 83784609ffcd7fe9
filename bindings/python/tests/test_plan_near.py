"""Planner.plan_near: a re-plan near the placement the GPUs hold keeps what is balanced enough,
stays within min_balance of the fresh plan's balancedness, moves fewer experts than the
migration to the fresh plan, and refuses bad arguments naming the value."""

import math

import numpy as np
import pytest

import eplb
from eplb import capi

LAYERS, EXPERTS, SLOTS, GROUPS, NODES, GPUS = 4, 32, 48, 4, 2, 8
ALGORITHMS = ("balanced", "balanced-hierarchical", "deepseek")


def make_planner(algorithm="balanced", **options):
    return eplb.Planner(LAYERS, EXPERTS, SLOTS, GPUS, num_nodes=NODES, num_groups=GROUPS,
                        algorithm=algorithm, **options)


def skewed_loads(rng):
    """[layers][experts] with a few popular experts (log-normal popularity)."""
    return 1000 * rng.lognormal(0.0, 1.0, (LAYERS, EXPERTS))


def moved_experts(old, new, loads):
    with eplb.plan_migration(old, new, loads) as migration:
        return migration.summary().moved_experts


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_plan_of_the_same_loads_is_kept_as_it_is(algorithm):
    loads = skewed_loads(np.random.default_rng(1))
    planner = make_planner(algorithm)
    current = planner.plan(loads)
    near, report = planner.plan_near(current, loads)
    assert isinstance(report, eplb.NearReport)
    assert report == eplb.NearReport(layers_kept=LAYERS, layers_rebalanced=0, layers_replanned=0)
    assert (near.phy2log == current.phy2log).all()
    assert moved_experts(current, near, loads) == 0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_drifted_loads_stay_balanced_and_move_fewer_experts_than_the_fresh_plan(algorithm):
    rng = np.random.default_rng(5)
    old_loads = skewed_loads(rng)
    planner = make_planner(algorithm)
    current = planner.plan(old_loads)
    moved_near = moved_fresh = 0
    for min_balance in (0.99, None, 0.995, 1.0, 0.998):
        loads = old_loads * rng.lognormal(0.0, 0.4, old_loads.shape)
        kwargs = {} if min_balance is None else {"min_balance": min_balance}
        near, report = planner.plan_near(current, loads, **kwargs)
        fresh = planner.plan(loads)
        assert sum(report) == LAYERS  # every layer counted once
        assert near.num_layers == LAYERS and near.num_nodes == NODES
        # Per layer the target holds, so the mean balancedness does too (None: 0.998).
        floor = 0.998 if min_balance is None else min_balance
        assert (near.metrics(loads).balancedness >=
                floor * fresh.metrics(loads).balancedness - 1e-12)
        moved_near += moved_experts(current, near, loads)
        moved_fresh += moved_experts(current, fresh, loads)
    assert moved_near < moved_fresh, (moved_near, moved_fresh)


def test_a_small_drift_keeps_every_layer_and_the_control_counts_two_passes():
    rng = np.random.default_rng(9)
    loads = skewed_loads(rng)
    control = eplb.PlanControl()
    planner = make_planner(control=control)
    current = planner.plan(loads)
    before = control.progress.steps_total
    # A tiny drift: the current layout is still within 0.9 of the fresh plan's balancedness.
    drifted = loads * rng.uniform(0.999, 1.001, loads.shape)
    near, report = planner.plan_near(current, drifted, min_balance=0.9)
    assert report.layers_kept == LAYERS
    assert near == current
    # Two passes per layer: the planner's own plan, then the near one.
    assert control.progress.steps_total - before == 2 * LAYERS
    assert control.progress.steps_done == control.progress.steps_total


def test_bad_arguments_raise_naming_the_value():
    loads = np.ones((LAYERS, EXPERTS))
    planner = make_planner()
    current = planner.plan(loads)

    def refused(message_part, current=current, loads=loads, **kwargs):
        with pytest.raises(eplb.InvalidArgumentError) as info:
            planner.plan_near(current, loads, **kwargs)
        assert info.value.status == capi.EPLB_ERR_INVALID_ARGUMENT
        assert message_part in info.value.message, info.value.message

    refused("min_balance (0)", min_balance=0)
    refused("min_balance (1.5)", min_balance=1.5)
    refused("min_balance (-0.5)", min_balance=-0.5)
    refused("min_balance (nan)", min_balance=math.nan)
    # A placement of another shape: the message names the field that differs.
    one_node = eplb.Placement.from_phy2log(
        np.tile(np.arange(SLOTS, dtype=np.int32) % EXPERTS, (LAYERS, 1)), EXPERTS, 1, GPUS)
    refused("num_nodes (1)", current=one_node)
    with eplb.Planner(LAYERS + 1, EXPERTS, SLOTS, GPUS, num_nodes=NODES) as deeper:
        refused("num_layers (5)", current=deeper.plan(np.ones((LAYERS + 1, EXPERTS))))
    refused("loads", loads=np.ones((EXPERTS, LAYERS)))  # transposed
    bad = loads.copy()
    bad[2, 7] = -2
    refused("-2", loads=bad)
    with pytest.raises(eplb.InvalidArgumentError) as info:
        make_planner(affinity=True).plan_near(current, loads)
    assert "affinity" in info.value.message
    with pytest.raises(eplb.InvalidTypeError) as info:
        planner.plan_near(current.phy2log, loads)
    assert "current" in info.value.message
    with pytest.raises(eplb.InvalidTypeError) as info:
        planner.plan_near(current, loads, min_balance="high")
    assert "min_balance" in info.value.message
    current.close()
    with pytest.raises(ValueError):
        planner.plan_near(current, loads)
    # The planner plans on after every refusal.
    again = planner.plan(loads)
    near, report = planner.plan_near(again, loads)
    assert near == again and report.layers_kept == LAYERS
