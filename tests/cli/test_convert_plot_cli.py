"""`eplb convert` (SGLang map, vLLM-Ascend map, .eplb snapshot) and `eplb plot` (SVG).

Round trips are checked on the files' content with Python's json; the plot is parsed with
xml.etree and its cells and bars are counted and compared with GPU loads recomputed here from
the placement and the load file, independently of the library.
"""

import json
import re
import xml.etree.ElementTree as ET

import pytest

from cli_support import README_ARGS, README_DEEPSEEK, README_PHY2LOG, README_WEIGHTS, assert_error

SVG = "{http://www.w3.org/2000/svg}"
TOPOLOGY = ["--gpus", "8", "--nodes", "2"]


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstderr: {result.stderr}"
    assert result.stderr == ""
    return result


def sglang_rows(path):
    document = json.loads(path.read_text())
    assert list(document) == ["physical_to_logical_map"], "exactly one key"
    return document["physical_to_logical_map"]


def vllm_rows(path):
    """vLLM-Ascend's map as phy2log rows, after checking its structure."""
    document = json.loads(path.read_text())
    layers = document["layer_list"]
    assert document["moe_layer_count"] == len(layers)
    rows = []
    for index, layer in enumerate(layers):
        assert layer["layer_id"] == index
        devices = layer["device_list"]
        assert layer["device_count"] == len(devices)
        assert [d["device_id"] for d in devices] == list(range(len(devices)))
        assert len({len(d["device_expert"]) for d in devices}) == 1, "uneven devices"
        rows.append([e for d in devices for e in d["device_expert"]])
    return rows


@pytest.fixture
def readme_map(eplb, workdir, readme_counts):
    """DeepSeek's README example planned by the reference algorithm, as SGLang's map."""
    out = workdir / "plan.json"
    ok(eplb("plan", "--counts", readme_counts, *README_DEEPSEEK, "--out", out))
    assert sglang_rows(out) == README_PHY2LOG
    return out


@pytest.fixture
def readme_snapshot(eplb, workdir, readme_map, readme_counts):
    """The README placement as a snapshot carrying its load statistics."""
    out = workdir / "plan.eplb"
    ok(eplb("convert", readme_map, out, *TOPOLOGY, "--counts", readme_counts, "--label", "readme"))
    return out


# --- convert: round trips -----------------------------------------------------------------------


def test_sglang_to_vllm_ascend_and_back(eplb, workdir, readme_map):
    vllm = workdir / "map.vllm.json"
    result = ok(eplb("convert", readme_map, vllm, "--to", "vllm-ascend", *TOPOLOGY))
    assert "SGLang map" in result.stdout and "vLLM-Ascend map" in result.stdout
    assert "2 layers x 12 experts, 16 slots on 8 GPUs in 2 nodes" in result.stdout
    assert vllm_rows(vllm) == README_PHY2LOG
    document = json.loads(vllm.read_text())
    assert document["layer_list"][0]["device_list"][0]["device_expert"] == [5, 6]

    back = workdir / "back.json"
    ok(eplb("convert", vllm, back, "--nodes", "2"))  # .json without --to: SGLang
    assert sglang_rows(back) == README_PHY2LOG
    assert back.read_bytes() == readme_map.read_bytes()


def test_dense_layers_round_trip(eplb, workdir, readme_counts):
    plan = workdir / "dense.json"
    ok(eplb("plan", "--counts", readme_counts, *README_DEEPSEEK, "--dense-layers", "3", "--out",
            plan))
    rows = sglang_rows(plan)
    assert len(rows) == 5
    assert rows[:3] == [[slot % 12 for slot in range(16)]] * 3
    assert rows[3:] == README_PHY2LOG

    # The dense rows are skipped when reading and written again when writing SGLang's map.
    vllm = workdir / "dense.vllm.json"
    ok(eplb("convert", plan, vllm, "--to", "vllm-ascend", *TOPOLOGY, "--dense-layers", "3"))
    assert vllm_rows(vllm) == README_PHY2LOG
    again = workdir / "again.json"
    result = ok(eplb("convert", vllm, again, "--dense-layers", "3"))
    assert "5 rows with 3 dense" in result.stdout
    assert again.read_bytes() == plan.read_bytes()
    # Without --dense-layers, the 5-row map's trivial first rows are refused for vLLM-Ascend's
    # map (MoE layers only); --dense-layers 0 keeps them as 5 MoE layers.
    five = workdir / "five.vllm.json"
    assert_error(eplb("convert", plan, five, "--to", "vllm-ascend", "--gpus", "8"), 2,
                 "the first 3 layers have the trivial placement", "pass --dense-layers 3",
                 "--dense-layers 0 to keep them")
    assert not five.exists()
    ok(eplb("convert", plan, five, "--to", "vllm-ascend", "--gpus", "8", "--dense-layers", "0"))
    assert len(vllm_rows(five)) == 5


def test_dropping_dense_layers_still_lists_what_the_map_does_not_record(eplb, workdir):
    # A snapshot planned from a load file with 3 idle leading rows (SGLang's 61-row files): the
    # vLLM-Ascend map without them records neither the algorithm nor the groups nor the nodes.
    counts = workdir.counts([[0] * 12] * 3 + README_WEIGHTS, name="dense_counts.json")
    snapshot = workdir / "dense.eplb"
    ok(eplb("plan", "--counts", counts, *README_DEEPSEEK, "--out", snapshot))
    out = workdir / "moe_only.json"
    summary = json.loads(ok(eplb("convert", snapshot, out, "--to", "vllm-ascend",
                                 "--dense-layers", "3", "--json")).stdout)
    assert summary["dense_layers_dropped"] == 3
    assert set(summary["not_recorded"]) == {"loads", "algorithm", "num_groups", "num_nodes"}
    text = ok(eplb("convert", snapshot, out, "--to", "vllm-ascend", "--dense-layers", "3")).stdout
    assert ("Not recorded in a vLLM-Ascend map: the load statistics, the algorithm, the expert "
            "groups, the node count") in text
    assert vllm_rows(out) == README_PHY2LOG


def test_dense_layers_refused_on_a_plan_that_has_them(eplb, workdir):
    # A snapshot planned from SGLang's own load file holds the dense rows (no load) already.
    zeros = [0] * 12
    counts = workdir.counts([zeros, README_WEIGHTS[0], README_WEIGHTS[1]], "sglang.json")
    snapshot = workdir / "p.eplb"
    ok(eplb("plan", "--counts", counts, *README_DEEPSEEK, "--out", snapshot))
    out = workdir / "sglang_map.json"
    assert_error(eplb("convert", snapshot, out, "--dense-layers", "1"), 2,
                 "the first layer has no load", "leave it out")
    assert not out.exists()
    ok(eplb("convert", snapshot, out))
    assert len(sglang_rows(out)) == 3


def test_vllm_ascend_refuses_leading_dense_rows_without_dense_layers(eplb, workdir):
    # A plan of SGLang's logical_count keeps the dense layers' rows (no load, trivial placement);
    # vLLM-Ascend's map holds MoE layers only, so writing them would shift every MoE layer.
    zeros = [0] * 12
    counts = workdir.counts([zeros, zeros, zeros, *README_WEIGHTS], "sglang.json")
    snapshot = workdir / "p.eplb"
    ok(eplb("plan", "--counts", counts, *README_DEEPSEEK, "--out", snapshot))
    out = workdir / "expert_map.json"
    message = assert_error(eplb("convert", snapshot, out, "--to", "vllm-ascend"), 2,
                           "the first 3 layers have no load", "MoE layers only",
                           "pass --dense-layers 3", "--dense-layers 0 to keep them")
    assert str(snapshot) in message
    assert not out.exists()
    result = ok(eplb("convert", snapshot, out, "--to", "vllm-ascend", "--dense-layers", "3"))
    assert "without the 3 dense layers" in result.stdout
    assert vllm_rows(out) == README_PHY2LOG
    ok(eplb("convert", snapshot, out, "--to", "vllm-ascend", "--dense-layers", "0"))
    assert len(vllm_rows(out)) == 5

    # Without loads (SGLang's map, a snapshot of it), the dense rows are told by their trivial
    # placement.
    sglang_map = workdir / "p.json"
    ok(eplb("convert", snapshot, sglang_map))
    bare = workdir / "bare.eplb"
    ok(eplb("convert", sglang_map, bare, *TOPOLOGY))
    for source, extra in ((sglang_map, TOPOLOGY), (bare, [])):
        assert_error(eplb("convert", source, out, "--to", "vllm-ascend", *extra), 2,
                     "the first 3 layers have the trivial placement", "pass --dense-layers 3")
        ok(eplb("convert", source, out, "--to", "vllm-ascend", *extra, "--dense-layers", "3"))
        assert vllm_rows(out) == README_PHY2LOG


def test_vllm_ascend_keeps_maps_without_leading_dense_rows(eplb, workdir, readme_snapshot):
    out = workdir / "expert_map.json"
    # MoE layers only: nothing to refuse.
    ok(eplb("convert", readme_snapshot, out, "--to", "vllm-ascend"))
    assert vllm_rows(out) == README_PHY2LOG
    # No layer has load, or every layer is trivial: a default placement, not a plan with dense
    # rows before its MoE layers.
    zeros = workdir.counts([[0] * 12] * 2, "zeros.json")
    idle = workdir / "idle.eplb"
    ok(eplb("plan", "--counts", zeros, *README_DEEPSEEK, "--out", idle))
    ok(eplb("convert", idle, out, "--to", "vllm-ascend"))
    assert vllm_rows(out) == [[slot % 12 for slot in range(16)]] * 2
    # A layer without load after the first one is not a leading dense row.
    middle = workdir.counts([README_WEIGHTS[0], [0] * 12, README_WEIGHTS[1]], "middle.json")
    plan = workdir / "middle.eplb"
    ok(eplb("plan", "--counts", middle, *README_DEEPSEEK, "--out", plan))
    ok(eplb("convert", plan, out, "--to", "vllm-ascend"))
    assert len(vllm_rows(out)) == 3


def test_sglang_map_refuses_dense_layers_on_a_map_that_has_their_rows(eplb, workdir):
    # vLLM-Ascend's map written with the dense rows kept (--dense-layers 0) has 3 + 2 layers;
    # adding 3 dense rows for SGLang's map would make 8 rows for a model of 5.
    zeros = [0] * 12
    counts = workdir.counts([zeros, zeros, zeros, *README_WEIGHTS], "sglang.json")
    snapshot = workdir / "p.eplb"
    ok(eplb("plan", "--counts", counts, *README_DEEPSEEK, "--out", snapshot))
    kept = workdir / "kept.vllm.json"
    ok(eplb("convert", snapshot, kept, "--to", "vllm-ascend", "--dense-layers", "0"))
    out = workdir / "sglang_map.json"
    assert_error(eplb("convert", kept, out, "--dense-layers", "3"), 2,
                 "the first 3 layers have the trivial placement",
                 "the input already has them", "leave it out")
    assert not out.exists()
    ok(eplb("convert", kept, out))
    assert len(sglang_rows(out)) == 5
    # A snapshot of it, without loads: the same.
    bare = workdir / "bare.eplb"
    ok(eplb("convert", kept, bare))
    assert_error(eplb("convert", bare, out, "--dense-layers", "3"), 2, "the input already has them")
    # MoE layers only: the 3 rows are added.
    moe = workdir / "moe.vllm.json"
    ok(eplb("convert", snapshot, moe, "--to", "vllm-ascend", "--dense-layers", "3"))
    result = ok(eplb("convert", moe, out, "--dense-layers", "3"))
    assert "5 rows with 3 dense" in result.stdout
    assert sglang_rows(out)[3:] == README_PHY2LOG


def test_snapshot_round_trip(eplb, workdir, readme_map, readme_snapshot):
    assert readme_snapshot.read_bytes()[:5] == b"\x89EPLB"
    for target, read in (("sglang", sglang_rows), ("vllm-ascend", vllm_rows)):
        out = workdir / f"from-snapshot.{target}.json"
        result = ok(eplb("convert", readme_snapshot, out, "--to", target))
        assert read(out) == README_PHY2LOG
        # What the JSON formats cannot hold is said, not silently lost.
        assert "the load statistics" in result.stdout
        assert "the node count" in result.stdout
    # Snapshot to snapshot keeps the statistics: plot needs no --counts.
    copy = workdir / "copy.eplb"
    ok(eplb("convert", readme_snapshot, copy))
    ok(eplb("plot", copy, "--out", workdir / "copy.svg"))


def test_snapshot_recognised_by_content(eplb, workdir, readme_snapshot):
    renamed = workdir / "snapshot.bin"
    renamed.write_bytes(readme_snapshot.read_bytes())
    out = workdir / "out.json"
    ok(eplb("convert", renamed, out))
    assert sglang_rows(out) == README_PHY2LOG


def test_expert_count_can_be_given(eplb, workdir):
    # --experts beyond the largest id: the missing expert is named.
    path = workdir.write_json("m.json", {"physical_to_logical_map": [[0, 1, 2, 0]]})
    result = eplb("convert", path, workdir / "o.json", "--gpus", "2", "--experts", "4")
    assert_error(result, 2, "physical_to_logical_map[0] has no slot for logical expert 3")
    ok(eplb("convert", path, workdir / "o.json", "--gpus", "2", "--experts", "3"))


def test_vllm_ascend_without_optional_keys(eplb, workdir):
    # vLLM-Ascend's own test files omit layer_id and device_id.
    path = workdir.write_json("v.json", {"moe_layer_count": 1, "layer_list": [
        {"device_count": 2, "device_list": [{"device_expert": [0, 1]},
                                            {"device_expert": [2, 3]}]}]})
    out = workdir / "s.json"
    ok(eplb("convert", path, out))
    assert sglang_rows(out) == [[0, 1, 2, 3]]


# --- convert: errors ----------------------------------------------------------------------------


def test_sglang_input_needs_gpus(eplb, workdir, readme_map):
    result = eplb("convert", readme_map, workdir / "x.eplb")
    assert_error(result, 2, "SGLang map", "--gpus")
    assert not (workdir / "x.eplb").exists()


@pytest.mark.parametrize("args,fragments", [
    (["--to", "parquet"], ["--to"]),
    (["--gpus", "3"], ["not a multiple of num_gpus (3)"]),
    (["--gpus", "8", "--nodes", "3"], ["num_gpus (8) must be a multiple of num_nodes (3)"]),
    (["--gpus", "8", "--experts", "11"], ["= 11 is not a logical expert id in [0, 11)"]),
    (["--gpus", "8", "--experts", "17"], ["num_logical_experts (17) exceeds the 16 slots"]),
    (["--gpus", "8", "--dense-layers", "2"], ["num_dense_layers (2) leaves no MoE layer"]),
    (["--gpus", "8", "--counts", "x.json"], ["--counts", "snapshots only"]),
    (["--gpus", "0"], ["--gpus"]),
])
def test_bad_arguments(eplb, workdir, readme_map, args, fragments):
    before = workdir.listing()
    assert_error(eplb("convert", readme_map, workdir / "out.json", *args), 2, *fragments)
    assert workdir.listing() == before, "nothing written on error"


def test_output_format_must_be_known(eplb, workdir, readme_map):
    assert_error(eplb("convert", readme_map, workdir / "out.txt", "--gpus", "8"), 2,
                 "cannot tell the output format", "--to")


@pytest.mark.parametrize("document,fragments", [
    ({"logical_count": [[1, 2]]}, ["is an SGLang load file (logical_count), not a placement"]),
    ({"something": 1}, ["not a placement file", "something"]),
    ([1, 2], ["not a placement file", "array"]),
    ({"physical_to_logical_map": [[0, 1], [1]]},
     ["physical_to_logical_map[1] has 1 slots, expected 2 (as row 0)"]),
    ({"physical_to_logical_map": [[0, 1], [1, 1]]},
     ["physical_to_logical_map[1] has no slot for logical expert 0"]),
    ({"physical_to_logical_map": [[0, "1"]]},
     ["physical_to_logical_map[0][1] is a string, expected an integer expert id"]),
    ({"physical_to_logical_map": [[0, 1]], "extra": 1}, ["unexpected key 'extra'"]),
    ({"moe_layer_count": 2, "layer_list": [{"device_list": [{"device_expert": [0]}]}]},
     ["layer_list has 1 layers but moe_layer_count is 2"]),
    ({"moe_layer_count": 1, "layer_list": [{"device_list": [{"device_expert": [0, 1]},
                                                            {"device_expert": [1]}]}]},
     ["layer_list[0].device_list[1].device_expert has 1 experts, expected 2"]),
])
def test_bad_input_documents(eplb, workdir, document, fragments):
    path = workdir.write_json("in.json", document)
    result = eplb("convert", path, workdir / "out.json", "--gpus", "2")
    message = assert_error(result, 2, *fragments)
    assert str(path) in message


def test_unreadable_inputs(eplb, workdir):
    assert_error(eplb("convert", workdir / "missing.json", workdir / "o.json"), 2, "cannot open")
    garbage = workdir.write_text("garbage.json", "{not json")
    assert_error(eplb("convert", garbage, workdir / "o.json"), 2, "neither an .eplb snapshot")
    assert_error(eplb("convert", workdir.path, workdir / "o.json"), 2, "directory")


def test_damaged_snapshots(eplb, workdir, readme_snapshot):
    data = readme_snapshot.read_bytes()
    truncated = workdir / "truncated.eplb"
    truncated.write_bytes(data[: len(data) // 2])
    assert_error(eplb("convert", truncated, workdir / "o.json"), 2, str(truncated))
    flipped = bytearray(data)
    flipped[len(data) - 5] ^= 0xFF
    damaged = workdir / "damaged.eplb"
    damaged.write_bytes(bytes(flipped))
    assert_error(eplb("convert", damaged, workdir / "o.json"), 2, str(damaged))
    assert not (workdir / "o.json").exists()


def test_snapshot_topology_must_agree(eplb, workdir, readme_snapshot):
    assert_error(eplb("convert", readme_snapshot, workdir / "o.json", "--gpus", "4"), 2,
                 "--gpus 4 disagrees", "8 GPUs", "(pass --gpus 8)")
    assert_error(eplb("convert", readme_snapshot, workdir / "o.json", "--nodes", "1"), 2,
                 "--nodes 1 disagrees", "(pass --nodes 2)")
    # --gpus is named first: with both wrong, it is the one to fix first.
    assert_error(eplb("convert", readme_snapshot, workdir / "o.json", "--nodes", "1", "--gpus",
                      "4"), 2, "--gpus 4 disagrees")
    assert_error(eplb("convert", readme_snapshot, workdir / "o.json", "--to", "vllm-ascend",
                      "--dense-layers", "3"), 2, "--dense-layers 3", "no MoE layer would be left")
    assert_error(eplb("convert", readme_snapshot, workdir / "o.eplb", "--dense-layers", "1"), 2,
                 "--dense-layers applies to SGLang maps")


def test_counts_must_match_the_placement(eplb, workdir, readme_map):
    counts = workdir.counts([[1] * 12])
    assert_error(eplb("convert", readme_map, workdir / "x.eplb", *TOPOLOGY, "--counts", counts), 2,
                 "1 layers x 12 experts", "2 x 12")


def test_unwritable_output_is_a_failure(eplb, workdir, readme_map):
    result = eplb("convert", readme_map, workdir / "no" / "such" / "dir.json", *TOPOLOGY)
    assert_error(result, 1, "dir.json")


# --- plot ---------------------------------------------------------------------------------------


def gpu_loads(phy2log, weights, gpus):
    """Per-GPU loads [layers][gpus]: each expert's load split evenly over its replicas."""
    out = []
    for row, w in zip(phy2log, weights):
        per_gpu = len(row) // gpus
        loads = [0.0] * gpus
        for slot, expert in enumerate(row):
            loads[slot // per_gpu] += w[expert] / row.count(expert)
        out.append(loads)
    return out


def parse_svg(path):
    root = ET.parse(path).getroot()  # well-formed XML or an exception
    assert root.tag == SVG + "svg"
    return root


def rects(root, cls):
    return [r for r in root.iter(SVG + "rect") if r.get("class") == cls]


def texts(root):
    return ["".join(t.itertext()) for t in root.iter(SVG + "text")]


def test_plot_of_a_snapshot(eplb, workdir, readme_snapshot):
    out = workdir / "plot.svg"
    result = ok(eplb("plot", readme_snapshot, "--out", out))
    assert re.search(r"balancedness 0\.\d{4} before \(no replication\) -> 0\.\d{4} after",
                     result.stdout)
    root = parse_svg(out)
    assert len(rects(root, "hm-cell")) == 2 * 2 * 8  # two maps of 2 layers x 8 GPUs
    before = rects(root, "bar-before")
    after = rects(root, "bar-after")
    assert len(before) == len(after) == 8
    words = " ".join(texts(root))
    assert "readme" in words  # the snapshot's label
    assert "balancedness" in words and "GPU" in words and "MoE layer" in words

    # Bars are proportional to the GPU loads summed over layers, recomputed here.
    expected = [sum(column) for column in zip(*gpu_loads(README_PHY2LOG, README_WEIGHTS, 8))]
    heights = [float(r.get("height")) for r in after]
    scale = max(heights) / max(expected)
    for height, load in zip(heights, expected):
        assert height == pytest.approx(load * scale, abs=0.02)
    # "Before" puts experts in blocks of 12 / 8 per GPU: expert e on GPU e * 8 // 12.
    unbalanced = [0.0] * 8
    for weights in README_WEIGHTS:
        for expert, load in enumerate(weights):
            unbalanced[expert * 8 // 12] += load
    for rect, load in zip(before, unbalanced):
        assert float(rect.get("height")) == pytest.approx(load * scale, abs=0.02)
    # Cells name their layer, GPU and ratio to the layer mean.
    first = rects(root, "hm-cell")[0].find(SVG + "title").text
    assert re.match(r"layer 0, GPU 0: \d+\.\d{3}\u00d7 mean", first), first


def test_plot_one_layer_from_json_and_counts(eplb, workdir, readme_map, readme_counts):
    out = workdir / "layer1.svg"
    ok(eplb("plot", readme_map, *TOPOLOGY, "--counts", readme_counts, "--layer", "1", "--out",
            out))
    root = parse_svg(out)
    assert len(rects(root, "hm-cell")) == 32
    assert "Per-GPU load in MoE layer 1" in texts(root)
    expected = gpu_loads(README_PHY2LOG, README_WEIGHTS, 8)[1]
    heights = [float(r.get("height")) for r in rects(root, "bar-after")]
    scale = max(heights) / max(expected)
    for height, load in zip(heights, expected):
        assert height == pytest.approx(load * scale, abs=0.02)
    # The summary gives that layer's balancedness next to the means over the layers.
    unbalanced = [0.0] * 8
    for expert, load in enumerate(README_WEIGHTS[1]):
        unbalanced[expert * 8 // 12] += load
    document = json.loads(ok(eplb("plot", readme_map, *TOPOLOGY, "--counts", readme_counts,
                                  "--layer", "1", "--out", out, "--json")).stdout)
    assert document["layer"] == 1
    assert document["layer_balancedness_after"] == pytest.approx(
        sum(expected) / 8 / max(expected))
    assert document["layer_balancedness_before"] == pytest.approx(
        sum(unbalanced) / 8 / max(unbalanced))
    text = ok(eplb("plot", readme_map, *TOPOLOGY, "--counts", readme_counts, "--layer", "1",
                   "--out", out)).stdout
    assert (f"; layer 1: {document['layer_balancedness_before']:.4f} -> "
            f"{document['layer_balancedness_after']:.4f}") in text
    whole = json.loads(ok(eplb("plot", readme_map, *TOPOLOGY, "--counts", readme_counts,
                               "--out", out, "--json")).stdout)
    assert whole["layer_balancedness_after"] is None
    assert whole["balancedness_after"] == document["balancedness_after"]


def test_plot_with_dense_rows_in_map_and_counts(eplb, workdir):
    # SGLang's files of a model with 1 dense layer: the map and the counts both have its row.
    counts = workdir.counts([[0] * 4] + [[5, 1, 1, 1], [1, 1, 1, 9]], name="dense_counts.json")
    plan = workdir / "dense.json"
    ok(eplb("plan", "--counts", counts, "--replicas", "6", "--gpus", "2", "--out", plan))
    out = workdir / "dense.svg"
    ok(eplb("plot", plan, "--gpus", "2", "--dense-layers", "1", "--counts", counts, "--out", out))
    assert len(rects(parse_svg(out), "hm-cell")) == 2 * 2 * 2


def test_counts_with_dense_rows_for_a_plan_without_them_suggest_dense_layers(eplb, workdir):
    # A plan of the 2 MoE layers, and SGLang's counts with the dense layer's row first: the
    # mismatch names the option that fixes it, which then works.
    moe = workdir.counts([[5, 1, 1, 1], [1, 1, 1, 9]], name="moe_counts.json")
    plan = workdir / "moe.eplb"
    ok(eplb("plan", "--counts", moe, "--replicas", "6", "--gpus", "2", "--out", plan))
    counts = workdir.counts([[0] * 4, [5, 1, 1, 1], [1, 1, 1, 9]], name="dense_counts.json")
    out = workdir / "moe.svg"
    assert_error(eplb("plot", plan, "--counts", counts, "--out", out), 2,
                 "3 layers x 4 experts, but", "if its first row is a dense layer",
                 "pass --dense-layers 1")
    assert not out.exists()
    ok(eplb("plot", plan, "--counts", counts, "--dense-layers", "1", "--out", out))
    # Not for an SGLang map, whose rows --dense-layers would drop too.
    sglang = workdir / "moe.json"
    ok(eplb("convert", plan, sglang))
    message = assert_error(eplb("plot", sglang, "--gpus", "2", "--counts", counts, "--out", out),
                           2, "3 layers x 4 experts, but")
    assert "--dense-layers" not in message


def test_plot_large_deployment(eplb, workdir):
    # 61 layers x 64 experts on 32 GPUs in 4 nodes: every cell and bar is drawn.
    import random

    rng = random.Random(5)
    weights = [[rng.randint(0, 1000) for _ in range(64)] for _ in range(61)]
    counts = workdir.counts(weights)
    snapshot = workdir / "big.eplb"
    plan = workdir / "big.json"
    ok(eplb("plan", "--counts", counts, "--replicas", "96", "--gpus", "32", "--nodes", "4",
            "--out", plan))
    ok(eplb("convert", plan, snapshot, "--gpus", "32", "--nodes", "4", "--counts", counts))
    out = workdir / "big.svg"
    ok(eplb("plot", snapshot, "--out", out))
    root = parse_svg(out)
    assert len(rects(root, "hm-cell")) == 2 * 61 * 32
    assert len(rects(root, "bar-after")) == 32


def test_plot_errors(eplb, workdir, readme_map, readme_snapshot, readme_counts):
    assert_error(eplb("plot", readme_map, *TOPOLOGY, "--out", workdir / "x.svg"), 2,
                 "carries no load statistics", "--counts")
    assert_error(eplb("plot", readme_snapshot, "--out", workdir / "x.png"), 2, ".svg")
    assert_error(eplb("plot", readme_snapshot, "--layer", "2", "--out", workdir / "x.svg"), 2,
                 "--layer 2 is out of range", "2 layers")
    wrong = workdir.counts([[1] * 11, [1] * 11], name="wrong.json")
    assert_error(eplb("plot", readme_map, *TOPOLOGY, "--counts", wrong, "--out",
                      workdir / "x.svg"), 2, "2 layers x 11 experts")
    assert_error(eplb("plot", readme_map, "--counts", readme_counts, "--out", workdir / "x.svg"),
                 2, "--gpus")
    assert_error(eplb("plot", readme_snapshot, "--dense-layers", "1", "--out", workdir / "x.svg"),
                 2, "--dense-layers", "nothing here uses it")
    assert not (workdir / "x.svg").exists()


def test_plan_dense_layers_default_is_zero(eplb, workdir, readme_counts):
    out = workdir / "p.json"
    ok(eplb("plan", "--counts", readme_counts, *README_ARGS, "--out", out))
    assert len(sglang_rows(out)) == 2


def test_plot_escapes_names_and_labels(eplb, workdir, readme_map, readme_counts):
    # Markup characters in a file name and a label, and a long label cut in the middle without
    # splitting a UTF-8 character: the SVG must stay well-formed.
    snapshot = workdir / "a&b<c>.eplb"
    label = "markup <&> \"quoted\" " + "\u00e9" * 80
    ok(eplb("convert", readme_map, snapshot, *TOPOLOGY, "--counts", readme_counts, "--label",
            label))
    out = workdir / "escaped.svg"
    ok(eplb("plot", snapshot, "--out", out))
    subtitle = texts(parse_svg(out))[1]
    assert subtitle.startswith("a&b<c>.eplb \u201cmarkup <&> \"quoted\" ")
    assert "..." in subtitle and "\ufffd" not in subtitle
