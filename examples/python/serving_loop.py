"""A serving loop: record top-k routing, re-plan every 50 batches, save the plan, restart from it."""
import os, sys, tempfile
import numpy as np
import eplb

path = os.path.join(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(), "placement.eplb")
rng = np.random.default_rng(0)
log_popularity = rng.normal(size=(4, 64))  # 4 layers x 64 experts, lognormal popularity
tracker = eplb.Tracker(num_layers=4, num_logical_experts=64, top_k=8, window="sliding", window_batches=100)
planner = eplb.Planner(num_layers=4, num_logical_experts=64, num_physical_experts=80, num_gpus=8)
# readme-snippet:begin (README.md, Bindings; checked by the python_readme_snippets test)
for batch in range(1, 201):
    for layer in range(4):  # top-8 routing of 256 tokens (Gumbel top-k sampling)
        tracker.record(layer, np.argsort(-(log_popularity[layer] + rng.gumbel(size=(256, 64))))[:, :8])
    if batch % 50 == 0:
        placement = planner.plan(tracker.loads())
        placement.save(path, loads=tracker.loads(), label=f"batch {batch}")
        print(f"batch {batch}: balancedness {placement.metrics(tracker.loads()).balancedness:.4f}")
restarted = eplb.load_snapshot(path).placement()  # a restarted server loads the last plan at startup
# readme-snippet:end
assert (restarted.phy2log == placement.phy2log).all()
print(f"restart: loaded {path} ({eplb.Snapshot.inspect(path)['label']}), {restarted}")
