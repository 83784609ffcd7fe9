"""Snapshots from the command line: `eplb plan --out x.eplb [--label TEXT]` and `eplb inspect`.

What `inspect` prints is checked against an independent model of the metrics (cli_support) and
against the same plan's SGLang map; the arrays inside a snapshot are read back through
libeplb.so with ctypes where the test needs them. Errors follow the CLI's contract: exit 2 and
one line for bad input (a damaged, truncated or foreign file is bad input), 1 for failures such
as a full disk, and a failed write never leaves a partial file or a temporary one behind.
"""

import ctypes
import datetime
import json
import os
import resource
import signal
import time
from pathlib import Path

import pytest

from cli_support import (
    README_ARGS,
    README_DEEPSEEK,
    README_PHY2LOG,
    README_WEIGHTS,
    algorithm_args,
    close,
    failure,
    gpu_loads,
    layer_metrics,
    usage_error,
)

MAGIC = b"\x89EPLB\r\n\x1a"


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstderr: {result.stderr}"
    assert result.stderr == ""
    return result


def plan_snapshot(eplb, workdir, counts, *args, name="plan.eplb"):
    out = workdir / name
    ok(eplb("plan", "--counts", counts, *args, "--out", out))
    return out


def inspect_json(eplb, path, *args):
    return json.loads(ok(eplb("inspect", path, "--json", *args)).stdout)


# --- libeplb.so through ctypes, to read the arrays of a snapshot ---------------------------------


class Library:
    """The few C API functions the tests need, from the libeplb.so next to the CLI."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(str(path))
        self.lib.eplb_last_error_message.restype = ctypes.c_char_p
        self.lib.eplb_snapshot_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        self.lib.eplb_snapshot_get_placement.argtypes = [ctypes.c_void_p,
                                                         ctypes.POINTER(ctypes.c_void_p)]
        self.lib.eplb_snapshot_destroy.argtypes = [ctypes.c_void_p]
        self.lib.eplb_placement_destroy.argtypes = [ctypes.c_void_p]
        self.lib.eplb_placement_get_phy2log.argtypes = [ctypes.c_void_p,
                                                        ctypes.POINTER(ctypes.c_int32),
                                                        ctypes.c_size_t]
        self.lib.eplb_placement_create_from_phy2log.argtypes = [
            ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
            ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
        self.lib.eplb_snapshot_save.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p]

    def _check(self, status):
        if status != 0:
            raise RuntimeError(f"status {status}: {self.lib.eplb_last_error_message().decode()}")

    def phy2log(self, path, num_layers, num_physical):
        snapshot = ctypes.c_void_p()
        self._check(self.lib.eplb_snapshot_load(str(path).encode(), ctypes.byref(snapshot)))
        placement = ctypes.c_void_p()
        try:
            self._check(self.lib.eplb_snapshot_get_placement(snapshot, ctypes.byref(placement)))
            out = (ctypes.c_int32 * (num_layers * num_physical))()
            self._check(self.lib.eplb_placement_get_phy2log(placement, out, len(out)))
        finally:
            self.lib.eplb_placement_destroy(placement)
            self.lib.eplb_snapshot_destroy(snapshot)
        return [list(out[l * num_physical:(l + 1) * num_physical]) for l in range(num_layers)]

    def save_without_statistics(self, rows, num_logical, num_nodes, num_gpus, path):
        flat = [e for row in rows for e in row]
        array = (ctypes.c_int32 * len(flat))(*flat)
        placement = ctypes.c_void_p()
        self._check(self.lib.eplb_placement_create_from_phy2log(
            len(rows), num_logical, len(rows[0]), num_nodes, num_gpus, array, len(flat),
            ctypes.byref(placement)))
        try:
            self._check(self.lib.eplb_snapshot_save(placement, None, str(path).encode()))
        finally:
            self.lib.eplb_placement_destroy(placement)


@pytest.fixture(scope="session")
def library(eplb_path):
    path = Path(eplb_path).resolve().parent.parent / "lib" / "libeplb.so"
    if not path.exists():
        pytest.skip(f"no libeplb.so next to the CLI ({path})")
    # A sanitizer's runtime must be loaded first: such a library would end this Python process.
    if any(marker in path.read_bytes() for marker in (b"__asan_init", b"__tsan_init",
                                                       b"__msan_init")):
        pytest.skip(f"{path} is built with a sanitizer and cannot be loaded into Python")
    return Library(path)


# --- plan --out x.eplb ----------------------------------------------------------------------------


def test_plan_writes_a_snapshot_that_inspect_shows(eplb, workdir, readme_counts):
    out = workdir / "readme.eplb"
    result = ok(eplb("plan", "--counts", readme_counts, *README_DEEPSEEK, "--out", out,
                     "--label", "readme \u2713"))
    assert f"Wrote {out}" in result.stdout
    assert out.read_bytes().startswith(MAGIC)
    assert workdir.listing() == ["readme.eplb", "readme.json"]

    text = ok(eplb("inspect", out)).stdout
    assert f"Snapshot {out}: format 1.2, {out.stat().st_size} bytes" in text
    assert 'label "readme \u2713"' in text
    assert "2 layers x 12 logical experts, 16 slots per layer" in text
    assert "8 GPUs in 2 nodes (2 slots per GPU), 4 expert groups" in text
    assert "deepseek (hierarchical)" in text
    assert "load statistics stored" in text
    assert "GPU loads (summed over the 2 layers)" in text
    table = text.split("GPU loads (summed over the 2 layers):\n")[1].splitlines()
    assert table[0].split() == ["gpu", "node", "load", "load", "/", "mean"]
    assert len(table) == 2 + 8


def test_snapshot_holds_the_same_placement_as_the_json_map(eplb, workdir, readme_counts,
                                                           library, algorithm_names):
    for name in algorithm_names:
        args = [*README_ARGS, *algorithm_args(name)]
        snapshot = plan_snapshot(eplb, workdir, readme_counts, *args, name=f"{name}.eplb")
        ok(eplb("plan", "--counts", readme_counts, *args, "--out", workdir / f"{name}.json"))
        with open(workdir / f"{name}.json") as f:
            expected = json.load(f)["physical_to_logical_map"]
        assert library.phy2log(snapshot, 2, 16) == expected, name
        assert inspect_json(eplb, snapshot)["algorithm"] == name
    snapshot = workdir / "deepseek.eplb"
    assert library.phy2log(snapshot, 2, 16) == README_PHY2LOG


def test_inspect_json_agrees_with_the_plan_report_and_the_model(eplb, workdir, readme_counts):
    out = workdir / "x.eplb"
    report = json.loads(ok(eplb("plan", "--counts", readme_counts, *README_DEEPSEEK, "--report",
                                "--out", out)).stdout)
    doc = inspect_json(eplb, out)
    assert doc["format_major"] == 1 and doc["format_minor"] == 2
    assert doc["file"] == str(out)
    assert doc["file_size"] == out.stat().st_size
    assert doc["library_version"] == ok(eplb("--version")).stdout.split()[1]
    for key in ("algorithm", "policy", "num_layers", "num_logical_experts",
                "num_physical_experts", "num_gpus", "num_nodes", "num_groups"):
        assert doc[key] == report[key], key
    assert doc["plan_seconds"] == report["plan_seconds"]
    assert doc["algorithm_id"] == 1
    assert doc["slots_per_gpu"] == 2
    assert doc["log2phy_width"] == 2
    assert doc["has_loads"] is True and doc["has_coactivation"] is False
    assert doc["summary"] == report["summary"]
    assert doc["stored_balancedness"] == report["summary"]["balancedness"]
    assert doc["label"] == ""

    # The summed GPU loads, from the independent model.
    expected = [0.0] * 8
    for row, weights in zip(README_PHY2LOG, README_WEIGHTS):
        expected = [a + b for a, b in zip(expected, gpu_loads(row, weights, 8))]
    assert doc["gpu_loads"]["layer"] is None
    assert all(close(a, b) for a, b in zip(doc["gpu_loads"]["loads"], expected))
    model = [layer_metrics(row, w, 8, 2) for row, w in zip(README_PHY2LOG, README_WEIGHTS)]
    mean_balancedness = sum(m["balancedness"] for m in model) / len(model)
    assert close(doc["summary"]["balancedness"], mean_balancedness)


@pytest.mark.parametrize("layer", [0, 1])
def test_inspect_one_layer(eplb, workdir, readme_counts, layer):
    out = plan_snapshot(eplb, workdir, readme_counts, *README_DEEPSEEK)
    doc = inspect_json(eplb, out, "--layer", layer)
    assert doc["gpu_loads"]["layer"] == layer
    expected = gpu_loads(README_PHY2LOG[layer], README_WEIGHTS[layer], 8)
    assert all(close(a, b) for a, b in zip(doc["gpu_loads"]["loads"], expected))
    text = ok(eplb("inspect", out, "--layer", layer)).stdout
    assert f"GPU loads (layer {layer}):" in text


def test_creation_time_is_utc(eplb, workdir, readme_counts):
    before = int(time.time())
    out = plan_snapshot(eplb, workdir, readme_counts, *README_ARGS)
    after = int(time.time())
    doc = inspect_json(eplb, out)
    assert before <= doc["created_unix_seconds"] <= after
    stamp = datetime.datetime.fromtimestamp(doc["created_unix_seconds"], datetime.timezone.utc)
    assert doc["created_utc"] == stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert stamp.strftime("%Y-%m-%d %H:%M:%S UTC") in ok(eplb("inspect", out)).stdout


def test_robust_plan_stores_the_summed_loads(eplb, workdir):
    steps = [[[4, 1, 1, 2], [1, 1, 1, 1]], [[1, 3, 2, 2], [2, 1, 1, 5]]]
    counts = workdir.counts(steps)
    out = plan_snapshot(eplb, workdir, counts, "--replicas", "8", "--gpus", "4", "--robust")
    doc = inspect_json(eplb, out)
    assert doc["num_layers"] == 2
    summed_total = sum(sum(sum(row) for row in step) for step in steps)
    assert close(sum(doc["gpu_loads"]["loads"]), summed_total)


def test_snapshot_without_statistics(eplb, workdir, library):
    out = workdir / "imported.eplb"
    library.save_without_statistics(README_PHY2LOG, 12, 2, 8, out)
    doc = inspect_json(eplb, out)
    assert doc["has_loads"] is False
    assert doc["summary"] is None and doc["gpu_loads"] is None
    assert doc["stored_balancedness"] is None
    assert doc["algorithm"] == "imported" and doc["algorithm_id"] == 0
    text = ok(eplb("inspect", out)).stdout
    assert "no load statistics" in text
    assert "none (imported map)" in text
    usage_error(eplb("inspect", out, "--layer", "0"), "--layer 0", "no load statistics")


def test_golden_format_1_0_file(eplb):
    data = os.environ.get("EPLB_TEST_DATA_DIR")
    if not data:
        pytest.skip("EPLB_TEST_DATA_DIR is not set")
    path = Path(data) / "snapshot_format_1_0.eplb"
    text = ok(eplb("inspect", path)).stdout
    assert "format 1.0" in text
    assert 'label "golden: format 1.0"' in text
    assert "at 2026-09-21 14:13:20 UTC" in text
    assert "deepseek (hierarchical), planned in 1.250 ms" in text
    doc = inspect_json(eplb, path)
    assert doc["stored_balancedness"] is None  # format 1.0 stores no metrics
    assert doc["summary"] is not None  # computed from the stored loads
    expected = gpu_loads(README_PHY2LOG[1], README_WEIGHTS[1], 8)
    layer1 = inspect_json(eplb, path, "--layer", "1")["gpu_loads"]["loads"]
    assert all(close(a, b) for a, b in zip(layer1, expected))


# --- plan errors ------------------------------------------------------------------------------


def test_label_needs_a_snapshot(eplb, workdir, readme_counts):
    usage_error(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", workdir / "x.json",
                     "--label", "x"), "--label", ".eplb")
    usage_error(eplb("plan", "--counts", readme_counts, *README_ARGS, "--label", "x"), "--label")
    assert workdir.listing() == ["readme.json"]


def test_label_limits(eplb, workdir, readme_counts):
    out = workdir / "x.eplb"
    usage_error(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out,
                     "--label", "y" * 256), "--label", "255")
    # Not UTF-8 (a lone 0xff byte through the file system encoding).
    usage_error(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out,
                     "--label", "bad\udcff"), "--label", "UTF-8")
    assert workdir.listing() == ["readme.json"]
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out, "--label", "y" * 255))
    assert inspect_json(eplb, out)["label"] == "y" * 255


def test_inspect_escapes_control_characters_of_a_label(eplb, workdir, readme_counts):
    """A label is the user's text: inspect prints it quoted with JSON's escapes, so a newline or
    an escape sequence in it cannot forge lines or drive the terminal."""
    out = workdir / "x.eplb"
    label = 'a"b\n\x1b[31mRED\x07 \u2713'
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out, "--label", label))
    text = ok(eplb("inspect", out)).stdout
    assert 'label "a\\"b\\n\\u001b[31mRED\\u0007 \u2713"' in text, text
    assert "\x1b" not in text and "\x07" not in text
    assert inspect_json(eplb, out)["label"] == label


def test_json_output_with_a_file_name_that_is_not_utf8(eplb, workdir, readme_counts):
    """A path is bytes: --json prints such bytes as U+FFFD rather than failing after the file
    was written."""
    out = workdir / "o\udcff.eplb"  # a lone 0xff byte through the file system encoding
    result = ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out, "--json"))
    assert json.loads(result.stdout)["out"] == str(out).replace("\udcff", "\ufffd")
    assert out.exists()
    svg = workdir / "p\udcff.svg"
    result = ok(eplb("plot", out, "--out", svg, "--json"))
    assert "\ufffd" in result.stdout and svg.exists()
    json.loads(result.stdout)


@pytest.mark.parametrize("name", ["plan.eplb.bak", "plan.snapshot", "plan.eplbx"])
def test_other_extensions_are_rejected(eplb, workdir, readme_counts, name):
    out = workdir / name
    usage_error(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out), str(out),
                ".eplb", ".json")
    assert workdir.listing() == ["readme.json"]


def test_snapshot_into_missing_directory(eplb, workdir, readme_counts):
    out = workdir / "no-such-dir" / "plan.eplb"
    failure(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out), str(out),
            "No such file or directory")
    assert workdir.listing() == ["readme.json"]


def test_snapshot_replaces_an_existing_file(eplb, workdir, readme_counts):
    out = workdir.write_text("plan.eplb", "previous\n")
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out))
    assert out.read_bytes().startswith(MAGIC)
    assert workdir.listing() == ["plan.eplb", "readme.json"]


def test_full_disk_leaves_the_old_snapshot_intact(eplb, workdir, readme_counts):
    out = plan_snapshot(eplb, workdir, readme_counts, *README_ARGS)
    before = out.read_bytes()
    assert len(before) > 300

    def small_disk():
        # Files may not grow past 300 bytes: write() fails part-way with EFBIG, like ENOSPC.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, resource.RLIM_INFINITY))

    message = failure(eplb("plan", "--counts", readme_counts, *README_DEEPSEEK, "--out", out,
                           "--label", "new", preexec_fn=small_disk), str(out))
    assert "File too large" in message
    assert out.read_bytes() == before
    assert workdir.listing() == ["plan.eplb", "readme.json"]


def test_bad_topology_leaves_an_existing_snapshot_untouched(eplb, workdir, readme_counts):
    out = plan_snapshot(eplb, workdir, readme_counts, *README_ARGS)
    before = out.read_bytes()
    usage_error(eplb("plan", "--counts", readme_counts, "--replicas", "18", "--gpus", "8",
                     "--out", out), "--gpus (8)")
    assert out.read_bytes() == before


# --- inspect errors ---------------------------------------------------------------------------


def test_inspect_missing_file(eplb, workdir):
    missing = workdir / "missing.eplb"
    usage_error(eplb("inspect", missing), str(missing), "No such file or directory")


def test_inspect_a_directory(eplb, workdir):
    usage_error(eplb("inspect", workdir.path), str(workdir.path), "is a directory")


def test_inspect_needs_a_file(eplb):
    usage_error(eplb("inspect"), "file")


def suggested_command(message):
    """The command a message suggests between quotes, as arguments after 'eplb'."""
    command = message.split("'")[1].split()
    assert command[0] == "eplb", message
    return command[1:]


def test_inspect_a_json_file_suggests_a_command_that_works(eplb, workdir, readme_counts):
    # By content, whatever the name: each JSON file the other commands read gets the command that
    # makes a snapshot of it, and that command (with its placeholders filled in) works.
    snapshot = plan_snapshot(eplb, workdir, readme_counts, *README_ARGS)
    sglang = workdir / "map.json"
    ok(eplb("convert", snapshot, sglang))
    vllm = workdir / "ascend.json"
    ok(eplb("convert", snapshot, vllm, "--to", "vllm-ascend"))
    fill = {"R": "16", "G": "8", "OUT.eplb": str(workdir / "made.eplb")}
    for path, kind in [(readme_counts, "SGLang load file"), (sglang, "SGLang placement map"),
                       (vllm, "vLLM-Ascend expert map")]:
        for named in [path, workdir.write_text("notes.txt", path.read_text())]:
            message = usage_error(eplb("inspect", named), str(named), "not an .eplb snapshot",
                                  kind)
            (workdir / "made.eplb").unlink(missing_ok=True)
            ok(eplb(*[fill.get(arg, arg) for arg in suggested_command(message)]))
            ok(eplb("inspect", workdir / "made.eplb"))
    # Neither a snapshot nor JSON: the library's reason.
    other = workdir.write_text("notes.txt", "layer,expert,count\n")
    usage_error(eplb("inspect", other), str(other), "not a libeplb snapshot", "corrupt data")


def test_a_snapshot_s_stored_loads_plan_like_its_load_file(eplb, workdir, readme_counts):
    # --counts takes a snapshot's load statistics (a plan's, else its tracker's): re-planning a
    # saved plan for another layout gives what its load file gives.
    snapshot = plan_snapshot(eplb, workdir, readme_counts, *README_DEEPSEEK)
    other = ["--replicas", "24", "--gpus", "12", "--nodes", "3"]
    ok(eplb("plan", "--counts", snapshot, *other, "--out", workdir / "from_snapshot.json"))
    ok(eplb("plan", "--counts", readme_counts, *other, "--out", workdir / "from_counts.json"))
    assert ((workdir / "from_snapshot.json").read_text() ==
            (workdir / "from_counts.json").read_text())
    # A statistics snapshot: its tracker's loads, as --stats plans them.
    trace = workdir.write_text("t.jsonl", "".join(
        f'{{"layer": {t % 2}, "experts": [{t % 12}, {(5 * t + 1) % 12}]}}\n' for t in range(40)))
    stats = workdir / "stats.eplb"
    ok(eplb("record", "--trace", trace, "--experts", "12", "--out", stats))
    ok(eplb("plan", "--counts", stats, *other, "--out", workdir / "counts_of_stats.json"))
    ok(eplb("plan", "--stats", stats, *other, "--out", workdir / "stats_plan.json"))
    assert ((workdir / "counts_of_stats.json").read_text() ==
            (workdir / "stats_plan.json").read_text())
    # plot, migrate and convert read it too, as they read its load file.
    ok(eplb("plot", workdir / "from_counts.json", "--gpus", "12", "--counts", snapshot,
            "--out", workdir / "p.svg"))
    balanced = plan_snapshot(eplb, workdir, readme_counts, *README_ARGS, name="balanced.eplb")
    moved = [json.loads(ok(eplb("migrate", snapshot, balanced, "--counts", counts,
                                "--bytes-per-expert", "1MB", "--json")).stdout)
             for counts in (snapshot, readme_counts)]
    assert moved[0]["summary"]["moved_experts"] > 0
    assert moved[0]["loads_from"] == str(snapshot)
    del moved[0]["loads_from"], moved[1]["loads_from"]
    assert moved[0] == moved[1]
    bare = workdir / "bare.eplb"
    ok(eplb("convert", workdir / "from_counts.json", bare, "--gpus", "12", "--nodes", "3",
            "--counts", snapshot))
    assert inspect_json(eplb, bare)["has_loads"]


def test_a_json_map_under_an_eplb_name_reads_by_content(eplb, workdir, readme_counts):
    # convert --to sglang into a .eplb name writes SGLang's map there; the readers go by content.
    snapshot = plan_snapshot(eplb, workdir, readme_counts, *README_ARGS)
    misnamed = workdir / "map.eplb"
    ok(eplb("convert", snapshot, misnamed, "--to", "sglang"))
    assert misnamed.read_bytes().lstrip().startswith(b"{")
    back = workdir / "back.eplb"
    ok(eplb("convert", misnamed, back, "--gpus", "8", "--nodes", "2"))
    ok(eplb("convert", back, workdir / "again.json"))
    assert (json.loads((workdir / "again.json").read_text())["physical_to_logical_map"] ==
            json.loads(misnamed.read_text())["physical_to_logical_map"])
    ok(eplb("plot", misnamed, "--gpus", "8", "--nodes", "2", "--counts", readme_counts,
            "--out", workdir / "heat.svg"))


def test_inspect_truncated_files(eplb, workdir, readme_counts):
    data = plan_snapshot(eplb, workdir, readme_counts, *README_ARGS).read_bytes()
    cut = workdir / "cut.eplb"
    for length in sorted({0, 1, 7, 8, 12, 63, 64, 100, len(data) // 2, len(data) - 1}):
        cut.write_bytes(data[:length])
        usage_error(eplb("inspect", cut), str(cut), "truncated")


def test_inspect_damaged_files(eplb, workdir, readme_counts):
    data = plan_snapshot(eplb, workdir, readme_counts, *README_ARGS).read_bytes()
    bad = workdir / "bad.eplb"
    damaged = bytearray(data)
    damaged[-10] ^= 0x01
    bad.write_bytes(bytes(damaged))
    usage_error(eplb("inspect", bad), str(bad), "checksum mismatch", "corrupt data")
    damaged = bytearray(data)
    damaged[20] ^= 0x80
    bad.write_bytes(bytes(damaged))
    usage_error(eplb("inspect", bad), str(bad), "header checksum mismatch")
    damaged = bytearray(data)
    damaged[8] = 2
    bad.write_bytes(bytes(damaged))
    usage_error(eplb("inspect", bad), str(bad), "format version 2.", "unsupported version")
    bad.write_bytes(data + b"\0")
    usage_error(eplb("inspect", bad), "trailing bytes")


def test_inspect_layer_out_of_range(eplb, workdir, readme_counts):
    out = plan_snapshot(eplb, workdir, readme_counts, *README_ARGS)
    usage_error(eplb("inspect", out, "--layer", "2"), "--layer 2", "2 layers")
    usage_error(eplb("inspect", out, "--layer", "-1"), "--layer")


def test_inspect_help(eplb):
    result = ok(eplb("inspect", "--help"))
    for option in ("--layer", "--json", "FILE"):
        assert option in result.stdout
    assert "inspect" in ok(eplb("--help")).stdout


def test_inspect_to_a_full_stdout(eplb, workdir, readme_counts):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    out = plan_snapshot(eplb, workdir, readme_counts, *README_ARGS)
    with open("/dev/full", "wb") as full:
        failure(eplb("inspect", out, stdout=full), "standard output")
