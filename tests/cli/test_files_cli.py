"""How the CLI reads and writes files: every input is read once (a pipe, a FIFO or `<(...)`
works like a file), outputs are written through symbolic links and straight into pipes and
devices, new files get the umask's permissions, and conversions keep what the target can hold.

Oracles: the same command on a regular file (for the pipe cases), the bytes and modes on disk,
and the input file's own rows (for dropped dense layers).
"""

import json
import os
import stat
import threading

from cli_support import README_ARGS, README_WEIGHTS, assert_error, usage_error


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstderr: {result.stderr}"
    return result


def feed_fifo(path, data, delay_after_first_line=0.0):
    """Creates a FIFO at `path` and writes `data` into it from a thread, in two chunks (the first
    line, then the rest) so that a reader which opens the file twice loses the first chunk."""
    os.mkfifo(path)

    def writer():
        with open(path, "wb") as fifo:
            first, _, rest = data.partition(b"\n")
            fifo.write(first + b"\n")
            fifo.flush()
            if delay_after_first_line:
                threading.Event().wait(delay_after_first_line)
            fifo.write(rest)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return thread


def drain_fifo(path):
    """Creates a FIFO at `path` and collects what is written into it."""
    os.mkfifo(path)
    received = []

    def reader():
        with open(path, "rb") as fifo:
            received.append(fifo.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread, received


def inspect_json(eplb, path, *extra):
    return json.loads(ok(eplb("inspect", path, "--json", *extra)).stdout)


TRACE = "".join(
    json.dumps({"layer": t % 2, "experts": [t % 6, (t * 5 + 1) % 6 if (t * 5 + 1) % 6 != t % 6
                                              else (t + 1) % 6]}) + "\n"
    for t in range(40))


def record(eplb, workdir, trace_path, name):
    out = workdir / name
    ok(eplb("record", "--trace", trace_path, "--experts", 6, "--out", out))
    return inspect_json(eplb, out, "--pairs")["statistics"]


# --- inputs are read once -------------------------------------------------------------------------


def test_record_from_a_fifo_keeps_every_row(eplb, workdir):
    regular = workdir.write_text("t.jsonl", TRACE)
    expected = record(eplb, workdir, regular, "file.eplb")
    fifo = workdir / "t.fifo"
    thread = feed_fifo(fifo, TRACE.encode(), delay_after_first_line=0.2)
    got = record(eplb, workdir, fifo, "fifo.eplb")
    thread.join(5)
    assert sum(got["tokens_per_layer"]) == 40
    assert got == expected


def test_plan_and_convert_from_fifos_equal_regular_files(eplb, workdir, readme_counts):
    regular = ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--report")).stdout
    fifo = workdir / "counts.fifo"
    thread = feed_fifo(fifo, readme_counts.read_bytes())
    piped = ok(eplb("plan", "--counts", fifo, *README_ARGS, "--report")).stdout
    thread.join(5)
    drop_timing = lambda text: {k: v for k, v in json.loads(text).items() if k != "plan_seconds"}
    assert drop_timing(piped)["summary"] == drop_timing(regular)["summary"]

    snapshot = workdir / "plan.eplb"
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", snapshot))
    snapshot_fifo = workdir / "snapshot.fifo"
    thread = feed_fifo(snapshot_fifo, snapshot.read_bytes())
    ok(eplb("convert", snapshot_fifo, workdir / "from_fifo.json"))
    thread.join(5)
    ok(eplb("convert", snapshot, workdir / "from_file.json"))
    assert (workdir / "from_fifo.json").read_text() == (workdir / "from_file.json").read_text()


def test_inspect_and_plan_stats_read_a_snapshot_from_a_fifo(eplb, workdir):
    stats = workdir / "stats.eplb"
    ok(eplb("record", "--trace", workdir.write_text("t.jsonl", TRACE), "--experts", 6,
            "--out", stats))
    expected = inspect_json(eplb, stats)
    fifo = workdir / "stats.fifo"
    thread = feed_fifo(fifo, stats.read_bytes())
    got = inspect_json(eplb, fifo)
    thread.join(5)
    assert got["statistics"] == expected["statistics"]

    fifo2 = workdir / "stats2.fifo"
    thread = feed_fifo(fifo2, stats.read_bytes())
    ok(eplb("plan", "--stats", fifo2, "--replicas", 8, "--gpus", 4))
    thread.join(5)

    # A load file through a FIFO: inspect reads it once, and says what it is (reading it again
    # would wait for a writer that is gone).
    fifo3 = workdir / "counts.fifo"
    thread = feed_fifo(fifo3, b'{"logical_count": [[1, 2, 3, 4]]}')
    usage_error(eplb("inspect", fifo3, timeout=20), "an SGLang load file", "eplb plan --counts")
    thread.join(5)


def test_a_dash_is_a_file_name_and_the_error_points_at_dev_stdin(eplb, workdir, readme_counts):
    # Inputs are files; '-' names one like any other, and when it is missing the message says
    # how to read standard input, which then works.
    usage_error(eplb("plan", "--counts", "-", *README_ARGS), "cannot open '-'", "/dev/stdin")
    usage_error(eplb("record", "--trace", "-", "--experts", 6, "--out", workdir / "s.eplb"),
                "--trace: cannot open '-'", "/dev/stdin")
    with open(readme_counts, "rb") as counts:
        result = eplb("plan", "--counts", "/dev/stdin", *README_ARGS, "--out",
                      workdir / "from_stdin.json", stdin=counts)
    ok(result)
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", workdir / "from_file.json"))
    assert (workdir / "from_stdin.json").read_text() == (workdir / "from_file.json").read_text()


def test_error_messages_are_one_line_of_valid_utf8(eplb, workdir):
    # A file name is bytes (here an invalid UTF-8 byte and a newline), and a parser's message
    # quotes the damaged document's bytes: both print escaped, on one line, as valid UTF-8.
    odd = workdir.path / "x\udcffy\nz.json"  # surrogateescape: the raw byte 0xff
    message = usage_error(eplb("plan", "--counts", odd, *README_ARGS), "x\\xffy\\nz.json",
                          "No such file")
    assert "\ufffd" not in message
    damaged = workdir.path / "damaged.json"
    damaged.write_bytes(b'{"logical_count": [[1, 2, \xff3]]}')
    message = usage_error(eplb("plan", "--counts", damaged, *README_ARGS), "invalid JSON",
                          "\\xff")
    assert "\ufffd" not in message
    # Valid UTF-8 prints as it is, but for the characters that hide or break lines (C1 controls,
    # U+2028) and the backslash, which escapes.
    usage_error(eplb("plan", "--counts", workdir.path / "caf\u00e9.json", *README_ARGS),
                "caf\u00e9.json")
    message = usage_error(eplb("plan", "--counts", workdir.path / "a\u0085b\u2028c\\d.json",
                               *README_ARGS), "a\\xc2\\x85b\\xe2\\x80\\xa8c\\\\d.json")
    assert "\u0085" not in message and "\u2028" not in message


# --- outputs --------------------------------------------------------------------------------------


def test_output_through_a_symlink_replaces_the_target_and_keeps_the_link(eplb, workdir,
                                                                         readme_counts):
    for name in ("map.json", "plan.eplb"):
        target = workdir.write_text("real-" + name, "old\n")
        os.chmod(target, 0o640)
        link = workdir / ("link-" + name)
        link.symlink_to(target.name)
        ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", link))
        assert link.is_symlink() and os.readlink(link) == target.name
        assert target.read_bytes() != b"old\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the replaced file's permissions
    dangling = workdir / "dangling.json"
    dangling.symlink_to("made-by-eplb.json")
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", dangling))
    assert dangling.is_symlink()
    assert "physical_to_logical_map" in json.loads((workdir / "made-by-eplb.json").read_text())
    leftovers = [name for name in workdir.listing() if ".tmp." in name]
    assert leftovers == []


def test_output_into_a_fifo_is_written_straight_through(eplb, workdir, readme_counts):
    expected = workdir / "map.json"
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", expected))
    fifo = workdir / "out.json"
    thread, received = drain_fifo(fifo)
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", fifo))
    thread.join(5)
    assert received == [expected.read_bytes()]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_new_files_get_the_umask_permissions(eplb, workdir, readme_counts):
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        out = workdir / f"plan-{mask:o}.eplb"
        ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out,
                preexec_fn=lambda m=mask: os.umask(m)))
        assert stat.S_IMODE(out.stat().st_mode) == mode


def test_output_into_a_missing_directory_names_it(eplb, workdir, readme_counts):
    out = workdir / "missing" / "map.json"
    assert_error(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out), 1,
                 str(out), "No such file or directory")
    assert workdir.listing() == ["readme.json"]


def test_extensions_are_recognised_in_any_case(eplb, workdir, readme_counts):
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", workdir / "plan.EPLB"))
    assert (workdir / "plan.EPLB").read_bytes()[:5] == b"\x89EPLB"
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", workdir / "map.Json"))
    assert "physical_to_logical_map" in json.loads((workdir / "map.Json").read_text())


# --- conversions keep what the target holds -------------------------------------------------------


def test_snapshot_copy_keeps_the_coactivation_statistics(eplb, workdir):
    stats = workdir / "stats.eplb"
    ok(eplb("record", "--trace", workdir.write_text("t.jsonl", TRACE), "--experts", 6,
            "--out", stats))
    placement = workdir / "placement.eplb"
    ok(eplb("plan", "--stats", stats, "--replicas", 8, "--gpus", 4, "--out", placement))
    copy = workdir / "copy.eplb"
    ok(eplb("convert", placement, copy))
    original = inspect_json(eplb, placement, "--pairs")
    copied = inspect_json(eplb, copy, "--pairs")
    assert copied["has_coactivation"] is True
    assert copied["statistics"] == original["statistics"]
    # A JSON target says it drops them.
    result = ok(eplb("convert", placement, workdir / "map.json"))
    assert "the co-activation statistics" in result.stdout


def test_vllm_ascend_map_without_the_dense_layers(eplb, workdir):
    # Two dense layers (all-zero rows, as SGLang's logical_count has them) before two MoE layers.
    counts = workdir.counts([[0] * 12, [0] * 12, *README_WEIGHTS])
    plan = workdir / "plan.eplb"
    ok(eplb("plan", "--counts", counts, *README_ARGS, "--out", plan))
    full = workdir / "full.json"
    ok(eplb("convert", plan, full, "--to", "vllm-ascend", "--dense-layers", 0))  # rows kept
    stripped = workdir / "moe.json"
    result = ok(eplb("convert", plan, stripped, "--to", "vllm-ascend", "--dense-layers", 2))
    assert "without the 2 dense layers" in result.stdout
    full_layers = json.loads(full.read_text())["layer_list"]
    moe = json.loads(stripped.read_text())
    assert moe["moe_layer_count"] == 2 == len(moe["layer_list"])
    for kept, original in zip(moe["layer_list"], full_layers[2:]):
        assert kept["device_list"] == original["device_list"]
    # A layer with load is not dense.
    assert_error(eplb("convert", plan, workdir / "x.json", "--to", "vllm-ascend",
                      "--dense-layers", 3), 2, "--dense-layers 3", "layer 2", "not a dense layer")
    assert not (workdir / "x.json").exists()


def test_dense_layers_are_only_dropped_from_a_plan(eplb, workdir):
    counts = workdir.counts([[0] * 12, *README_WEIGHTS])
    plan = workdir / "plan.eplb"
    ok(eplb("plan", "--counts", counts, *README_ARGS, "--out", plan))
    vllm_map = workdir / "map.json"
    ok(eplb("convert", plan, vllm_map, "--to", "vllm-ascend", "--dense-layers", 0))
    # A vLLM-Ascend map has MoE layers only: --dense-layers does not apply to it.
    assert_error(eplb("convert", vllm_map, workdir / "again.json", "--to", "vllm-ascend",
                      "--dense-layers", 1), 2, "--dense-layers applies to SGLang maps")
    # Without loads, a dropped layer must have the trivial placement (a dense layer's).
    bare = workdir / "bare.eplb"
    ok(eplb("convert", vllm_map, bare))
    ok(eplb("convert", bare, workdir / "moe.json", "--to", "vllm-ascend", "--dense-layers", 1))
    assert json.loads((workdir / "moe.json").read_text())["moe_layer_count"] == 2
    assert_error(eplb("convert", bare, workdir / "x.json", "--to", "vllm-ascend",
                      "--dense-layers", 2), 2, "layer 1", "not the trivial placement")
    assert not (workdir / "x.json").exists()


def test_convert_counts_with_the_dense_rows_of_an_sglang_map(eplb, workdir, readme_counts):
    sglang_map = workdir / "map.json"
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", sglang_map,
            "--dense-layers", 1))
    with_dense = workdir.counts([[0] * 12, *README_WEIGHTS], name="with_dense.json")
    a = workdir / "a.eplb"
    b = workdir / "b.eplb"
    ok(eplb("convert", sglang_map, a, "--gpus", 8, "--nodes", 2, "--dense-layers", 1,
            "--counts", with_dense))
    ok(eplb("convert", sglang_map, b, "--gpus", 8, "--nodes", 2, "--dense-layers", 1,
            "--counts", readme_counts))
    assert inspect_json(eplb, a)["summary"] == inspect_json(eplb, b)["summary"]
    assert inspect_json(eplb, a)["gpu_loads"] == inspect_json(eplb, b)["gpu_loads"]


# --- what the text output says --------------------------------------------------------------------


def test_plan_of_no_load_says_so(eplb, workdir):
    counts = workdir.counts([[0] * 12, [0] * 12])
    result = ok(eplb("plan", "--counts", counts, *README_ARGS))
    assert "layers without load (every layer" in result.stdout


def test_plan_says_where_the_loads_come_from(eplb, workdir, readme_counts):
    other = workdir.counts([[w + 1 for w in row] for row in README_WEIGHTS], name="other.json")
    single = ok(eplb("plan", "--counts", readme_counts, *README_ARGS)).stdout
    assert single.splitlines()[0] == f"Loads from {readme_counts}"
    summed = ok(eplb("plan", "--counts", readme_counts, other, *README_ARGS)).stdout
    assert "2 load files" in summed.splitlines()[0] and "summed" in summed.splitlines()[0]
    robust = ok(eplb("plan", "--counts", readme_counts, other, *README_ARGS, "--robust")).stdout
    assert "--robust" in robust.splitlines()[0] and "2 windows" in robust.splitlines()[0]


def test_an_imported_map_is_not_said_to_be_planned(eplb, workdir, readme_counts):
    sglang_map = workdir / "map.json"
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", sglang_map))
    snapshot = workdir / "imported.eplb"
    ok(eplb("convert", sglang_map, snapshot, "--gpus", 8, "--nodes", 2))
    text = ok(eplb("inspect", snapshot)).stdout
    assert "Algorithm:  none (imported map)" in text
    assert "planned in" not in text


# --- damaged traces -------------------------------------------------------------------------------


def test_trace_ids_must_be_integers(eplb, workdir):
    trace = workdir.write_text("t.jsonl", '{"layer": 0, "experts": [1.5, 2]}\n')
    assert_error(eplb("record", "--trace", trace, "--experts", 8, "--out", workdir / "s.eplb"), 2,
                 "expert id 1.5 (slot 0) is not an integer")


def test_a_trace_given_twice_is_refused(eplb, workdir):
    trace = workdir.write_text("t.jsonl", TRACE)
    assert_error(eplb("record", "--trace", trace, trace, "--experts", 6,
                      "--out", workdir / "s.eplb"), 2, "given twice")
    assert not (workdir / "s.eplb").exists()


# --- options that need what the file does not hold ------------------------------------------------


def test_affinity_needs_sampled_rows(eplb, workdir):
    stats = workdir / "stats.eplb"
    ok(eplb("record", "--trace", workdir.write_text("t.jsonl", TRACE), "--experts", 6,
            "--samples", 0, "--out", stats))
    assert_error(eplb("plan", "--stats", stats, "--replicas", 8, "--gpus", 4, "--nodes", 2,
                      "--affinity"), 2, str(stats), "--samples 0", "--samples N > 0")


def test_inspect_pairs_needs_coactivation_statistics(eplb, workdir, readme_counts):
    plan = workdir / "plan.eplb"
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", plan))
    assert_error(eplb("inspect", plan, "--json", "--pairs"), 2, "--pairs", str(plan),
                 "no co-activation statistics")


def test_plan_report_names_its_inputs_and_output(eplb, workdir, readme_counts):
    other = workdir.counts(README_WEIGHTS, name="other.json")
    out = workdir / "map.json"
    report = json.loads(ok(eplb("plan", "--counts", readme_counts, other, *README_ARGS,
                                "--out", out, "--report")).stdout)
    assert report["inputs"] == [str(readme_counts), str(other)]
    assert report["out"] == str(out)
    alone = json.loads(ok(eplb("plan", "--counts", readme_counts, *README_ARGS,
                               "--report")).stdout)
    assert alone["inputs"] == [str(readme_counts)] and alone["out"] is None


def test_convert_and_plot_print_json_summaries(eplb, workdir, readme_counts):
    plan = workdir / "plan.eplb"
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", plan))
    summary = json.loads(ok(eplb("convert", plan, workdir / "map.json", "--json")).stdout)
    assert summary["in"] == str(plan) and summary["out"] == str(workdir / "map.json")
    assert (summary["in_format"], summary["out_format"]) == ("eplb", "sglang")
    assert summary["num_layers"] == 2 and summary["num_gpus"] == 8
    # What an SGLang map cannot hold, as keys.
    assert {"loads", "algorithm", "num_nodes", "num_gpus"} <= set(summary["not_recorded"])
    plot = json.loads(ok(eplb("plot", plan, "--out", workdir / "p.svg", "--json")).stdout)
    text = ok(eplb("plot", plan, "--out", workdir / "q.svg")).stdout
    assert f"{plot['balancedness_after']:.4f} after" in text
    assert f"{plot['balancedness_before']:.4f} before" in text
    assert plot["num_layers"] == 2 and plot["layer"] is None
