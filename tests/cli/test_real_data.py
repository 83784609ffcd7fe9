"""`eplb plan` on SGLang's recorded DeepSeek-V3 expert loads (in the shared reference folder,
which users' machines may not have)."""

import json

import pytest

from cli_support import algorithm_args, trivial_row

REAL = "data/real/sglang-deepseek-v3-ep-stats"
DEEPSEEK_V3 = ["--replicas", "288", "--gpus", "32", "--nodes", "4", "--groups", "8"]


@pytest.fixture
def prefill_in1024(shared_dir):
    if shared_dir is None:
        pytest.skip("EPLB_SHARED is not set: the shared data folder is absent")
    path = shared_dir / REAL / "prefill_in1024.json"
    if not path.is_file():
        pytest.skip(f"the shared data folder is absent ({path} not found)")
    return path


def test_plan_deepseek_v3_prefill(eplb, workdir, prefill_in1024):
    out = workdir / "placement.json"
    result = eplb("plan", "--counts", prefill_in1024, *DEEPSEEK_V3, "--algorithm", "deepseek",
                  "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    with open(out) as f:
        document = json.load(f)
    assert list(document) == ["physical_to_logical_map"]
    phy2log = document["physical_to_logical_map"]
    assert len(phy2log) == 61
    for layer, row in enumerate(phy2log):
        assert len(row) == 288, layer
        assert set(row) == set(range(256)), f"layer {layer}: an expert is missing"
    # DeepSeek-V3's first three layers are dense: all-zero rows, trivial placement.
    for layer in range(3):
        assert phy2log[layer] == trivial_row(288, 256), layer
    assert workdir.listing() == ["placement.json"]


def test_report_on_deepseek_v3_prefill(eplb, prefill_in1024):
    result = eplb("plan", "--counts", prefill_in1024, *DEEPSEEK_V3, "--algorithm", "deepseek",
                  "--report")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["num_layers"] == 61 and len(report["layers"]) == 61
    assert report["policy"] == "hierarchical"
    with open(prefill_in1024) as f:
        loads = json.load(f)["logical_count"]
    for layer, (entry, row) in enumerate(zip(report["layers"], loads)):
        assert entry["total_load"] == pytest.approx(sum(row)), layer
        assert 0 < entry["balancedness"] <= 1
        assert entry["max_load_over_bound"] >= 1 - 1e-12
    # Replication helps: far better balanced than the no-replication reference point.
    assert report["summary"]["balancedness"] > 0.8


def test_every_algorithm_on_deepseek_v3_prefill(eplb, workdir, prefill_in1024, algorithm_names):
    for name in algorithm_names:
        out = workdir / f"{name}.json"
        result = eplb("plan", "--counts", prefill_in1024, *DEEPSEEK_V3, *algorithm_args(name, 16),
                      "--out", out)
        assert result.returncode == 0, (name, result.stderr)
        with open(out) as f:
            phy2log = json.load(f)["physical_to_logical_map"]
        assert len(phy2log) == 61, name
        for layer, row in enumerate(phy2log):
            assert len(row) == 288 and set(row) == set(range(256)), (name, layer)
        for layer in range(3):
            assert phy2log[layer] == trivial_row(288, 256), (name, layer)
