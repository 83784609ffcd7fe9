//! JSON import/export and snapshot bytes, checked against documents written and read in Rust.
mod common;

use common::{readme_placement, WEIGHT};
use eplb::{loads_from_sglang_json, Placement, Snapshot, SnapshotOptions, Status, Tracker, Window};

/// Every integer of a JSON text, in order (the documents hold no other numbers).
fn integers(json: &str) -> Vec<i64> {
    json.split(|c: char| !c.is_ascii_digit() && c != '-')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn sglang_placement_round_trip() {
    let placement = readme_placement();
    let phy2log = placement.phy2log().unwrap();
    let json = placement.to_sglang_json(3).unwrap();
    // The document, read in Rust: 3 trivial dense rows (slot p holds p % 12), then phy2log.
    let numbers = integers(&json);
    let expected: Vec<i64> = (0..48)
        .map(|p| (p % 16) % 12)
        .chain(phy2log.iter().map(|&e| e as i64))
        .collect();
    assert_eq!(numbers, expected);
    for experts in [12, 0] {
        let back = Placement::from_sglang_json(&json, experts, 2, 8, 3).unwrap();
        assert_eq!(back.phy2log().unwrap(), phy2log);
        let info = back.info().unwrap();
        assert_eq!((info.num_layers, info.num_logical_experts), (2, 12));
        assert_eq!((info.num_nodes, info.num_gpus), (2, 8));
    }
    // A hand-written document, as bytes.
    let doc = br#"{"physical_to_logical_map": [[0, 1, 2, 0], [2, 1, 0, 1]]}"#;
    let small = Placement::from_sglang_json(doc, 0, 1, 2, 0).unwrap();
    assert_eq!(small.phy2log().unwrap(), [0, 1, 2, 0, 2, 1, 0, 1]);
    assert_eq!(small.replica_counts().unwrap(), [2, 1, 1, 1, 2, 1]);
}

#[test]
fn sglang_placement_errors() {
    let cases: [(&str, u32, Status); 5] = [
        ("not json", 0, Status::Corrupt),
        (
            r#"{"physical_to_logical_map": [[0, 1], [0]]}"#,
            0,
            Status::Corrupt,
        ),
        (
            r#"{"physical_to_logical_map": [[0, 5]]}"#,
            2,
            Status::Corrupt,
        ),
        (
            r#"{"physical_to_logical_map": [[0, 0]]}"#,
            2,
            Status::Corrupt,
        ),
        (
            r#"{"physical_to_logical_map": [[0, 1, 2]]}"#,
            0,
            Status::InvalidArgument,
        ),
    ];
    for (doc, experts, status) in cases {
        let error = Placement::from_sglang_json(doc, experts, 1, 2, 0)
            .err()
            .unwrap();
        assert_eq!(error.status, status, "{doc}: {error}");
        assert!(!error.message.is_empty());
    }
    // Skipping every row leaves nothing.
    let doc = r#"{"physical_to_logical_map": [[0, 1]]}"#;
    let error = Placement::from_sglang_json(doc, 0, 1, 2, 1).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
}

#[test]
fn vllm_ascend_round_trip() {
    let placement = readme_placement();
    let phy2log = placement.phy2log().unwrap();
    let json = placement.to_vllm_ascend_json().unwrap();
    assert!(json.contains("\"moe_layer_count\""), "{json}");
    let back = Placement::from_vllm_ascend_json(&json, 12, 2).unwrap();
    assert_eq!(back.phy2log().unwrap(), phy2log);
    assert_eq!(back.info().unwrap().num_gpus, 8);
    // vLLM-Ascend's own examples omit layer_id, device_count and device_id.
    let doc = r#"{"moe_layer_count": 1, "layer_list": [{"device_list": [
        {"device_expert": [0, 1]}, {"device_expert": [2, 0]}]}]}"#;
    let small = Placement::from_vllm_ascend_json(doc, 0, 1).unwrap();
    assert_eq!(small.phy2log().unwrap(), [0, 1, 2, 0]);
    assert_eq!(small.info().unwrap().num_gpus, 2);
    let ragged = r#"{"moe_layer_count": 1, "layer_list": [{"device_list": [
        {"device_expert": [0, 1]}, {"device_expert": [2]}]}]}"#;
    let error = Placement::from_vllm_ascend_json(ragged, 0, 1)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::Corrupt, "{error}");
}

#[test]
fn sglang_loads() {
    let doc = r#"{"logical_count": [[1, 2, 3], [4, 5, 6.5]], "rank": 0}"#;
    let matrix = loads_from_sglang_json(doc).unwrap();
    assert_eq!((matrix.num_layers, matrix.num_experts), (2, 3));
    assert_eq!(matrix.loads, [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
    // [steps][layers][E]: the steps are summed.
    let doc = r#"{"logical_count": [[[1, 2], [3, 4]], [[10, 20], [30, 40]]]}"#;
    let matrix = loads_from_sglang_json(doc.as_bytes()).unwrap();
    assert_eq!((matrix.num_layers, matrix.num_experts), (2, 2));
    assert_eq!(matrix.loads, [11.0, 22.0, 33.0, 44.0]);
    // A bad entry is named.
    let error = loads_from_sglang_json(r#"{"logical_count": [[1, -2]]}"#)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::Corrupt);
    assert!(error.message.contains("-2"), "{error}");
    let error = loads_from_sglang_json(r#"{"logical_count": [[1, 2], [3]]}"#)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::Corrupt, "{error}");
    let error = loads_from_sglang_json("").err().unwrap();
    assert_eq!(error.status, Status::Corrupt, "{error}");
}

#[test]
fn snapshot_bytes_round_trip() {
    let placement = readme_placement();
    let bytes = placement
        .to_snapshot_bytes(Some(&WEIGHT), Some("in memory"))
        .unwrap();
    let snapshot = Snapshot::from_bytes(&bytes).unwrap();
    assert_eq!(snapshot.label().unwrap(), "in memory");
    assert_eq!(snapshot.loads().unwrap().unwrap(), WEIGHT.to_vec());
    assert_eq!(
        snapshot.placement().unwrap().phy2log().unwrap(),
        placement.phy2log().unwrap()
    );
    // The bytes are a valid file: inspect reads the same header.
    let dir = std::env::temp_dir().join(format!("eplb-rust-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bytes.eplb");
    std::fs::write(&path, &bytes).unwrap();
    let info = Snapshot::inspect(&path).unwrap();
    assert_eq!(info.file_size, bytes.len() as u64);
    assert_eq!((info.num_layers, info.num_physical_experts), (2, 16));
    assert!(info.has_loads);
    std::fs::remove_dir_all(&dir).unwrap();
    // Cut short: refused with a status, not a crash.
    let error = Snapshot::from_bytes(&bytes[..bytes.len() / 2])
        .err()
        .unwrap();
    assert!(
        matches!(error.status, Status::Truncated | Status::Corrupt),
        "{error}"
    );

    // Statistics snapshots too: the restored tracker has the same loads and counts.
    let mut tracker = Tracker::new(1, 4, 2, Window::Cumulative).unwrap();
    tracker.record(0, &[0, 1, 2, 3, 1, -1]).unwrap();
    tracker.record(0, &[3, 1]).unwrap();
    let bytes = tracker.to_snapshot_bytes(Some("stats")).unwrap();
    let restored = Snapshot::from_bytes(&bytes)
        .unwrap()
        .tracker()
        .unwrap()
        .unwrap();
    assert_eq!(restored.loads().unwrap(), [1.0, 3.0, 1.0, 2.0]);
    assert_eq!(restored.layer_counts(0).unwrap().0, 2);
    assert_eq!(
        restored.layer_counts(0).unwrap(),
        tracker.layer_counts(0).unwrap()
    );
    assert_eq!(
        tracker.layer_counts(1).err().unwrap().status,
        Status::InvalidArgument
    );

    // With options: the label and the compression level; loads belong to the tracker.
    let options = |level| SnapshotOptions {
        label: Some("with options"),
        compression_level: level,
        ..SnapshotOptions::default()
    };
    for level in [1, 19] {
        let bytes = tracker.to_snapshot_bytes_with(&options(level)).unwrap();
        let snapshot = Snapshot::from_bytes(&bytes).unwrap();
        assert_eq!(snapshot.label().unwrap(), "with options");
        let restored = snapshot.tracker().unwrap().unwrap();
        assert_eq!(restored.loads().unwrap(), tracker.loads().unwrap());
    }
    let path = std::env::temp_dir().join(format!("eplb-rust-stats-{}.eplb", std::process::id()));
    tracker.save_with(&path, &options(3)).unwrap();
    assert_eq!(
        Snapshot::load(&path).unwrap().label().unwrap(),
        "with options"
    );
    std::fs::remove_file(&path).unwrap();
    let loads = [1.0; 4];
    let with_loads = SnapshotOptions {
        loads: Some(&loads),
        ..SnapshotOptions::default()
    };
    let error = tracker.to_snapshot_bytes_with(&with_loads).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    assert_eq!(
        tracker
            .to_snapshot_bytes_with(&options(99))
            .err()
            .unwrap()
            .status,
        Status::InvalidArgument
    );
}
