"""Every error path of `eplb plan`: exit status 2 with one line naming the problem for bad usage
or bad input, 1 for other failures, never a crash, and no output file left behind."""

import os
import resource

import pytest

from cli_support import README_ARGS, failure, is_sanitized, usage_error

# A valid topology for 2-D test matrices of 4 experts.
SMALL = ["--replicas", "8", "--gpus", "4"]


def rows(num_layers, num_experts, value=1):
    return [[value + layer + e for e in range(num_experts)] for layer in range(num_layers)]


# --- The load file ------------------------------------------------------------------------------


def test_missing_counts_file(eplb, workdir):
    missing = workdir / "no-such-file.json"
    usage_error(eplb("plan", "--counts", missing, *SMALL), str(missing), "No such file")


def test_counts_is_a_directory(eplb, workdir):
    folder = workdir / "loads.json"
    folder.mkdir()
    message = usage_error(eplb("plan", "--counts", folder, *SMALL), str(folder))
    assert "is a directory" in message.replace(str(folder), "")


def test_empty_file(eplb, workdir):
    for text in ["", "  \n"]:
        path = workdir.write_text("empty.json", text)
        usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "is empty")


def test_snapshot_and_json_swapped(eplb, workdir):
    counts = workdir.write_text("c.json", '{"logical_count": [[1, 2, 3, 4]]}')
    snapshot = workdir / "p.eplb"
    assert eplb("plan", "--counts", counts, *SMALL, "--out", snapshot).returncode == 0
    # --counts takes a snapshot's stored loads; one saved without them is refused.
    assert eplb("plan", "--counts", snapshot, *SMALL).returncode == 0
    sglang = workdir / "p.json"
    assert eplb("convert", snapshot, sglang).returncode == 0
    bare = workdir / "bare.eplb"
    assert eplb("convert", sglang, bare, "--gpus", "2").returncode == 0
    usage_error(eplb("plan", "--counts", bare, *SMALL), str(bare),
                "is an .eplb snapshot without load statistics")
    usage_error(eplb("plan", "--stats", counts, *SMALL), "is not an .eplb snapshot", "--counts")
    usage_error(eplb("plan", "--stats", snapshot, *SMALL), "no co-activation statistics",
                "eplb record")


def test_usage_errors_point_at_the_command_and_suggest_options(eplb, workdir):
    counts = workdir.write_text("c.json", '{"logical_count": [[1, 2, 3, 4]]}')
    usage_error(eplb("plan", "--count", counts, *SMALL), "unknown option '--count'",
                "did you mean '--counts'?", "see 'eplb plan --help'")
    usage_error(eplb("plan", "--counts", counts, "--gpus", "2"), "--replicas is required",
                "see 'eplb plan --help'")
    usage_error(eplb("plan", "--counts", counts, *SMALL, "--replicas", "abc"),
                "--replicas: 'abc' is not a whole number")
    usage_error(eplb("demo", "--seed", "-1"), "--seed: -1 is below 0", "see 'eplb demo --help'")
    # An option given twice takes the last value.
    assert eplb("plan", "--counts", counts, *SMALL, "--gpus", "3", "--gpus", "2").returncode == 0


@pytest.mark.parametrize("text", [
    "{",
    '{"logical_count": [[1, 2], [3, 4]]',
    '{"logical_count": [[1, 2,], [3, 4]]}',
    "{'logical_count': [[1, 2]]}",
    '{"logical_count": [[1, 2]]} trailing',
    "\x00\x01binary",
], ids=["open-brace", "unclosed", "trailing-comma", "single-quotes", "trailing-text",
        "binary"])
def test_invalid_json(eplb, workdir, text):
    path = workdir.write_text("bad.json", text)
    result = eplb("plan", "--counts", path, *SMALL)
    usage_error(result, str(path), "invalid JSON")
    assert "json.exception" not in result.stderr


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "nan", "inf"])
def test_nan_and_infinity_tokens_are_invalid_json(eplb, workdir, token):
    path = workdir.write_text("nan.json", '{"logical_count": [[1, 2, %s, 4]]}' % token)
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "invalid JSON")


def test_number_overflowing_a_double_is_bad_input(eplb, workdir):
    # 1e400 is valid JSON syntax but no double holds it: bad input (2), naming file and number.
    path = workdir.write_text("big.json", '{"logical_count": [[1, 2, 1e400, 4]]}')
    result = eplb("plan", "--counts", path, *SMALL)
    usage_error(result, str(path), "number overflow parsing '1e400'")
    assert "json.exception" not in result.stderr  # the JSON library's tag means nothing to users


def test_load_above_float32_range_with_deepseek(eplb, workdir):
    # The deepseek algorithm computes in float32 like the reference: the library refuses, and
    # the CLI names the file, the layer/expert and the value.
    path = workdir.counts([[1, 2, 3, 4], [1, 2, 1e39, 4]])
    # The plan's own errors also name the options that sized it.
    usage_error(eplb("plan", "--counts", path, *SMALL, "--algorithm", "deepseek"),
                f"cannot plan 2 layers of 4 experts from {path} with --replicas 8 --gpus 4",
                "[1][2]", "1e+39", "FLT_MAX")
    # Every layer adds up to at most 1e150 (any algorithm).
    path = workdir.counts([[1, 2, 3, 4], [1, 2, 1e151, 4]])
    usage_error(eplb("plan", "--counts", path, *SMALL, "--algorithm", "balanced"),
                str(path), "layer 1", "above 1e150")


@pytest.mark.parametrize("document,found", [
    ([[1, 2], [3, 4]], "array"),
    (42, "number"),
    ("logical_count", "string"),
    (None, "null"),
    (True, "boolean"),
])
def test_top_level_not_an_object(eplb, workdir, document, found):
    path = workdir.write_json("top.json", document)
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "JSON object", "logical_count",
                found)


def test_no_logical_count_key_lists_keys_present(eplb, workdir):
    path = workdir.write_json("keys.json", {"physical_to_logical_map": [[0, 1]], "logicalcount": 1})
    message = usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "'logical_count'",
                          "physical_to_logical_map", "logicalcount")
    assert "keys present" in message


def test_no_logical_count_key_in_empty_object(eplb, workdir):
    path = workdir.write_json("empty.json", {})
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "'logical_count'", "none")


@pytest.mark.parametrize("value,kind", [
    (5, "number"), ("abc", "string"), ({"0": [1, 2]}, "object"), (None, "null"), (True, "boolean"),
])
def test_logical_count_not_a_list(eplb, workdir, value, kind):
    path = workdir.counts(value)
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count is", kind,
                "expected a list")


def test_logical_count_empty_list(eplb, workdir):
    path = workdir.counts([])
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count", "empty")


@pytest.mark.parametrize("matrix,where", [
    ([[]], "logical_count[0]"),
    ([[1, 2, 3, 4], [1, 2, 3, 4], []], "logical_count[2]"),
])
def test_empty_row(eplb, workdir, matrix, where):
    path = workdir.counts(matrix)
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), where, "empty")


def test_row_not_a_list(eplb, workdir):
    path = workdir.counts([[1, 2, 3, 4], "1 2 3 4"])
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count[1]", "string",
                "expected a list")


def test_ragged_rows_name_row_and_expected_width(eplb, workdir):
    matrix = rows(8, 4)
    matrix[5] = matrix[5][:3]
    path = workdir.counts(matrix)
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count[5]", "3 experts",
                "expected 4")


def test_ragged_rows_longer_row(eplb, workdir):
    matrix = rows(3, 4)
    matrix[2] = matrix[2] + [7]
    path = workdir.counts(matrix)
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count[2]", "5 experts",
                "expected 4")


def test_ragged_steps_in_3d_form(eplb, workdir):
    path = workdir.counts([rows(3, 4), rows(2, 4)])
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count[1]", "2 layers",
                "expected 3")


def test_ragged_experts_in_3d_form(eplb, workdir):
    second = rows(3, 4)
    second[1] = second[1][:2]
    path = workdir.counts([rows(3, 4), second])
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count[1][1]",
                "2 experts", "expected 4")


def test_empty_step_in_3d_form(eplb, workdir):
    path = workdir.counts([rows(2, 4), []])
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count[1]", "empty")


def test_mixed_2d_and_3d(eplb, workdir):
    path = workdir.counts([rows(2, 4), [1, 2]])
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count[1][0]",
                "expected a list")


@pytest.mark.parametrize("value,kind", [
    ("7", "string"), (None, "null"), (True, "boolean"), ([7], "array"), ({"v": 7}, "object"),
])
def test_non_number_value_names_its_index(eplb, workdir, value, kind):
    matrix = rows(3, 4)
    matrix[1][2] = value
    path = workdir.counts(matrix)
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count[1][2]", kind,
                "expected a number")


def test_non_number_value_in_3d_form_names_step_layer_expert(eplb, workdir):
    second = rows(2, 4)
    second[1][3] = "x"
    path = workdir.counts([rows(2, 4), second])
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count[1][1][3]",
                "string")


@pytest.mark.parametrize("value,shown", [(-7, "-7"), (-0.5, "-0.5"), (-1e-300, "-1e-300")])
def test_negative_value_names_index_and_value(eplb, workdir, value, shown):
    matrix = rows(4, 4)
    matrix[2][3] = value
    path = workdir.counts(matrix)
    usage_error(eplb("plan", "--counts", path, *SMALL), str(path), "logical_count[2][3]", shown,
                "negative")


# --- Options ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "abc", "99999999999", "4294967296", "1.5", ""])
def test_bad_replicas(eplb, readme_counts, value):
    usage_error(eplb("plan", "--counts", readme_counts, "--replicas", value, "--gpus", "8"),
                "--replicas", value)


@pytest.mark.parametrize("option", ["--gpus", "--nodes", "--groups"])
@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_bad_counts_options(eplb, readme_counts, option, value):
    args = {"--replicas": "16", "--gpus": "8", "--nodes": "1", "--groups": "1"}
    args[option] = value
    flat = [item for pair in args.items() for item in pair]
    usage_error(eplb("plan", "--counts", readme_counts, *flat), option, value)


def test_replicas_not_a_multiple_of_gpus(eplb, readme_counts):
    usage_error(eplb("plan", "--counts", readme_counts, "--replicas", "18", "--gpus", "8"),
                "--replicas (18) must be a multiple of --gpus (8)")


def test_gpus_not_a_multiple_of_nodes(eplb, readme_counts):
    usage_error(eplb("plan", "--counts", readme_counts, "--replicas", "16", "--gpus", "8",
                     "--nodes", "3"),
                "--gpus (8) must be a multiple of --nodes (3)")


def test_experts_not_a_multiple_of_groups(eplb, readme_counts):
    usage_error(eplb("plan", "--counts", readme_counts, "--replicas", "16", "--gpus", "8",
                     "--groups", "5"),
                "num_logical_experts", "num_groups", "12", "5")


def test_fewer_replicas_than_experts(eplb, readme_counts):
    usage_error(eplb("plan", "--counts", readme_counts, "--replicas", "8", "--gpus", "4"),
                "num_physical_experts", "num_logical_experts", "8", "12")


@pytest.mark.parametrize("name", ["foo", "", "DeepSeek", "deepseek "])
def test_unknown_algorithm_lists_known_names(eplb, readme_counts, algorithm_names, name):
    message = usage_error(eplb("plan", "--counts", readme_counts, *README_ARGS, "--algorithm",
                               name), "--algorithm", f'"{name}"')
    for known in algorithm_names + ["default"]:
        assert known in message


@pytest.mark.parametrize("missing", ["--counts", "--replicas", "--gpus"])
def test_missing_required_option(eplb, readme_counts, missing):
    args = {"--counts": str(readme_counts), "--replicas": "16", "--gpus": "8"}
    del args[missing]
    flat = [item for pair in args.items() for item in pair]
    usage_error(eplb("plan", *flat), missing, "required")


def test_option_without_value(eplb, readme_counts):
    usage_error(eplb("plan", "--counts", readme_counts, "--gpus", "8", "--replicas"), "--replicas")


def test_unknown_option(eplb, readme_counts):
    usage_error(eplb("plan", "--counts", readme_counts, *README_ARGS, "--replica-count", "3"),
                "--replica-count")


def test_unexpected_positional_argument(eplb, readme_counts):
    usage_error(eplb("plan", "--counts", readme_counts, *README_ARGS, "extra.json"), "extra.json")


# --- --out --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["plan.txt", "plan.csv", "plan", "plan.json.bak", "plan.jsonl"])
def test_out_with_unsupported_extension(eplb, workdir, readme_counts, name):
    before = workdir.listing()
    out = workdir / name
    usage_error(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out), str(out),
                ".json")
    assert workdir.listing() == before


def test_out_into_missing_directory(eplb, workdir, readme_counts):
    out = workdir / "no-such-dir" / "plan.json"
    failure(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out), str(out))
    assert not (workdir / "no-such-dir").exists()


def test_out_under_a_regular_file(eplb, workdir, readme_counts):
    out = readme_counts / "plan.json"
    failure(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out), str(out),
            "Not a directory")


def test_out_onto_an_existing_directory(eplb, workdir, readme_counts):
    out = workdir / "taken.json"
    out.mkdir()
    failure(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out), str(out))
    assert out.is_dir() and list(out.iterdir()) == []
    assert workdir.listing() == ["readme.json", "taken.json"]  # no temporary file left


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_out_into_read_only_directory(eplb, workdir, readme_counts):
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        out = locked / "plan.json"
        failure(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out), str(out))
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_bad_input_leaves_no_output_file(eplb, workdir):
    path = workdir.counts([[1, 2, 3, 4], [1, -2, 3, 4]])
    out = workdir / "plan.json"
    usage_error(eplb("plan", "--counts", path, *SMALL, "--out", out), "logical_count[1][1]")
    assert workdir.listing() == ["counts.json"]


def test_bad_topology_leaves_existing_output_untouched(eplb, workdir, readme_counts):
    out = workdir.write_text("plan.json", "previous\n")
    usage_error(eplb("plan", "--counts", readme_counts, "--replicas", "18", "--gpus", "8",
                     "--out", out), "--gpus (8)")
    assert out.read_text() == "previous\n"
    assert workdir.listing() == ["plan.json", "readme.json"]


# --- Other failures: exit status 1 --------------------------------------------------------------


def test_stdout_write_failure_is_a_failure(eplb, readme_counts):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "wb") as full:
        failure(eplb("plan", "--counts", readme_counts, *README_ARGS, "--report", stdout=full),
                "standard output")


def test_out_of_memory_is_a_failure(eplb, eplb_path, readme_counts):
    if is_sanitized(eplb_path):
        pytest.skip("sanitizers need more address space than this test allows")
    limit = 1 << 30

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    # 2 layers x 2e9 slots of int32 cannot fit in 1 GiB of address space.
    failure(eplb("plan", "--counts", readme_counts, "--replicas", "2000000000", "--gpus", "1",
                 preexec_fn=cap_memory), "memory")

