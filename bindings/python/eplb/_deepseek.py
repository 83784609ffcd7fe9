"""A drop-in for DeepSeek's `eplb.rebalance_experts` (deepseek-ai/EPLB), as SGLang and vLLM call it."""

import numpy as np

from . import Planner, _as_f64, _invalid, _unsigned


def _is_torch(value):
    return type(value).__module__.split(".")[0] == "torch"


def rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus,
                      algorithm="deepseek", num_threads=1):
    """DeepSeek's signature and return values, planned by libeplb.

    weight: [layers, logical experts] loads (numpy array, nested lists, or a torch tensor on any
    device). num_replicas: physical experts per layer (a multiple of num_gpus). Returns
    `(phy2log, log2phy, logcnt)`: int64 [layers, num_replicas], int64 [layers, experts, X] padded
    with -1 where X is the most replicas of any expert, and int64 [layers, experts]. With a torch
    `weight` the three come back as torch tensors on weight's device, else as numpy arrays.

    algorithm="deepseek" (the default) reproduces DeepSeek's output bit for bit (hierarchical
    when num_groups % num_nodes == 0, else global); "balanced", "balanced-hierarchical" or
    "balanced-relaxed" plan less busy GPUs with the same return format.
    """
    as_torch = _is_torch(weight)
    if as_torch:
        import torch

        device = weight.device
        loads = weight.detach().to("cpu", torch.float64).numpy()
    else:
        loads = _as_f64(weight, "weight")
    if loads.ndim != 2:
        raise _invalid(f"weight must be 2-D [layers, experts], got shape {loads.shape}")
    layers, experts = loads.shape
    # Checked here so that an error names DeepSeek's argument, not the planner option.
    sizes = {name: _unsigned(value, name) for name, value in (
        ("num_replicas", num_replicas), ("num_groups", num_groups), ("num_nodes", num_nodes),
        ("num_gpus", num_gpus))}
    with Planner(num_layers=layers, num_logical_experts=experts,
                 num_physical_experts=sizes["num_replicas"], num_gpus=sizes["num_gpus"],
                 num_nodes=sizes["num_nodes"], num_groups=sizes["num_groups"],
                 algorithm=algorithm, num_threads=num_threads) as planner:
        placement = planner.plan(loads)
    with placement:
        phy2log = placement.phy2log.astype(np.int64)
        log2phy = placement.log2phy.astype(np.int64)
        logcnt = placement.replica_counts.astype(np.int64)
    if as_torch:
        return tuple(torch.from_numpy(a).to(device) for a in (phy2log, log2phy, logcnt))
    return phy2log, log2phy, logcnt
