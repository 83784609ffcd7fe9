"""Command-line argument handling of every `eplb` command: what a list option takes, unknown
short options, option checks made before any file is read, and --help's layout.

A usage error is exit status 2 with one line naming the flag and value (cli_support.usage_error),
and leaves no file behind: each test runs in its own directory and compares its listing.
"""

import json
import re

import pytest

from cli_support import README_ARGS, README_WEIGHTS, usage_error

COMMANDS = ["plan", "demo", "algorithms", "inspect", "convert", "plot", "migrate", "record"]
TRACE = '{"layer": 0, "experts": [1, 2]}\n'
LONG_LABEL = "y" * 300


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstderr: {result.stderr}"
    assert result.stderr == ""
    return result


def refused(eplb, workdir, *args, fragments=()):
    """Runs `eplb ARGS` in workdir; asserts a usage error naming `fragments` and that the
    directory is unchanged. Returns the message."""
    before = workdir.listing()
    message = usage_error(eplb(*args, cwd=workdir.path), *fragments)
    assert workdir.listing() == before, f"eplb {list(args)} wrote files"
    return message


@pytest.fixture
def counts(workdir):
    """The DeepSeek README example (2 layers x 12 experts) in the working directory."""
    return workdir.counts(README_WEIGHTS, "c.json")


@pytest.fixture
def trace(workdir):
    return workdir.write_text("t.jsonl", TRACE)


@pytest.fixture
def snapshot(eplb, workdir, counts):
    """A placement of the README example with its loads, as an .eplb snapshot."""
    out = workdir / "p.eplb"
    ok(eplb("plan", "--counts", counts, *README_ARGS, "--out", out))
    return out


# --- 1. List options take files, never the next option -------------------------------------------


@pytest.mark.parametrize("after", [
    ["--gpus", "8", "--replicas", "16"],
    ["--nodes", "2", "--gpus", "8", "--replicas", "16"],
    ["--replicas", "16", "--gpus", "8", "--json"],
])
def test_counts_without_a_file(eplb, workdir, after):
    message = refused(eplb, workdir, "plan", "--counts", *after, "--out", "p.json",
                      fragments=["--counts needs at least one FILE", "see 'eplb plan --help'"])
    assert "cannot open" not in message and "required" not in message


def test_trace_without_a_file(eplb, workdir):
    refused(eplb, workdir, "record", "--trace", "--json", "--experts", "8", "--out", "s.eplb",
            fragments=["--trace needs at least one FILE", "see 'eplb record --help'"])


def test_list_option_repeated_without_a_file(eplb, workdir, counts, trace):
    refused(eplb, workdir, "plan", "--counts", counts, "--counts", *README_ARGS,
            fragments=["--counts needs at least one FILE"])
    refused(eplb, workdir, "record", "--trace", trace, "--experts", "8", "--out", "s.eplb",
            "--trace", fragments=["--trace needs at least one FILE"])
    refused(eplb, workdir, "plan", "--counts", "", *README_ARGS,
            fragments=["--counts needs at least one FILE"])


def test_a_dashed_word_is_never_a_file(eplb, workdir, counts):
    refused(eplb, workdir, "plan", "--counts=--nodes", *README_ARGS,
            fragments=["--counts", "'--nodes' looks like an option", "./--nodes"])
    refused(eplb, workdir, "plan", "--counts", counts, *README_ARGS, "--out", "--report",
            fragments=["--out", "'--report' looks like an option", "./--report"])
    refused(eplb, workdir, "record", "--trace", "t.jsonl", "--experts", "8", "--out", "--json",
            fragments=["--out", "'--json'"])
    refused(eplb, workdir, "plan", "--stats", "--report", *README_ARGS, fragments=["--stats"])
    # An unknown option after the files is reported as one, not opened.
    refused(eplb, workdir, "plan", "--counts", counts, "--bogus", *README_ARGS,
            fragments=["unknown option '--bogus'"])


def test_files_named_like_options(eplb, workdir):
    workdir.counts(README_WEIGHTS, "--x.json")
    workdir.write_text("--t.jsonl", TRACE)
    ok(eplb("plan", "--counts", "./--x.json", *README_ARGS, "--out", "./--p.json",
            cwd=workdir.path))
    assert (workdir / "--p.json").exists()
    ok(eplb("record", "--trace", "./--t.jsonl", "--experts", "8", "--out", "./--s.eplb",
            cwd=workdir.path))
    assert (workdir / "--s.eplb").exists()


def test_several_files_after_one_flag(eplb, workdir, counts, trace):
    other = workdir.counts(README_WEIGHTS, "d.json")
    ok(eplb("plan", "--counts", counts, other, *README_ARGS, "--robust"))
    ok(eplb("plan", "--counts", counts, "--counts", other, *README_ARGS, "--robust"))
    second = workdir.write_text("u.jsonl", TRACE)
    ok(eplb("record", "--trace", trace, second, "--experts", "8", "--out", workdir / "s.eplb"))


def test_single_file_options_do_not_take_the_next_option(eplb, workdir, snapshot):
    refused(eplb, workdir, "plot", snapshot, "--counts", "--out", "x.svg",
            fragments=["--counts", "'--out' looks like an option"])


# --- 2. Unknown short options ------------------------------------------------------------------


@pytest.mark.parametrize("args,word", [
    (["-r", "16", "--counts", "c.json", "--gpus", "8"], "-r"),
    (["--counts", "c.json", "-x", *README_ARGS], "-x"),
    (["--counts", "c.json", *README_ARGS, "-q=1"], "-q"),
])
def test_unknown_short_option_in_plan(eplb, workdir, counts, args, word):
    message = refused(eplb, workdir, "plan", *args)
    assert message == f"unknown option '{word}' for 'eplb plan' (see 'eplb plan --help')"


def test_short_and_long_unknown_options_read_alike(eplb, workdir, counts, trace):
    for command, rest in [("plan", ["--counts", counts, *README_ARGS]),
                          ("record", ["--trace", trace, "--experts", "8", "--out", "s.eplb"]),
                          ("inspect", ["p.eplb"]), ("demo", [])]:
        short = refused(eplb, workdir, command, *rest, "-z")
        long = refused(eplb, workdir, command, *rest, "--zzzz")
        assert short == long.replace("--zzzz", "-z")
        assert short == f"unknown option '-z' for 'eplb {command}' (see 'eplb {command} --help')"
        assert "not expected" not in short


def test_short_option_close_to_a_long_one(eplb, workdir, counts):
    refused(eplb, workdir, "plan", "--counts", counts, "--replicas", "16", "-gpus", "8",
            fragments=["unknown option '-gpus'", "did you mean '--gpus'?"])


def test_unknown_option_before_the_command(eplb, workdir):
    for word in ("-x", "--verbose"):
        message = refused(eplb, workdir, word, "plan")
        assert message == f"unknown option '{word}' for 'eplb' (see 'eplb --help')"


def test_negative_numbers_are_values_not_options(eplb, workdir, counts):
    refused(eplb, workdir, "plan", "--counts", counts, *README_ARGS, "--threads", "-1",
            fragments=["--threads: -1 is below 1"])
    refused(eplb, workdir, "record", "--trace", "t.jsonl", "--experts", "8", "--out", "s.eplb",
            "--window", "decay", "--decay", "-0.5", fragments=["--decay: -0.5 is outside (0, 1]"])


def test_leading_zeros_are_decimal(eplb, workdir, counts, snapshot):
    # CLI11 alone reads "010" as octal 8: whole numbers are normalised first.
    report = json.loads(ok(eplb("plan", "--counts", counts, "--replicas", "016", "--groups", "04",
                                "--nodes", "02", "--gpus", "08", "--json")).stdout)
    assert (report["num_physical_experts"], report["num_gpus"], report["num_nodes"]) == (16, 8, 2)
    assert json.loads(ok(eplb("demo", "--seed", "010", "--json")).stdout)["workload"]["seed"] == 10
    listing = ok(eplb("inspect", snapshot, "--layer", "01")).stdout
    assert "layer 1" in listing and "layer 8" not in listing, listing


def test_a_number_out_of_double_range_says_so(eplb, workdir, counts, snapshot):
    for value in ["1e-400", "1e400"]:
        message = refused(eplb, workdir, "plan", "--counts", counts, *README_ARGS, "--near",
                          snapshot, "--min-balance", value,
                          fragments=[f"'{value}' is out of range"])
        assert "not a number" not in message


# --- 3. --decay is in (0, 1] ----------------------------------------------------------------------


@pytest.mark.parametrize("value,fragment", [
    ("0", "--decay: 0 is outside (0, 1]"),
    ("1.5", "--decay: 1.5 is outside (0, 1]"),
    ("0.0", "--decay: 0.0 is outside (0, 1]"),
    ("abc", "--decay: 'abc' is not a number"),
    ("nan", "--decay: 'nan' is not a number"),
])
def test_decay_outside_its_range(eplb, workdir, trace, value, fragment):
    message = refused(eplb, workdir, "record", "--trace", trace, "--experts", "8", "--out",
                      "s.eplb", "--window", "decay", "--decay", value, fragments=[fragment])
    assert "tracker" not in message and "[0, 1]" not in message


@pytest.mark.parametrize("value", ["1", "0.5", "1e-3"])
def test_decay_inside_its_range(eplb, workdir, trace, value):
    ok(eplb("record", "--trace", trace, "--experts", "8", "--out", workdir / "s.eplb",
            "--window", "decay", "--decay", value))


def test_decay_help_states_its_range(eplb):
    assert re.search(r"--decay D=0\.99 +decay: .*\(0, 1\]", ok(eplb("record", "--help")).stdout)


# --- 4. An empty file name is an error, not "no file" --------------------------------------------


def test_empty_output_names(eplb, workdir, counts, trace, snapshot):
    refused(eplb, workdir, "plan", "--counts", counts, *README_ARGS, "--out", "",
            fragments=["--out: the FILE name is empty"])
    refused(eplb, workdir, "record", "--trace", trace, "--experts", "8", "--out", "",
            fragments=["--out: the FILE name is empty"])
    refused(eplb, workdir, "plot", snapshot, "--out", "",
            fragments=["--out: the FILE name is empty"])
    refused(eplb, workdir, "convert", snapshot, "",
            fragments=["OUT: the FILE name is empty", "see 'eplb convert --help'"])


def test_empty_input_names(eplb, workdir, snapshot, counts):
    refused(eplb, workdir, "convert", "", "x.eplb", fragments=["IN: the FILE name is empty"])
    refused(eplb, workdir, "inspect", "", fragments=["FILE: the FILE name is empty"])
    refused(eplb, workdir, "plot", "", "--out", "x.svg", fragments=["FILE: the FILE name"])
    refused(eplb, workdir, "plot", snapshot, "--out", "x.svg", "--counts", "",
            fragments=["--counts: the FILE name is empty"])
    refused(eplb, workdir, "convert", snapshot, "x.eplb", "--counts", "",
            fragments=["--counts: the FILE name is empty"])
    refused(eplb, workdir, "plan", "--stats", "", *README_ARGS,
            fragments=["--stats: the FILE name is empty"])


# --- 5. --help's layout ---------------------------------------------------------------------------


def help_entries(text):
    """(names and type, description) of each option and argument line of a --help."""
    entries = []
    for line in text.splitlines():
        if not line.startswith("  ") or line.startswith("   "):
            continue
        assert len(line) > 30 and line[28:30] == "  " and line[30] != " ", (
            f"description not in its column: {line!r}")
        entries.append((line[:30].strip(), line[30:]))
    return entries


@pytest.mark.parametrize("command", COMMANDS)
def test_help_columns_align(eplb, command):
    text = ok(eplb(command, "--help")).stdout
    entries = help_entries(text)
    assert entries
    for line in text.splitlines():
        # A description pushed onto a line of its own means the column overflowed.
        assert not re.match(r" {30}\S", line), f"`eplb {command} --help`: {line!r}"
    for names, _ in entries:
        assert "Needs:" not in names and "..." not in names.replace(" ...", "", 1)
        assert ":{" not in names, f"validator text in the name column: {names!r}"


def test_list_options_show_one_type_name(eplb):
    plan = dict(help_entries(ok(eplb("plan", "--help")).stdout))
    assert "--counts FILE ..." in plan
    record = dict(help_entries(ok(eplb("record", "--help")).stdout))
    assert "--trace FILE ... REQUIRED" in record
    assert "--min-balance X" in plan and "--affinity" in plan["--min-balance X"]
    assert "--near" in plan["--min-balance X"]
    inspect = dict(help_entries(ok(eplb("inspect", "--help")).stdout))
    assert "--pairs" in inspect and "--json" in inspect["--pairs"]


def test_options_that_need_another_are_still_refused_without_it(eplb, workdir, counts, snapshot):
    refused(eplb, workdir, "plan", "--counts", counts, *README_ARGS, "--min-balance", "0.9",
            fragments=["--min-balance requires --affinity"])
    refused(eplb, workdir, "inspect", snapshot, "--pairs", fragments=["--pairs requires --json"])


# --- 6. Argument names --------------------------------------------------------------------------


@pytest.mark.parametrize("command,usage,arguments", [
    ("inspect", "Usage: eplb inspect [OPTIONS] FILE", ["FILE REQUIRED"]),
    ("plot", "Usage: eplb plot [OPTIONS] FILE", ["FILE REQUIRED"]),
    ("convert", "Usage: eplb convert [OPTIONS] IN OUT", ["IN REQUIRED", "OUT REQUIRED"]),
])
def test_argument_names_in_help(eplb, command, usage, arguments):
    text = ok(eplb(command, "--help")).stdout
    assert usage in text
    names = [names for names, _ in help_entries(text)]
    for argument in arguments:
        assert argument in names
    assert "TEXT" not in text.split("Options:")[0]


@pytest.mark.parametrize("args,fragment", [
    (["inspect"], "FILE is required: the snapshot file"),
    (["plot", "--out", "x.svg"], "FILE is required: the placement file"),
    (["convert"], "IN is required: the placement file"),
    (["convert", "p.eplb"], "OUT is required: the file to write"),
])
def test_missing_arguments_are_named(eplb, workdir, args, fragment):
    message = refused(eplb, workdir, *args, fragments=[fragment, f"see 'eplb {args[0]} --help'"])
    assert not message.startswith("file ")


@pytest.mark.parametrize("args,fragment", [
    (["demo", "--seed"], "--seed needs a value (S)"),
    (["plan", "--counts", "x.json", "--gpus"], "--gpus needs a value (G)"),
    (["record", "--trace", "t.jsonl", "--out", "s.eplb", "--window"],
     "--window needs a value (KIND)"),
])
def test_an_option_without_its_value_is_named(eplb, workdir, args, fragment):
    # Not CLI11's "--seed: 1 required S missing".
    message = refused(eplb, workdir, *args, fragments=[fragment, f"see 'eplb {args[0]} --help'"])
    assert "1 required" not in message


# A word no argument takes: the message says what the command takes instead of CLI11's "The
# following argument was not expected" (or, with a required option missing, "--replicas is
# required").
@pytest.mark.parametrize("args,word,hint", [
    (["plan", "logical_count.json", "--replicas", "16", "--gpus", "8"], "logical_count.json",
     "plan takes its inputs as options: --counts FILE... or --stats FILE"),
    (["plan", "logical_count.json"], "logical_count.json", "--counts FILE... or --stats FILE"),
    (["record", "t.jsonl", "--experts", "3", "--out", "s.eplb"], "t.jsonl",
     "record takes its inputs as options: --trace FILE..."),
    (["demo", "3"], "3", "demo takes no arguments"),
    (["algorithms", "list"], "list", "algorithms takes no arguments"),
    (["inspect", "a.eplb", "b.eplb"], "b.eplb", "inspect takes one argument"),
    (["convert", "a.eplb", "b.json", "c.json"], "c.json",
     "convert takes two arguments, IN and OUT"),
    (["plot", "a.eplb", "a.svg"], "a.svg", "plot takes one argument, FILE; the SVG is --out FILE"),
    (["migrate", "old.eplb", "new.eplb", "serve.eplb"], "serve.eplb",
     "migrate takes two arguments, OLD and NEW; the placement to serve afterwards is --out FILE"),
])
def test_unexpected_arguments_say_what_the_command_takes(eplb, workdir, args, word, hint):
    message = refused(eplb, workdir, *args,
                      fragments=[f"unexpected argument '{word}' for 'eplb {args[0]}'", hint,
                                 f"see 'eplb {args[0]} --help'"])
    assert "not expected" not in message and "is required" not in message


def test_an_unknown_option_is_named_before_an_unexpected_argument(eplb, workdir):
    refused(eplb, workdir, "plan", "x.json", "--count", "y.json", "--replicas", "16", "--gpus", "8",
            fragments=["unknown option '--count'", "did you mean '--counts'?"])


# --- 7. --help states defaults and limits ------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_valued_option_states_its_default(eplb, command):
    for names, description in help_entries(ok(eplb(command, "--help")).stdout):
        parts = names.split()
        if len(parts) < 2 or not parts[0].startswith("--") or "REQUIRED" in parts:
            continue  # a flag, an argument or a required option
        if parts[1] in ("FILE", "TEXT"):
            continue  # absent: no such file or label
        assert "=" in parts[1] or "default" in description, (
            f"`eplb {command} --help`: {names} states no default")


@pytest.mark.parametrize("command,option,fragment", [
    ("convert", "--nodes N", "default: from a snapshot"),
    ("convert", "--experts E", "default: from a snapshot"),
    ("convert", "--gpus G", "default: from the file"),
    ("convert", "--dense-layers K=0", ""),
    ("plot", "--nodes N", "default: from a snapshot"),
    ("plot", "--experts E", "default: from a snapshot"),
    ("plot", "--dense-layers K=0", ""),
    ("inspect", "--layer N", "default: summed over layers"),
    ("plan", "--threads N", "default: this machine's cores"),
    ("plan", "--min-balance X", "[0.01, 1]"),
    ("plan", "--cross-node-budget N=0", "balanced-relaxed"),
    ("record", "--window-batches W=64", "at most 1048576"),
    ("record", "--top-k K", "at most 1024"),
])
def test_help_states_defaults_and_limits(eplb, command, option, fragment):
    entries = dict(help_entries(ok(eplb(command, "--help")).stdout))
    assert option in entries, f"{option} not in `eplb {command} --help`: {sorted(entries)}"
    assert fragment in entries[option]


@pytest.mark.parametrize("args,fragment", [
    (["plan", "--counts", "c.json", *README_ARGS, "--threads", "257"],
     "--threads: 257 is above 256"),
    (["plan", "--stats", "s.eplb", *README_ARGS, "--affinity", "--min-balance", "0.001"],
     "--min-balance: 0.001 is outside [0.01, 1]"),
    (["record", "--trace", "t.jsonl", "--experts", "8", "--out", "s.eplb", "--window", "sliding",
      "--window-batches", str(2**20 + 1)], "--window-batches: 1048577 is above 1048576"),
])
def test_stated_limits_are_the_checked_ones(eplb, workdir, counts, trace, args, fragment):
    refused(eplb, workdir, *args, fragments=[fragment])


# --- 8. Checks of options among themselves, before any file is read ------------------------------


def test_replicas_must_be_a_multiple_of_gpus(eplb, workdir):
    # The load file does not exist: the options are checked first, in their own terms.
    message = refused(eplb, workdir, "plan", "--counts", "missing.json", "--replicas", "100",
                      "--gpus", "32", "--out", "p.json",
                      fragments=["--replicas (100) must be a multiple of --gpus (32)"])
    assert "num_" not in message


def test_gpus_must_be_a_multiple_of_nodes(eplb, workdir):
    message = refused(eplb, workdir, "plan", "--counts", "missing.json", "--replicas", "24",
                      "--gpus", "6", "--nodes", "4",
                      fragments=["--gpus (6) must be a multiple of --nodes (4)"])
    assert "num_" not in message


def test_long_labels_name_the_option(eplb, workdir, counts, trace, snapshot):
    for args in (["plan", "--counts", counts, *README_ARGS, "--out", "q.eplb"],
                 ["convert", snapshot, "q.eplb"],
                 ["record", "--trace", trace, "--experts", "8", "--out", "q.eplb"]):
        refused(eplb, workdir, *args, "--label", LONG_LABEL,
                fragments=["--label is 300 bytes long; at most 255 are allowed"])
        ok(eplb(*args, "--label", "y" * 255, cwd=workdir.path))
        (workdir / "q.eplb").unlink()


# --- 9. --cross-node-budget is balanced-relaxed's ------------------------------------------------


@pytest.mark.parametrize("algorithm", [None, "default", "deepseek", "trivial", "balanced",
                                       "balanced-hierarchical"])
def test_cross_node_budget_with_another_algorithm(eplb, workdir, algorithm):
    chosen = [] if algorithm is None else ["--algorithm", algorithm]
    # The default is not balanced-relaxed: a budget with no --algorithm is refused too.
    expected = "balanced" if algorithm in (None, "default") else algorithm
    refused(eplb, workdir, "plan", "--counts", "missing.json", *README_ARGS, *chosen,
            "--cross-node-budget", "2",
            fragments=["--cross-node-budget applies to balanced-relaxed only",
                       f"(--algorithm is {expected})"])


def test_default_algorithm_is_not_balanced_relaxed(eplb):
    listing = ok(eplb("algorithms")).stdout
    assert re.search(r"^balanced \(default\)", listing, re.M), listing


def test_cross_node_budget_where_it_applies(eplb, workdir, counts):
    ok(eplb("plan", "--counts", counts, *README_ARGS, "--cross-node-budget", "0"))
    ok(eplb("plan", "--counts", counts, *README_ARGS, "--algorithm", "balanced-relaxed",
            "--cross-node-budget", "2"))
    refused(eplb, workdir, "plan", "--counts", "missing.json", *README_ARGS, "--algorithm",
            "balanced-relaxed", fragments=["balanced-relaxed needs --cross-node-budget N > 0"])


@pytest.mark.parametrize("command", [[], ["plan"], ["record"], ["migrate"]])
def test_help_command_is_the_help_flag(eplb, command):
    # "eplb help [COMMAND]" prints what "eplb [COMMAND] --help" prints.
    assert ok(eplb("help", *command)).stdout == ok(eplb(*command, "--help")).stdout


def test_help_command_errors(eplb):
    usage_error(eplb("help", "frob"), "unknown command 'frob'", "known: plan", "see 'eplb --help'")
    usage_error(eplb("help", "plan", "extra"), "help takes at most one command, not 'extra'")
