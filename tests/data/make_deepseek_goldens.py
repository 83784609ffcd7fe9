#!/usr/bin/python3
"""Regenerates tests/data/deepseek_goldens.json: inputs and outputs of DeepSeek's reference EPLB.

The reference (deepseek-ai/EPLB `eplb.py`, MIT) is not part of this repository. To regenerate,
put a copy of eplb.py in a directory and run, with Debian's python3-torch installed:

    /usr/bin/python3 tests/data/make_deepseek_goldens.py /path/to/dir/with/eplb.py

Loads are whole numbers whose per-group sums stay below 2**24, so float32 holds every load and
every group sum exactly (the reference sums groups with torch's vectorised float32 reduction,
whose rounding order is CPU-specific). Cases marked "tie_free" use distinct loads drawn from a
wide range; cases marked "ties" use loads in 1..5, full of equal weights, and show that libeplb
also breaks ties the way the reference does (the same unstable descending sort, lowest pack index,
first argmax).
"""
import json
import sys

import numpy as np
import torch

sys.path.insert(0, sys.argv[1])
import eplb  # noqa: E402  (the reference, from the directory given)


def case(name, kind, loads, replicas, groups, nodes, gpus):
    weight = torch.tensor(loads, dtype=torch.int64)
    phy2log, log2phy, logcnt = eplb.rebalance_experts(weight, replicas, groups, nodes, gpus)
    return {
        "name": name, "kind": kind, "num_physical_experts": replicas, "num_groups": groups,
        "num_nodes": nodes, "num_gpus": gpus, "loads": loads,
        "phy2log": phy2log.tolist(), "replica_counts": logcnt.tolist(),
        "log2phy": log2phy.tolist(),
    }


def distinct_loads(rng, layers, experts, group_size):
    ceiling = (1 << 24) // group_size - 1
    rows = []
    for _ in range(layers):
        # lognormal popularity, made distinct by drawing without replacement around it
        scale = rng.lognormal(0.0, 0.8, experts)
        values = np.unique(np.clip((scale / scale.max() * ceiling).astype(np.int64), 1, ceiling))
        while values.size < experts:
            extra = rng.integers(1, ceiling, experts)
            values = np.unique(np.concatenate([values, extra]))
        row = rng.permutation(values)[:experts]
        rows.append([int(v) for v in row])
    return rows


def main():
    rng = np.random.default_rng(20261122)
    cases = []
    readme = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
              [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]
    cases.append(case("readme_hierarchical", "published", readme, 16, 4, 2, 8))
    cases.append(case("readme_global", "published", readme, 16, 3, 2, 8))
    cases.append(case("flashlb_global", "published", [[600, 560, 120, 120, 20, 10, 10, 10]],
                      16, 1, 1, 8))
    shapes = [  # (experts, replicas, groups, nodes, gpus, layers)
        (256, 288, 8, 4, 32, 3),   # DeepSeek-V3 prefill, hierarchical
        (256, 320, 8, 8, 64, 3),   # 8 nodes x 8 GPUs, hierarchical
        (256, 288, 1, 4, 32, 3),   # global, 32 GPUs
        (256, 320, 1, 8, 64, 3),   # global, 64 GPUs
        (256, 256, 8, 4, 32, 2),   # no redundancy
        (64, 96, 4, 2, 16, 4),
        (8, 16, 1, 1, 8, 6),       # Mixtral-like, 2 slots per GPU
        (12, 24, 4, 2, 4, 4),
        (60, 72, 6, 3, 12, 4),
        (16, 40, 2, 1, 4, 4),      # many replicas per expert
    ]
    for experts, replicas, groups, nodes, gpus, layers in shapes:
        mode = "hier" if groups % nodes == 0 else "global"
        tag = f"E{experts}_R{replicas}_g{groups}_n{nodes}_gpu{gpus}_{mode}"
        loads = distinct_loads(rng, layers, experts, max(1, experts // groups))
        cases.append(case("tie_free_" + tag, "tie_free", loads, replicas, groups, nodes, gpus))
        ties = [[int(v) for v in rng.integers(1, 6, experts)] for _ in range(layers)]
        cases.append(case("ties_" + tag, "ties", ties, replicas, groups, nodes, gpus))
    document = {
        "generator": "tests/data/make_deepseek_goldens.py",
        "reference": "deepseek-ai/EPLB eplb.py, torch " + torch.__version__,
        "cases": cases,
    }
    with open("tests/data/deepseek_goldens.json", "w") as out:
        json.dump(document, out, separators=(",", ":"))
        out.write("\n")
    print(f"wrote {len(cases)} cases")


if __name__ == "__main__":
    main()
