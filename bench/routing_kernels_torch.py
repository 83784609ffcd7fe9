#!/usr/bin/env python3
"""Routing kernels (issue #7 items 1-3): libeplb against PyTorch on the same GPU, in one process.

For 256 experts, 288 slots, 32 ranks in 4 nodes, top-8, 8192 and 128 tokens, times each
operation in PyTorch (the natural tensor implementation) and libeplb's kernel (through ctypes,
on the same tensors and stream), both captured in a CUDA graph (100 launches, replayed) and
issued from the stream; prints both columns and the ratio torch / eplb. Operations: recorder +
mapping (static, round-robin, quota), the recorder, co-activation pair counts (uniform, Zipf).
Hash and node-aware mapping have no natural PyTorch form and are timed by the C++ benchmark
(eplb_bench_routing_kernels) only.

    python3 bench/routing_kernels_torch.py [--lib build/lib/libeplb.so] [--json]

Without torch or a GPU it prints "skipped: ..." and exits 0.
"""
import argparse
import ctypes
import json
import os
import sys

E, P, G, NODES, K = 256, 288, 32, 4, 8
LAUNCHES, REPS = 100, 11


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", default=os.environ.get("EPLB_LIB", "build/lib/libeplb.so"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("skipped: torch not installed")
        return 0
    if not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return 0
    lib = ctypes.CDLL(os.path.abspath(args.lib))
    vp, u32, u64, sz = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_size_t
    lib.eplb_last_error_message.restype = ctypes.c_char_p
    lib.eplb_placement_create_from_phy2log.argtypes = [u32, u32, u32, u32, u32, vp, sz, vp]
    lib.eplb_device_tables_create.argtypes = [vp, u32, u32, u32, vp, vp]
    lib.eplb_device_tables_get_static_map.argtypes = [vp, vp, sz]
    lib.eplb_kernel_map_record.argtypes = [vp, u32, u32, u64, vp, vp, u32, sz, u32, vp, vp, vp, vp]
    lib.eplb_kernel_record_load.argtypes = [vp, u32, sz, u32, u32, u32, u32, vp, vp, vp]
    lib.eplb_kernel_coactivation.argtypes = [vp, u32, sz, u32, u32, u32, u32, vp, vp, u32, u32,
                                             u32, vp, vp]

    def ok(status):
        if status != 0:
            raise RuntimeError(lib.eplb_last_error_message().decode())

    dev = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    # Placement: every expert once, the 32 extra slots replicate the 32 hottest, shuffled.
    phy2log = torch.cat([torch.arange(E), torch.arange(P - E)])[torch.randperm(P, generator=gen)]
    phy2log = phy2log.to(torch.int32).contiguous()
    placement = vp()
    ok(lib.eplb_placement_create_from_phy2log(1, E, P, NODES, G, phy2log.data_ptr(), P,
                                              ctypes.byref(placement)))
    stream = torch.cuda.Stream()
    tables = vp()
    ok(lib.eplb_device_tables_create(placement, 5, 0, 0, stream.cuda_stream, ctypes.byref(tables)))
    torch.cuda.synchronize()
    static_map = torch.empty(E, dtype=torch.int32)
    ok(lib.eplb_device_tables_get_static_map(tables, static_map.data_ptr(), E))
    static_map = static_map.to(dev).long()
    count = torch.bincount(phy2log.long(), minlength=E)
    width = int(count.max())
    log2phy = torch.full((E, width), -1, dtype=torch.long)
    fill = [0] * E
    for s, e in enumerate(phy2log.tolist()):
        log2phy[e, fill[e]] = s
        fill[e] += 1
    log2phy, count = log2phy.to(dev), count.to(dev)
    pair_a, pair_b = torch.triu_indices(K, K, 1)
    pair_a, pair_b = pair_a.to(dev), pair_b.to(dev)

    def routing(tokens, skew):
        w = torch.ones(E) if skew == 0 else 1.0 / torch.arange(1, E + 1).double() ** skew
        ids = torch.multinomial(w.expand(tokens, E), K, replacement=False, generator=gen)
        return ids.to(torch.int32).to(dev).contiguous()

    def time_fn(fn):
        with torch.cuda.stream(stream):
            fn()
            stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=stream):
                for _ in range(LAUNCHES):
                    fn()
            graph.replay()
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            g, s = [], []
            for _ in range(REPS):
                start.record(stream)
                graph.replay()
                stop.record(stream)
                stop.synchronize()
                g.append(start.elapsed_time(stop) * 1000 / LAUNCHES)
                start.record(stream)
                for _ in range(LAUNCHES):
                    fn()
                stop.record(stream)
                stop.synchronize()
                s.append(start.elapsed_time(stop) * 1000 / LAUNCHES)
        return sorted(g)[REPS // 2], sorted(s)[REPS // 2]

    rows = []
    for tokens in (8192, 128):
        for skew in (0.0, 1.2):
            ids = routing(tokens, skew)
            flat = ids.view(-1).long()
            counts_e = torch.bincount(flat, minlength=E)
            # Quotas: each expert's tokens split evenly over its replicas (remainder to the first).
            quotas = torch.zeros(P, dtype=torch.int32, device=dev)
            rank = torch.arange(width, device=dev).expand(E, width)
            share = torch.where(rank < count[:, None], counts_e[:, None] // count[:, None], 0)
            share[:, 0] += counts_e - share.sum(1)
            valid = log2phy >= 0
            quotas[log2phy[valid]] = share[valid].to(torch.int32)
            cumq = torch.where(valid, share, 0).cumsum(1)
            out = torch.empty_like(ids)
            phys_counts = torch.zeros(P, dtype=torch.int64, device=dev)
            log_counts = torch.zeros(E, dtype=torch.int64, device=dev)
            pairs = torch.zeros(E * (E - 1) // 2, dtype=torch.int64, device=dev)
            flag = torch.ones(1, dtype=torch.int32, device=dev)
            pos = torch.arange(flat.numel(), device=dev)

            def record(phys):
                phys_counts.add_(torch.bincount(phys, minlength=P))

            def t_static():
                phys = static_map[flat]
                out.view(-1).copy_(phys)
                record(phys)

            def t_rr():
                phys = log2phy[flat, pos % count[flat]]
                out.view(-1).copy_(phys)
                record(phys)

            def t_quota():
                order = torch.argsort(flat, stable=True)
                sorted_e = flat[order]
                first = torch.searchsorted(sorted_e, sorted_e)
                r = torch.empty_like(flat)
                r[order] = torch.arange(flat.numel(), device=dev) - first
                rep = (r[:, None] >= cumq[flat]).sum(1)
                phys = log2phy[flat, rep]
                out.view(-1).copy_(phys)
                record(phys)

            def t_load():
                log_counts.add_(torch.bincount(flat, minlength=E))

            def t_pairs():
                a, b = ids[:, pair_a].long(), ids[:, pair_b].long()
                lo, hi = torch.minimum(a, b), torch.maximum(a, b)
                idx = lo * (2 * E - lo - 1) // 2 + (hi - lo - 1)
                pairs.add_(torch.bincount(idx.view(-1), minlength=pairs.numel()))

            def e_map(mode):
                return lambda: ok(lib.eplb_kernel_map_record(
                    tables, 0, mode, 42, quotas.data_ptr(), ids.data_ptr(), 0, tokens, K,
                    flag.data_ptr(), phys_counts.data_ptr(), out.data_ptr(),
                    torch.cuda.current_stream().cuda_stream))

            def e_load():
                ok(lib.eplb_kernel_record_load(ids.data_ptr(), 0, tokens, K, E, 1, 0,
                                               flag.data_ptr(), log_counts.data_ptr(),
                                               torch.cuda.current_stream().cuda_stream))

            def e_pairs():
                ok(lib.eplb_kernel_coactivation(ids.data_ptr(), 0, tokens, K, E, 1, 0,
                                                flag.data_ptr(), pairs.data_ptr(), 0, 0, 0, None,
                                                torch.cuda.current_stream().cuda_stream))

            name = "zipf1.2" if skew else "uniform"
            for op, tfn, efn in (("map+record static", t_static, e_map(0)),
                                 ("map+record round-robin", t_rr, e_map(1)),
                                 ("map+record quota", t_quota, e_map(4)),
                                 ("record_load", t_load, e_load),
                                 ("coactivation", t_pairs, e_pairs)):
                tg, ts = time_fn(tfn)
                eg, es = time_fn(efn)
                rows.append(dict(op=op, tokens=tokens, routing=name, torch_graph_us=tg,
                                 eplb_graph_us=eg, torch_stream_us=ts, eplb_stream_us=es))
    if args.json:
        print(json.dumps(dict(device=torch.cuda.get_device_name(), rows=rows), indent=1))
        return 0
    print(f"routing kernels on {torch.cuda.get_device_name()} (torch {torch.__version__}): "
          f"E={E}, {P} slots, {G} ranks in {NODES} nodes, top-{K}; us per launch")
    print(f"{'operation':<24}{'tokens':>7} {'routing':<8}{'torch g':>9}{'eplb g':>9}{'ratio':>7}"
          f"{'torch s':>9}{'eplb s':>9}{'ratio':>7}")
    for r in rows:
        print(f"{r['op']:<24}{r['tokens']:>7} {r['routing']:<8}{r['torch_graph_us']:>9.2f}"
              f"{r['eplb_graph_us']:>9.2f}{r['torch_graph_us'] / r['eplb_graph_us']:>7.1f}"
              f"{r['torch_stream_us']:>9.2f}{r['eplb_stream_us']:>9.2f}"
              f"{r['torch_stream_us'] / r['eplb_stream_us']:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
