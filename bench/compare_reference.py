#!/usr/bin/python3
"""Planning time of DeepSeek's reference EPLB against libeplb, side by side, on the same loads.

The reference is DeepSeek's `eplb.py` (deepseek-ai/EPLB, function `rebalance_experts`); it is not
part of this repository: pass the directory holding it with --reference. libeplb is timed through
the `eplb` CLI (`eplb plan --algorithm deepseek --report`), reading `plan_seconds` from its JSON
report, so only planning time is compared (not process start-up or JSON parsing). Both plan the
DeepSeek-V3 shape, 58 MoE layers x 256 experts in 8 groups, for four topologies:

  hier_4x8_R288   hierarchical, 4 nodes x 8 GPUs, 288 slots per layer
  global_32_R288  global, 32 GPUs (4 nodes, groups = 1), 288 slots
  hier_8x8_R320   hierarchical, 8 nodes x 8 GPUs, 320 slots
  global_64_R320  global, 64 GPUs (8 nodes, groups = 1), 320 slots

With groups = 1 and several nodes, num_groups % num_nodes != 0 and both fall back to the global
policy. The loads are SGLang's real recording prefill_in1024.json (rows 3..60, the MoE layers)
when the shared data directory is there ($EPLB_SHARED, default <source>/../shared), otherwise
lognormal integer loads drawn here with a fixed seed. The script prints one table: medians over
--runs calls, the speed-up ratio, and whether both produced the same phy2log. Where they do not,
it counts the layers that differ and checks whether the difference is only the order of equal
weights ("ties only": the same replica counts, and every GPU holding the same multiset of
per-replica loads, so every GPU load is the same). The reference sorts with torch's unstable
sort, whose order among equal weights is not the index order once a row has more than 16
entries.

Run with Debian's Python (it has numpy and torch):
  /usr/bin/python3 bench/compare_reference.py --reference DIR --eplb build/bin/eplb
If torch or the reference is missing it says so and exits 0.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NUM_LAYERS = 58
NUM_EXPERTS = 256
NUM_GROUPS = 8
FIRST_MOE_ROW = 3  # DeepSeek-V3's layers 0..2 are dense: all-zero rows in SGLang's recordings
REAL_FILE = Path("data/real/sglang-deepseek-v3-ep-stats/prefill_in1024.json")
SEED = 20250101

# (name, slots per layer, GPUs, nodes, groups)
CONFIGS = [
    ("hier_4x8_R288", 288, 32, 4, NUM_GROUPS),
    ("global_32_R288", 288, 32, 4, 1),
    ("hier_8x8_R320", 320, 64, 8, NUM_GROUPS),
    ("global_64_R320", 320, 64, 8, 1),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, type=Path,
                        help="directory holding DeepSeek's eplb.py")
    parser.add_argument("--eplb", required=True, type=Path, help="the built `eplb` CLI binary")
    parser.add_argument("--runs", type=int, default=5,
                        help="reference calls per configuration (median; default 5; one call "
                             "of each of the four takes about 5-7 s on a slow machine)")
    parser.add_argument("--eplb-runs", type=int, default=9,
                        help="libeplb plans per configuration (median; default 9)")
    parser.add_argument("--loads", choices=["auto", "real", "random"], default="auto",
                        help="real: SGLang's recording; random: lognormal loads (seed %d); "
                             "auto: real if present (default)" % SEED)
    return parser.parse_args()


def shared_dir():
    env = os.environ.get("EPLB_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared"


def real_loads(np):
    path = shared_dir() / REAL_FILE
    if not path.is_file():
        return None, str(path)
    with open(path) as f:
        counts = np.asarray(json.load(f)["logical_count"], dtype=np.float64)
    if counts.ndim == 3:  # [steps][layers][experts]: summed over steps, as SGLang does
        counts = counts.sum(axis=0)
    if counts.shape[1] != NUM_EXPERTS or counts.shape[0] < FIRST_MOE_ROW + NUM_LAYERS:
        sys.exit(f"{path}: expected >= {FIRST_MOE_ROW + NUM_LAYERS} rows of {NUM_EXPERTS} "
                 f"experts, got {counts.shape}")
    return counts[FIRST_MOE_ROW:FIRST_MOE_ROW + NUM_LAYERS], str(path)


def random_loads(np):
    # Expert popularity lognormal (sigma 0.65, like the recordings' median skew), scaled to
    # whole token counts.
    rng = np.random.default_rng(SEED)
    popularity = rng.lognormal(mean=0.0, sigma=0.65, size=(NUM_LAYERS, NUM_EXPERTS))
    return np.rint(popularity * 1e6)


def choose_loads(np, mode):
    if mode in ("auto", "real"):
        loads, path = real_loads(np)
        if loads is not None:
            return loads, f"real: {path} rows {FIRST_MOE_ROW}..{FIRST_MOE_ROW + NUM_LAYERS - 1}"
        if mode == "real":
            sys.exit(f"{path} not found (set EPLB_SHARED to the shared directory)")
        print(f"note: {path} not found; using random lognormal loads", file=sys.stderr)
    return random_loads(np), f"random lognormal integers, seed {SEED}"


def load_reference(directory):
    path = directory / "eplb.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("deepseek_eplb_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_reference(reference, weight, config, runs):
    _, replicas, gpus, nodes, groups = config
    seconds = []
    phy2log = None
    for _ in range(runs):
        start = time.perf_counter()
        result = reference.rebalance_experts(weight, replicas, groups, nodes, gpus)
        seconds.append(time.perf_counter() - start)
        phy2log = result[0]
    return statistics.median(seconds), phy2log.tolist()


def time_libeplb(eplb, counts_path, out_path, config, runs):
    _, replicas, gpus, nodes, groups = config
    command = [str(eplb), "plan", "--counts", str(counts_path), "--replicas", str(replicas),
               "--gpus", str(gpus), "--nodes", str(nodes), "--groups", str(groups),
               "--algorithm", "deepseek", "--report", "--out", str(out_path)]
    seconds = []
    for _ in range(runs):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
        seconds.append(json.loads(done.stdout)["plan_seconds"])
    with open(out_path) as f:
        phy2log = json.load(f)["physical_to_logical_map"]
    return statistics.median(seconds), phy2log


def compare_maps(np, loads, replicas, gpus, ref_map, lib_map):
    """(layers whose phy2log differs, whether every difference is only the order of ties)."""
    ref, lib = np.asarray(ref_map), np.asarray(lib_map)
    differing = [layer for layer in range(ref.shape[0]) if not (ref[layer] == lib[layer]).all()]
    slots_per_gpu = replicas // gpus
    ties_only = True
    for layer in differing:
        ref_count = np.bincount(ref[layer], minlength=loads.shape[1])
        lib_count = np.bincount(lib[layer], minlength=loads.shape[1])
        if not (ref_count == lib_count).all():
            ties_only = False
            break
        # Both planners work on float32 loads; per-replica weight = load / replica count.
        weight = loads[layer].astype(np.float32) / ref_count.astype(np.float32)
        ref_gpu = np.sort(weight[ref[layer]].reshape(gpus, slots_per_gpu), axis=1)
        lib_gpu = np.sort(weight[lib[layer]].reshape(gpus, slots_per_gpu), axis=1)
        if not (ref_gpu == lib_gpu).all():
            ties_only = False
            break
    return differing, ties_only


def print_table(headers, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells):
        # The config left-aligned, everything else right-aligned.
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def main():
    args = parse_args()
    if args.runs < 1 or args.eplb_runs < 1:
        sys.exit("--runs and --eplb-runs must be >= 1")
    try:
        import numpy as np
        import torch
    except ImportError as error:
        print(f"compare_reference: skipped, {error.name} is not available "
              f"(run with /usr/bin/python3, which has numpy and torch)")
        return 0
    try:
        reference = load_reference(args.reference)
    except Exception as error:  # a broken or incompatible copy: report it and skip
        print(f"compare_reference: skipped, cannot import {args.reference / 'eplb.py'}: {error}")
        return 0
    if reference is None or not hasattr(reference, "rebalance_experts"):
        print(f"compare_reference: skipped, no DeepSeek reference eplb.py with rebalance_experts "
              f"in {args.reference}")
        return 0
    if not (args.eplb.is_file() and os.access(args.eplb, os.X_OK)):
        sys.exit(f"--eplb {args.eplb}: not an executable file (build the eplb_cli target)")

    loads, source = choose_loads(np, args.loads)
    weight = torch.from_numpy(loads)
    print(f"loads: {source} ({NUM_LAYERS} layers x {NUM_EXPERTS} experts, {NUM_GROUPS} groups)")
    print(f"reference: {args.reference / 'eplb.py'}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, median of {args.runs} calls")
    print(f"libeplb: {args.eplb} plan --algorithm deepseek, plan_seconds, "
          f"median of {args.eplb_runs} plans")
    print()

    rows = []
    with tempfile.TemporaryDirectory(prefix="eplb-compare-") as tmp:
        counts_path = Path(tmp) / "counts.json"
        with open(counts_path, "w") as f:
            json.dump({"logical_count": loads.tolist()}, f)
        for config in CONFIGS:
            ref_s, ref_map = time_reference(reference, weight, config, args.runs)
            lib_s, lib_map = time_libeplb(args.eplb, counts_path, Path(tmp) / "placement.json",
                                          config, args.eplb_runs)
            differing, ties_only = compare_maps(np, loads, config[1], config[2], ref_map, lib_map)
            rows.append([config[0], f"{ref_s * 1e3:.1f}", f"{lib_s * 1e3:.3f}",
                         f"{ref_s / lib_s:.0f}x" if lib_s > 0 else "inf",
                         "no" if differing else "yes",
                         f"{len(differing)}/{NUM_LAYERS}",
                         ("yes" if ties_only else "NO") if differing else "-"])
    print_table(["config", "reference median ms", "libeplb median ms", "speed-up", "identical",
                 "layers differing", "ties only"], rows)
    # Exit status 1 only for a difference that equal weights do not explain.
    return 0 if all(row[-1] != "NO" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
