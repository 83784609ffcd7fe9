"""Shared constants, assertions and an independent metrics model for the CLI tests."""

import collections
import heapq
import math

Result = collections.namedtuple("Result", ["returncode", "stdout", "stderr"])

# deepseek-ai/EPLB README, "Interface and Example" (also /work/shared/data/real/
# deepseek-eplb-readme-example): 2 layers x 12 experts, 16 replicas, 4 groups, 2 nodes, 8 GPUs.
README_WEIGHTS = [
    [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
    [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
]
README_ARGS = ["--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "8"]
# The README's output is DeepSeek's algorithm (not necessarily the library's default).
README_DEEPSEEK = README_ARGS + ["--algorithm", "deepseek"]
README_PHY2LOG = [
    [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
    [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1],
]
# The same weights with --groups 3 (3 % 2 nodes != 0): DeepSeek's global policy.
README_GLOBAL_PHY2LOG = [
    [10, 6, 10, 7, 0, 2, 11, 4, 5, 9, 5, 4, 8, 3, 1, 1],
    [1, 10, 2, 4, 5, 11, 5, 0, 6, 7, 6, 3, 8, 8, 9, 7],
]

CRASH_MARKERS = (
    "terminate",
    "Aborted",
    "Segmentation",
    "AddressSanitizer",
    "LeakSanitizer",
    "UndefinedBehaviorSanitizer",
    "runtime error",
    "core dumped",
    "Traceback",
)

ERROR_PREFIX = "eplb: error: "


def assert_no_crash(result, args=()):
    """No signal, no uncaught exception, no sanitizer report, whatever the exit status."""
    assert result.returncode >= 0, f"eplb {list(args)} killed by signal {-result.returncode}"
    assert result.returncode in (0, 1, 2), (
        f"eplb {list(args)} exited {result.returncode}\nstderr: {result.stderr}")
    # Arguments echoed in a message (a path such as .../test_unterminated0/x.json) are not
    # crash reports.
    stderr = result.stderr
    for arg in sorted((str(a) for a in args), key=len, reverse=True):
        if len(arg) > 2:
            stderr = stderr.replace(arg, "<arg>")
    for marker in CRASH_MARKERS:
        assert marker not in stderr, f"eplb {list(args)}: {marker!r} in stderr:\n" + result.stderr


def error_line(result, code):
    """Asserts the error contract and returns the message after the prefix.

    Exit status `code`, nothing on stdout, exactly one line on stderr starting with the prefix.
    """
    assert result.returncode == code, (
        f"exit status {result.returncode}, expected {code}\nstdout: {result.stdout}\n"
        f"stderr: {result.stderr}")
    assert result.stdout == "", f"stdout on error: {result.stdout!r}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {result.stderr!r}"
    assert result.stderr.endswith("\n")
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    message = lines[0][len(ERROR_PREFIX):]
    assert message.strip(), "empty error message"
    return message


def assert_error(result, code, *fragments):
    """error_line, plus every fragment appears in the message. Returns the message."""
    message = error_line(result, code)
    for fragment in fragments:
        assert str(fragment) in message, f"{str(fragment)!r} not in error message {message!r}"
    return message


def is_sanitized(path):
    """Whether the binary at `path` is built with a sanitizer (which needs far more address space
    than an RLIMIT_AS test allows)."""
    with open(path, "rb") as binary:
        data = binary.read()
    return any(marker in data for marker in (b"__asan_init", b"__tsan_init", b"__msan_init"))


def usage_error(result, *fragments):
    return assert_error(result, 2, *fragments)


def failure(result, *fragments):
    return assert_error(result, 1, *fragments)


def algorithm_args(name, budget=2):
    """`eplb plan` options selecting algorithm `name`: balanced-relaxed also needs its budget of
    replicas off their group's node (--cross-node-budget), which the others refuse."""
    extra = ["--cross-node-budget", str(budget)] if name == "balanced-relaxed" else []
    return ["--algorithm", name, *extra]


def trivial_row(num_physical, num_logical):
    return [slot % num_logical for slot in range(num_physical)]


# --- An independent model of the metrics (eplb.h, "Section: metrics") --------------------------


def replica_counts(row, num_logical):
    counts = [0] * num_logical
    for expert in row:
        counts[expert] += 1
    return counts


def gpu_loads(row, loads, num_gpus):
    """GPU load = sum over its slots of load / replica count; slot p on GPU p // (R / gpus)."""
    counts = replica_counts(row, len(loads))
    per_gpu = len(row) // num_gpus
    result = [0.0] * num_gpus
    for slot, expert in enumerate(row):
        result[slot // per_gpu] += loads[expert] / counts[expert]
    return result


def min_max_load_per_replica(loads, num_physical, num_gpus):
    """Smallest achievable max(load / replicas) with every expert on 1..num_gpus replicas:
    start from one replica each and give each extra slot to the expert with the largest
    load per replica (greedy water-filling is optimal for this)."""
    counts = [1] * len(loads)
    heap = [(-load, expert) for expert, load in enumerate(loads)]
    heapq.heapify(heap)
    extra = num_physical - len(loads)
    while extra > 0 and heap:
        _, expert = heapq.heappop(heap)
        if counts[expert] >= num_gpus:
            continue  # spread over every GPU already: it can take no more replicas
        counts[expert] += 1
        extra -= 1
        heapq.heappush(heap, (-loads[expert] / counts[expert], expert))
    return max(load / count for load, count in zip(loads, counts))


def layer_metrics(row, loads, num_gpus, num_nodes):
    per_gpu = gpu_loads(row, loads, num_gpus)
    total = float(sum(loads))
    mean = total / num_gpus
    peak = max(per_gpu)
    gpus_per_node = num_gpus // num_nodes
    nodes = [sum(per_gpu[n * gpus_per_node:(n + 1) * gpus_per_node]) for n in range(num_nodes)]
    bound = max(mean, min_max_load_per_replica(loads, len(row), num_gpus))
    slots_per_gpu = len(row) // num_gpus
    duplicate_gpus = 0
    for gpu in range(num_gpus):
        experts = row[gpu * slots_per_gpu:(gpu + 1) * slots_per_gpu]
        duplicate_gpus += len(set(experts)) != len(experts)
    return {
        "total_load": total,
        "mean_gpu_load": mean,
        "max_gpu_load": peak,
        "balancedness": mean / peak if peak > 0 else 1.0,
        "node_balancedness": (sum(nodes) / num_nodes) / max(nodes) if max(nodes) > 0 else 1.0,
        "lower_bound": bound,
        "max_load_over_bound": peak / bound if bound > 0 else 1.0,
        "duplicate_gpus": duplicate_gpus,
        "max_replicas": max(replica_counts(row, len(loads))),
        "max_over_mean": peak / mean if mean > 0 else 1.0,
    }


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def stderr_on_a_terminal(args, env):
    """Runs `args` with stderr on a pseudo-terminal (stdout discarded); returns the exit status
    and every byte written to the terminal."""
    import os
    import pty
    import subprocess

    leader, follower = pty.openpty()
    process = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    status = process.wait(timeout=120)
    os.close(leader)
    return status, seen
