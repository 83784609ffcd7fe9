#!/usr/bin/env python3
"""PyTorch equivalents of the per-batch balancing kernels, timed on the same GPU as
bench/split_kernels_bench.cpp (issue #9), on the same shapes:

* replica split, 256 experts, 288 slots on 32 GPUs, counts of 8192 tokens x top-8: an LPLB-style
  dense solve in PyTorch -- the fractional min-max split by bisection on the level (40 halvings of
  a vectorised water-fill over the replicas), then integral quotas by flooring and handing the
  remainders to the first replica. It is approximate (fractional, then rounded), like LPLB's
  interior-point solve; libeplb's kernel is exact.
* shared-expert waterfill, 8192 and 128 tokens x top-8, 256 slots on 32 GPUs: the rule of
  eplb_kernel_shared_waterfill written with tensor ops (candidate masks, water level, three
  proposal rounds ranked by a cumulative sum per GPU, least-loaded fallback), one phase.

Each is timed issued from the stream (CUDA events) and replayed from a CUDA graph when it can be
captured. Prints "skipped: torch not installed" / "skipped: no CUDA device" and exits 0 when it
cannot run. Usage: python3 bench/split_kernels_torch.py [--iters N]
"""
import argparse
import sys

try:
    import torch
except ImportError:
    print("skipped: torch not installed")
    sys.exit(0)

EXPERTS, GPUS, TOPK = 256, 32, 8


def timed(fn, iters, graph=True):
    """Per-call microseconds from the stream, and from a CUDA graph of 100 calls (or None)."""
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        for _ in range(10):
            fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.cuda.stream(stream):
        start.record()
        for _ in range(iters):
            fn()
        stop.record()
    torch.cuda.synchronize()
    stream_us = 1000.0 * start.elapsed_time(stop) / iters
    graph_us = None
    if graph:
        try:
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for _ in range(100):
                    fn()
            g.replay()
            torch.cuda.synchronize()
            reps = max(1, iters // 100)
            start.record()
            for _ in range(reps):
                g.replay()
            stop.record()
            torch.cuda.synchronize()
            graph_us = 1000.0 * start.elapsed_time(stop) / (reps * 100)
        except Exception as error:  # pragma: no cover - depends on the torch build
            print(f"  (graph capture failed: {error})")
    return graph_us, stream_us


def split_problem(device, gen):
    popularity = 1.0 / torch.arange(1, EXPERTS + 1, dtype=torch.float64) ** 1.1
    popularity = popularity[torch.randperm(EXPERTS, generator=gen)]
    hot = torch.argsort(popularity, descending=True)[:16]
    phy2log = torch.cat([torch.arange(EXPERTS), hot.repeat(2)])
    phy2log = phy2log[torch.randperm(phy2log.numel(), generator=gen)]
    samples = torch.multinomial(popularity, 8192 * TOPK, replacement=True, generator=gen)
    counts = torch.bincount(samples, minlength=EXPERTS).to(torch.float64)
    slot_gpu = torch.arange(phy2log.numel()) // (phy2log.numel() // GPUS)
    return phy2log.to(device), slot_gpu.to(device), counts.to(device)


def torch_split(phy2log, slot_gpu, counts, replicas, iterations=40):
    """Fractional min-max split by bisection on the level, then floor + remainder."""
    c = counts[phy2log] / 1.0  # per slot: its expert's count
    single = replicas[phy2log] == 1
    fixed = torch.zeros(GPUS, dtype=torch.float64, device=counts.device)
    fixed.index_add_(0, slot_gpu, torch.where(single, c, torch.zeros_like(c)))
    lo = fixed.max().expand(1).clone()
    hi = (fixed.max() + counts.sum()).expand(1).clone()
    multi = ~single
    for _ in range(iterations):
        mid = (lo + hi) / 2
        room = torch.clamp(mid - fixed, min=0.0)[slot_gpu]
        # Each replica may take up to its GPU's room divided among the GPU's replicas.
        per_gpu = torch.zeros(GPUS, dtype=torch.float64, device=counts.device)
        per_gpu.index_add_(0, slot_gpu, multi.to(torch.float64))
        cap = torch.where(multi, room / per_gpu[slot_gpu].clamp(min=1.0), torch.zeros_like(room))
        got = torch.zeros(EXPERTS, dtype=torch.float64, device=counts.device)
        got.index_add_(0, phy2log, cap)
        ok = (got >= counts - 1e-9) | (replicas == 1)
        feasible = ok.all()
        hi = torch.where(feasible, mid, hi)
        lo = torch.where(feasible, lo, mid)
    room = torch.clamp(hi - fixed, min=0.0)[slot_gpu]
    share = torch.zeros(EXPERTS, dtype=torch.float64, device=counts.device)
    share.index_add_(0, phy2log, torch.where(multi, room, torch.zeros_like(room)))
    frac = torch.where(multi, c * room / share[phy2log].clamp(min=1e-12), c)
    quotas = torch.floor(frac).to(torch.int32)
    left = counts.to(torch.int32).clone()
    left.index_add_(0, phy2log, -quotas)
    first = torch.full((EXPERTS,), phy2log.numel(), dtype=torch.int64, device=counts.device)
    first.scatter_reduce_(0, phy2log, torch.arange(phy2log.numel(), device=counts.device),
                          reduce="amin")
    quotas.index_add_(0, first, left)
    return quotas


def waterfill_problem(device, gen, tokens):
    popularity = 1.0 / torch.arange(1, EXPERTS + 1, dtype=torch.float64)
    popularity = popularity[torch.randperm(EXPERTS, generator=gen)]
    topk = torch.multinomial(popularity.expand(tokens, EXPERTS), TOPK, replacement=False,
                             generator=gen).to(torch.int32)
    source = (torch.arange(tokens) * GPUS // tokens).to(torch.int64)
    return topk.to(device), source.to(device)


def torch_waterfill(topk, source, rounds=3):
    """The kernel's rule (one phase) with tensor ops; returns the extra top-k column."""
    n = topk.shape[0]
    device = topk.device
    gpu = (topk.long() // (EXPERTS // GPUS))
    cand = torch.zeros(n, GPUS, dtype=torch.bool, device=device)
    cand.scatter_(1, gpu, True)
    cand[torch.arange(n, device=device), source] = True
    load = torch.bincount(gpu.flatten(), minlength=GPUS).to(torch.float64)
    sorted_load, _ = torch.sort(load)
    prefix = torch.cumsum(sorted_load, 0)
    count = torch.arange(1, GPUS + 1, device=device, dtype=torch.float64)
    levels = (n + prefix) / count
    nxt = torch.cat([sorted_load[1:], torch.full((1,), float("inf"), device=device,
                                                 dtype=torch.float64)])
    j = torch.argmax((levels <= nxt).to(torch.int8))  # first GPU where the level stops
    rem = torch.clamp(torch.ceil(levels[j] - load), min=0).to(torch.int64)
    choice = torch.full((n,), -1, dtype=torch.int64, device=device)
    h = ((torch.arange(n, device=device, dtype=torch.int64) + 1) * 2654435769) % (1 << 32)
    taken = torch.zeros(GPUS, dtype=torch.int64, device=device)
    for _ in range(rounds):
        open_ = cand & (rem > 0)[None, :] & (choice < 0)[:, None]
        weights = torch.where(open_, rem[None, :], torch.zeros_like(rem)[None, :])
        running = torch.cumsum(weights, 1)
        total = running[:, -1]
        pos = (h * total) >> 32
        pick = torch.argmax((running > pos[:, None]).to(torch.int8), 1)
        proposing = total > 0
        onehot = torch.nn.functional.one_hot(pick, GPUS) * proposing[:, None].to(torch.int64)
        rank = torch.cumsum(onehot, 0) - onehot
        accepted = proposing & (rank[torch.arange(n, device=device), pick] < rem[pick])
        choice = torch.where(accepted, pick, choice)
        got = torch.zeros(GPUS, dtype=torch.int64, device=device)
        got.scatter_add_(0, pick, accepted.to(torch.int64))
        rem -= got
        taken += got
    after = (load + taken)[None, :].expand(n, GPUS)
    fallback = torch.argmin(torch.where(cand, after, torch.full_like(after, float("inf"))), 1)
    choice = torch.where(choice < 0, fallback, choice)
    return EXPERTS + choice


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=300)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return 0
    device = torch.device("cuda")
    gen = torch.Generator().manual_seed(42)
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    print(f"| {'torch equivalent':<22} | {'shape':<40} | {'graph us':>8} | {'stream us':>9} |")
    print(f"|{'-' * 24}|{'-' * 42}|{'-' * 10}|{'-' * 11}|")

    phy2log, slot_gpu, counts = split_problem(device, gen)
    replicas = torch.bincount(phy2log, minlength=EXPERTS)
    graph_us, stream_us = timed(lambda: torch_split(phy2log, slot_gpu, counts, replicas), args.iters)
    shape = "256 experts, 288 slots, 32 GPUs, 8192x8"
    graph = f"{graph_us:8.1f}" if graph_us is not None else "     n/a"
    print(f"| {'split (LPLB-style)':<22} | {shape:<40} | {graph} | {stream_us:9.1f} |")

    for tokens in (8192, 128):
        topk, source = waterfill_problem(device, gen, tokens)
        graph_us, stream_us = timed(lambda: torch_waterfill(topk, source), args.iters)
        shape = f"{tokens} tokens x top-8, 256 slots, 32 GPUs"
        graph = f"{graph_us:8.1f}" if graph_us is not None else "     n/a"
        print(f"| {'shared waterfill':<22} | {shape:<40} | {graph} | {stream_us:9.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
