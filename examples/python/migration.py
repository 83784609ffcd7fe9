"""Re-planning a running server: simulate routing, plan, let the load drift, plan again, and move
the expert weights from the old placement to the new one step by step (a numpy stand-in for the
GPUs' weight buffers), only if the predicted balancedness gain is worth the bytes."""
import numpy as np
import eplb

LAYERS, EXPERTS, SLOTS, GPUS, NODES = 4, 64, 80, 8, 2
EXPERT_BYTES = 44 << 20  # one DeepSeek-V3 expert in FP8, roughly

workload = eplb.Workload(num_layers=LAYERS, num_experts=EXPERTS, top_k=8, drift_rho=0.9, seed=1)
tracker = eplb.Tracker(num_layers=LAYERS, num_logical_experts=EXPERTS, top_k=8, window="sliding",
                       window_batches=20)
planner = eplb.Planner(num_layers=LAYERS, num_logical_experts=EXPERTS, num_physical_experts=SLOTS,
                       num_gpus=GPUS, num_nodes=NODES)


def record(batches):
    for _ in range(batches):
        batch = workload.next_batch(512)  # [layers][tokens][top_k] expert ids
        for layer in range(LAYERS):
            tracker.record(layer, batch[layer])


record(20)
serving = planner.plan(tracker.loads())
weights = serving.phy2log.copy()  # weights[layer, slot]: which expert's weights the slot holds
record(40)  # the popularity drifts
loads = tracker.loads()
with eplb.plan_migration(serving, planner.plan(loads), loads, bytes_per_expert=EXPERT_BYTES,
                         max_bytes_per_step=8 * EXPERT_BYTES, min_gain=0.001) as migration:
    s = migration.summary()
    print(f"balancedness {s.old_balancedness:.4f} -> {s.target_balancedness:.4f}: "
          f"{s.moved_experts} experts in {s.num_steps} steps ({s.moved_bytes / 2**30:.2f} GiB, "
          f"{s.cross_node_experts} across nodes; {s.same_gpu_rule_experts} without relabeling, "
          f"{s.naive_experts} for a full reload), worth it: {s.worth_it}")
    if s.worth_it:
        for step in range(s.num_steps):
            t = migration.transfers(step)
            weights[t["layer"], t["dst_slot"]] = weights[t["layer"], t["src_slot"]]  # reads first
            assert (weights == migration.step_placement(step).phy2log).all()
        serving = migration.target()
        assert (weights == serving.phy2log).all()
print(f"migrated: serving {serving} at balancedness {serving.metrics(loads).balancedness:.4f}")
