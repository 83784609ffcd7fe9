#!/usr/bin/env python3
"""PyTorch column of the dispatch-kernel benchmark (issue #7 items 4-5).

Runs the same operations as bench/dispatch_kernels_bench.cpp — dispatch layout, expert sort with
padding and inverse map, permute and unpermute (bf16, hidden 7168) — once with libeplb (loaded
with ctypes into this process, on PyTorch's stream and memory) and once as plain PyTorch, checks
that the integer results agree, and prints both times and their ratio side by side. Times are
per call, median of repeats, in a CUDA graph ("graph") and issued from the stream ("stream").

  python3 bench/dispatch_kernels_torch.py [--lib build/lib/libeplb.so] [--json]

Without PyTorch, CUDA or libeplb it prints "skipped: ..." and exits 0.
"""
import argparse
import ctypes
import glob
import json
import os
import statistics
import sys

EXPERTS, RANKS, NODES, TOP_K, BLOCK, HIDDEN = 288, 32, 4, 8, 64, 7168
BF16 = 2  # EPLB_ROW_DTYPE_BFLOAT16


def find_library(explicit):
    if explicit:
        return explicit
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = sorted(glob.glob(os.path.join(root, "build*", "lib", "libeplb.so")), key=os.path.getmtime)
    return found[-1] if found else None


def load_eplb(path):
    lib = ctypes.CDLL(path)
    sz, u32, p = ctypes.c_size_t, ctypes.c_uint32, ctypes.c_void_p
    sigs = {
        "eplb_kernel_dispatch_layout_workspace_size": [sz, sz, u32, u32, u32, p],
        "eplb_kernel_dispatch_layout": [p, sz, sz, u32, u32, u32, p, p, p, p, p, p, sz, p],
        "eplb_kernel_expert_sort_capacity": [sz, sz, u32, u32, p],
        "eplb_kernel_expert_sort_workspace_size": [sz, sz, u32, p],
        "eplb_kernel_expert_sort": [p, sz, sz, u32, u32, sz, p, p, p, p, p, p, sz, p],
        "eplb_kernel_permute": [p, u32, sz, sz, sz, p, sz, p, p],
        "eplb_kernel_unpermute": [p, u32, sz, sz, sz, p, p, sz, p, p],
        "eplb_device_count": [p],
    }
    for name, args in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = ctypes.c_int
    lib.eplb_last_error_message.restype = ctypes.c_char_p
    return lib


def check(lib, status, what):
    if status != 0:
        raise RuntimeError(f"{what}: status {status}: {lib.eplb_last_error_message().decode()}")


def time_call(torch, fn, calls, repeats):
    """Median per-call microseconds: in a CUDA graph of `calls` calls, and from the stream."""
    stream = torch.cuda.Stream()
    out = {}
    with torch.cuda.stream(stream):
        fn()
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        eager = []
        for _ in range(repeats):
            start.record()
            for _ in range(calls):
                fn()
            stop.record()
            stop.synchronize()
            eager.append(1000.0 * start.elapsed_time(stop) / calls)
        out["stream"] = statistics.median(eager)
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(calls):
                fn()
        graph.replay()
        torch.cuda.synchronize()
        replays = []
        for _ in range(repeats):
            start.record()
            graph.replay()
            stop.record()
            stop.synchronize()
            replays.append(1000.0 * start.elapsed_time(stop) / calls)
        out["graph"] = statistics.median(replays)
    except Exception as error:  # an op that cannot be captured (host sync)
        out["graph"] = None
        out["graph_error"] = str(error).splitlines()[0][:80]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", help="path to libeplb.so (default: newest build*/lib/libeplb.so)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("skipped: torch not installed")
        return 0
    if not torch.cuda.is_available():
        print("skipped: no CUDA device visible to torch")
        return 0
    path = find_library(args.lib)
    if not path or not os.path.exists(path):
        print("skipped: libeplb.so not found (build it, or pass --lib)")
        return 0
    lib = load_eplb(path)
    count = ctypes.c_int32(0)
    if lib.eplb_device_count(ctypes.byref(count)) != 0:
        print(f"skipped: libeplb sees no CUDA device ({lib.eplb_last_error_message().decode()})")
        return 0

    dev = torch.device("cuda")
    ptr = lambda t: ctypes.c_void_p(t.data_ptr())
    rows = []
    for tokens in (8192, 128):
        gen = torch.Generator(device="cpu").manual_seed(42)
        ids = torch.rand(tokens, EXPERTS, generator=gen).argsort(dim=1)[:, :TOP_K].to(torch.int32)
        ids[torch.rand(tokens, TOP_K, generator=gen) < 0.01] = -1
        ids = ids.to(dev)
        weights = torch.rand(tokens, TOP_K, generator=gen).to(dev)
        x = torch.randn(tokens, HIDDEN, generator=gen).to(torch.bfloat16).to(dev)
        calls = 50 if tokens > 1000 else 200
        row_calls = 10 if tokens > 1000 else 100
        stream = lambda: ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)

        # --- layout
        ws_bytes = ctypes.c_size_t(0)
        check(lib, lib.eplb_kernel_dispatch_layout_workspace_size(tokens, TOP_K, EXPERTS, RANKS, NODES, ctypes.byref(ws_bytes)), "workspace")
        tpe = torch.empty(EXPERTS, dtype=torch.int32, device=dev)
        tpr = torch.empty(RANKS, dtype=torch.int32, device=dev)
        tpn = torch.empty(NODES, dtype=torch.int32, device=dev)
        in_rank = torch.empty(tokens, RANKS, dtype=torch.uint8, device=dev)
        offs = torch.empty(tokens, RANKS, dtype=torch.int32, device=dev)
        ws = torch.empty(max(ws_bytes.value, 1), dtype=torch.uint8, device=dev)

        def eplb_layout():
            check(lib, lib.eplb_kernel_dispatch_layout(ptr(ids), tokens, TOP_K, EXPERTS, RANKS, NODES, ptr(tpe), ptr(tpr), ptr(tpn), ptr(in_rank), ptr(offs), ptr(ws), ws_bytes.value, stream()), "layout")

        epr, rpn = EXPERTS // RANKS, RANKS // NODES

        def torch_layout():
            valid = (ids >= 0) & (ids < EXPERTS)
            e = torch.where(valid, ids, EXPERTS).long()
            per_expert = torch.zeros(EXPERTS + 1, dtype=torch.int32, device=dev).scatter_add_(0, e.flatten(), torch.ones_like(e.flatten(), dtype=torch.int32))[:EXPERTS]
            r = torch.where(valid, e // epr, RANKS)
            member = torch.zeros(tokens, RANKS + 1, dtype=torch.bool, device=dev).scatter_(1, r, True)[:, :RANKS]
            per_rank = member.sum(0, dtype=torch.int32)
            per_node = member.view(tokens, NODES, rpn).any(2).sum(0, dtype=torch.int32)
            m = member.to(torch.int32)
            start = torch.cumsum(per_rank, 0, dtype=torch.int32) - per_rank
            offsets = torch.where(member, torch.cumsum(m, 0, dtype=torch.int32) - m + start, -1)
            return per_expert, per_rank, per_node, member, offsets

        eplb_layout()
        ref = torch_layout()
        torch.cuda.synchronize()
        agree = all(torch.equal(a.to(torch.int32), b.to(torch.int32)) for a, b in zip((tpe, tpr, tpn, in_rank, offs), ref))
        rows.append(("layout (+offsets)", tokens, time_call(torch, eplb_layout, calls, args.repeats), time_call(torch, torch_layout, calls, args.repeats), agree))

        # --- sort + padding + inverse map
        cap = ctypes.c_size_t(0)
        sbytes = ctypes.c_size_t(0)
        check(lib, lib.eplb_kernel_expert_sort_capacity(tokens, TOP_K, EXPERTS, BLOCK, ctypes.byref(cap)), "capacity")
        check(lib, lib.eplb_kernel_expert_sort_workspace_size(tokens, TOP_K, EXPERTS, ctypes.byref(sbytes)), "sort workspace")
        capacity = cap.value
        sorted_ids = torch.empty(capacity, dtype=torch.int32, device=dev)
        blocks = torch.empty(capacity // BLOCK, dtype=torch.int32, device=dev)
        eoffs = torch.empty(EXPERTS + 1, dtype=torch.int32, device=dev)
        inverse = torch.empty(tokens, TOP_K, dtype=torch.int32, device=dev)
        total = torch.empty(1, dtype=torch.int32, device=dev)
        sws = torch.empty(max(sbytes.value, 1), dtype=torch.uint8, device=dev)

        def eplb_sort():
            check(lib, lib.eplb_kernel_expert_sort(ptr(ids), tokens, TOP_K, EXPERTS, BLOCK, capacity, ptr(sorted_ids), ptr(blocks), ptr(eoffs), ptr(inverse), ptr(total), ptr(sws), sbytes.value, stream()), "sort")

        pairs = tokens * TOP_K

        def torch_sort():
            flat = ids.flatten()
            key = torch.where((flat >= 0) & (flat < EXPERTS), flat, EXPERTS).long()
            keys, order = torch.sort(key, stable=True)
            counts = torch.zeros(EXPERTS + 1, dtype=torch.int64, device=dev).scatter_add_(0, key, torch.ones_like(key))
            padded = (counts[:EXPERTS] + BLOCK - 1) // BLOCK * BLOCK
            offsets = torch.zeros(EXPERTS + 1, dtype=torch.int64, device=dev)
            offsets[1:] = torch.cumsum(padded, 0)
            first = torch.cumsum(counts, 0) - counts  # unpadded start of each key in `keys`
            k = keys.clamp(max=EXPERTS - 1)
            pos = offsets[k] + torch.arange(pairs, device=dev) - first[keys]
            pos = torch.where(keys < EXPERTS, pos, capacity)  # dropped pairs go to a dummy slot
            out = torch.full((capacity + 1,), pairs, dtype=torch.int32, device=dev)
            out[pos] = order.to(torch.int32)
            inv = torch.full((pairs,), -1, dtype=torch.int32, device=dev)
            inv[order] = torch.where(keys < EXPERTS, pos, -1).to(torch.int32)
            starts = torch.arange(capacity // BLOCK, device=dev) * BLOCK
            block_e = torch.searchsorted(offsets[1:], starts, right=True)
            block_e = torch.where(starts < offsets[-1], block_e, -1).to(torch.int32)
            return out[:capacity], block_e, offsets.to(torch.int32), inv.view(tokens, TOP_K)

        eplb_sort()
        ref = torch_sort()
        torch.cuda.synchronize()
        agree = all(torch.equal(a, b) for a, b in zip((sorted_ids, blocks, eoffs, inverse), ref))
        rows.append(("sort+pad+inverse", tokens, time_call(torch, eplb_sort, calls, args.repeats), time_call(torch, torch_sort, calls, args.repeats), agree))

        # --- permute / unpermute, bf16 rows
        permuted = torch.zeros(capacity, HIDDEN, dtype=torch.bfloat16, device=dev)
        out = torch.empty(tokens, HIDDEN, dtype=torch.bfloat16, device=dev)

        def eplb_permute():
            check(lib, lib.eplb_kernel_permute(ptr(x), BF16, tokens, TOP_K, HIDDEN, ptr(inverse), capacity, ptr(permuted), stream()), "permute")

        valid = inverse >= 0
        dest = torch.where(valid, inverse, capacity).long().flatten()
        src = torch.arange(tokens, device=dev).repeat_interleave(TOP_K)
        scratch = torch.zeros(capacity + 1, HIDDEN, dtype=torch.bfloat16, device=dev)

        def torch_permute():
            scratch.index_copy_(0, dest, x.index_select(0, src))
            return scratch[:capacity]

        eplb_permute()
        got = torch_permute()
        torch.cuda.synchronize()
        real = sorted_ids < pairs
        agree = torch.equal(permuted[real], got[real])
        rows.append(("permute bf16", tokens, time_call(torch, eplb_permute, row_calls, args.repeats), time_call(torch, torch_permute, row_calls, args.repeats), agree))

        def eplb_unpermute():
            check(lib, lib.eplb_kernel_unpermute(ptr(permuted), BF16, tokens, TOP_K, HIDDEN, ptr(inverse), ptr(weights), capacity, ptr(out), stream()), "unpermute")

        gather = inverse.clamp(min=0).long()
        wv = torch.where(valid, weights, 0.0).unsqueeze(-1)

        def torch_unpermute():
            return (permuted[gather].float() * wv).sum(1).to(torch.bfloat16)

        eplb_unpermute()
        got = torch_unpermute()
        torch.cuda.synchronize()
        agree = bool(torch.allclose(out.float(), got.float(), rtol=2e-2, atol=2e-2))
        rows.append(("unpermute bf16", tokens, time_call(torch, eplb_unpermute, row_calls, args.repeats), time_call(torch, torch_unpermute, row_calls, args.repeats), agree))

    name = torch.cuda.get_device_name()
    if args.json:
        print(json.dumps({"device": name, "rows": [{"op": op, "tokens": t, "eplb": e, "torch": p, "agree": a} for op, t, e, p, a in rows]}, indent=1))
        return 0
    print(f"device: {name}; torch {torch.__version__}; {EXPERTS} physical experts, {RANKS} ranks in {NODES} nodes, top-{TOP_K}, block {BLOCK}, hidden {HIDDEN}\n")
    print("| op | tokens | eplb graph us | torch graph us | eplb stream us | torch stream us | speed-up (graph) | results agree |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"
    for op, t, e, p, a in rows:
        ratio = (p["graph"] or p["stream"]) / (e["graph"] or e["stream"])
        print(f"| {op} | {t} | {fmt(e['graph'])} | {fmt(p['graph'])} | {fmt(e['stream'])} | {fmt(p['stream'])} | {ratio:.1f}x | {a} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
