//! Tests of the safe crate against DeepSeek's published README example and brute-force oracles.
mod common;

use common::{readme_options, WEIGHT};
use eplb::{
    Algorithm, Migration, MigrationOptions, Placement, PlanControl, Planner, PlannerOptions,
    Snapshot, SplitSolver, Status, Tracker, TrackerOptions, Window, Workload, WorkloadOptions,
};

const PHY2LOG: [i32; 32] = [
    5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1, //
    7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1,
];

#[test]
fn deepseek_reproduces_the_readme_example() {
    eplb::check_version().unwrap();
    let placement = Planner::new(&readme_options(Algorithm::Deepseek))
        .unwrap()
        .plan(&WEIGHT)
        .unwrap();
    assert_eq!(placement.phy2log().unwrap(), PHY2LOG);
    let counts = placement.replica_counts().unwrap();
    // Replica counts recomputed from phy2log.
    for layer in 0..2 {
        for expert in 0..12 {
            let n = PHY2LOG[layer * 16..(layer + 1) * 16]
                .iter()
                .filter(|&&e| e == expert as i32)
                .count();
            assert_eq!(counts[layer * 12 + expert] as usize, n);
        }
    }
    let info = placement.info().unwrap();
    assert_eq!((info.num_layers, info.log2phy_width), (2, 2));
    assert_eq!(
        &placement.log2phy().unwrap()[..6],
        &[12, -1, 15, 13, 11, -1]
    );
}

#[test]
fn errors_carry_status_and_message() {
    let mut options = readme_options(Algorithm::Balanced);
    options.num_physical_experts = 15;
    let error = Planner::new(&options).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument);
    assert!(
        error.message.contains("num_physical_experts (15)"),
        "{}",
        error.message
    );
    let mut planner = Planner::new(&readme_options(Algorithm::Balanced)).unwrap();
    let mut bad = WEIGHT;
    bad[13] = f64::NAN;
    let error = planner.plan(&bad).err().unwrap();
    assert!(error.message.contains("loads[1][1] is NaN"), "{error}");
    let error = planner.plan(&WEIGHT[..5]).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument);
    let error = Snapshot::load("/nonexistent/dir/x.eplb").err().unwrap();
    assert_eq!(error.status, Status::Io);
    assert!(error.message.contains("/nonexistent/dir/x.eplb"));
    assert!(matches!(
        Snapshot::from_bytes(&[0u8; 100]).err().unwrap().status,
        Status::Corrupt | Status::Truncated
    ));
    assert_eq!(
        Algorithm::from_name("nope").err().unwrap().status,
        Status::InvalidArgument
    );
    assert_eq!(
        Algorithm::from_name("balanced-relaxed").unwrap(),
        Algorithm::BalancedRelaxed
    );
    assert_eq!(Algorithm::from_name("default").unwrap(), Algorithm::Default);
    // Every algorithm the loaded library lists has its own variant (none maps to Default).
    // SAFETY: no arguments; names are static NUL-terminated strings for ids 1..=count.
    for id in 1..=unsafe { eplb::sys::eplb_algorithm_count() } {
        let name = unsafe { std::ffi::CStr::from_ptr(eplb::sys::eplb_algorithm_name(id)) };
        let algorithm = Algorithm::from_name(name.to_str().unwrap()).unwrap();
        assert_ne!(algorithm, Algorithm::Default, "{name:?}");
    }
}

#[test]
fn algorithms_are_listed_described_and_default_resolves() {
    let all = Algorithm::all();
    // SAFETY: no arguments.
    assert_eq!(all.len() as u32, unsafe {
        eplb::sys::eplb_algorithm_count()
    });
    assert!(all.contains(&Algorithm::Deepseek) && all.contains(&Algorithm::BalancedRelaxed));
    assert!(!all.contains(&Algorithm::Default));
    for algorithm in &all {
        let text = algorithm.description().unwrap();
        assert!(!text.is_empty(), "{algorithm}");
        assert_eq!(algorithm.resolved(), *algorithm);
    }
    assert!(Algorithm::Deepseek
        .description()
        .unwrap()
        .contains("DeepSeek"));
    assert_eq!(Algorithm::Default.resolved(), Algorithm::Balanced);
    assert!(all.contains(&Algorithm::Default.resolved()));
    assert_eq!(Algorithm::Other(1 << 20).description(), None);
}

#[test]
fn snapshot_round_trip() {
    let dir = std::env::temp_dir().join(format!("eplb-rust-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("plan.eplb");
    let placement = Planner::new(&readme_options(Algorithm::Balanced))
        .unwrap()
        .plan(&WEIGHT)
        .unwrap();
    placement
        .save(&path, Some(&WEIGHT), Some("rust test"))
        .unwrap();
    let snapshot = Snapshot::load(&path).unwrap();
    assert_eq!(snapshot.label().unwrap(), "rust test");
    assert_eq!(snapshot.loads().unwrap().unwrap(), WEIGHT.to_vec());
    assert_eq!(
        snapshot.placement().unwrap().phy2log().unwrap(),
        placement.phy2log().unwrap()
    );
    let json = placement.to_sglang_json(0).unwrap();
    assert!(json.starts_with("{\"physical_to_logical_map\""));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tracker_matches_brute_force() {
    let (experts, top_k) = (6usize, 2usize);
    let mut tracker = Tracker::new(1, experts as u32, top_k as u32, Window::Cumulative).unwrap();
    let mut state = 12345u64;
    let mut loads = vec![0.0; experts];
    let mut pairs = vec![vec![0.0; experts]; experts];
    for _ in 0..20 {
        let mut ids = Vec::new();
        for _ in 0..30 {
            let mut row = Vec::new();
            for _ in 0..top_k {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                row.push(((state >> 33) % (experts as u64 + 1)) as i32 - 1);
            }
            for &e in row.iter().filter(|&&e| e >= 0) {
                loads[e as usize] += 1.0;
            }
            if row[0] >= 0 && row[1] >= 0 && row[0] != row[1] {
                let (a, b) = (row[0].min(row[1]) as usize, row[0].max(row[1]) as usize);
                pairs[a][b] += 1.0;
            }
            ids.extend(row);
        }
        tracker.record(0, &ids).unwrap();
    }
    assert_eq!(tracker.loads().unwrap(), loads);
    let triangle: Vec<f64> = (0..experts)
        .flat_map(|a| ((a + 1)..experts).map(move |b| (a, b)))
        .map(|(a, b)| pairs[a][b])
        .collect();
    assert_eq!(tracker.coactivation(0).unwrap(), triangle);
    let error = tracker.record(0, &[0, 9]).err().unwrap();
    assert!(error.message.contains("9"), "{error}");
    assert_eq!(tracker.loads().unwrap(), loads);
}

#[test]
fn placements_are_shared_across_threads_and_planners_move_between_them() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Placement>();
    assert_send_sync::<Planner>();
    assert_send_sync::<Snapshot>();
    assert_send_sync::<Tracker>();
    assert_send_sync::<PlanControl>();
    let placement = std::sync::Arc::new(
        Planner::new(&readme_options(Algorithm::Deepseek))
            .unwrap()
            .plan(&WEIGHT)
            .unwrap(),
    );
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let shared = placement.clone();
            std::thread::spawn(move || {
                let mut own = Planner::new(&readme_options(Algorithm::Deepseek)).unwrap();
                assert_eq!(own.plan(&WEIGHT).unwrap().phy2log().unwrap(), PHY2LOG);
                assert_eq!(shared.phy2log().unwrap(), PHY2LOG);
                let balance = shared.metrics(&WEIGHT).unwrap().balancedness;
                // Errors are per thread: a failure here does not leak into another thread.
                if i % 2 == 0 {
                    assert!(shared.metrics(&WEIGHT[..3]).is_err());
                }
                balance
            })
        })
        .collect();
    let results: Vec<f64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn statistics_snapshots_affinity_and_physical_ids() {
    // A small deterministic routing: 64 tokens of top-4 over 16 experts, two layers.
    let ids: Vec<i32> = (0..256i32).map(|i| (i * 7 + i / 4 * 3) % 16).collect();
    let options = TrackerOptions {
        reservoir_capacity: 32,
        seed: 9,
        ..TrackerOptions::new(2, 16, 4)
    };
    let mut tracker = Tracker::with_options(&options).unwrap();
    tracker.record(0, &ids).unwrap();
    tracker.record(1, &ids[..128]).unwrap();
    assert_eq!(tracker.samples(0).unwrap().len(), 32 * 4);
    assert_eq!(tracker.options().unwrap(), options);

    let dir = std::env::temp_dir().join(format!("eplb-rust-stats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stats.eplb");
    tracker.save(&path, Some("warm-up")).unwrap();
    let snapshot = Snapshot::load(&path).unwrap();
    assert_eq!(snapshot.label().unwrap(), "warm-up");
    let mut restored = snapshot.tracker().unwrap().unwrap();
    // Recording on continues exactly as in the original (loads, pairs and samples).
    tracker.record(1, &ids[128..]).unwrap();
    restored.record(1, &ids[128..]).unwrap();
    assert_eq!(restored.loads().unwrap(), tracker.loads().unwrap());
    assert_eq!(
        restored.coactivation(1).unwrap(),
        tracker.coactivation(1).unwrap()
    );
    assert_eq!(restored.samples(1).unwrap(), tracker.samples(1).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();

    // plan_tracked without affinity is plan on the tracker's loads; with it, the balance floor.
    let shape = PlannerOptions {
        num_layers: 2,
        num_logical_experts: 16,
        num_physical_experts: 20,
        num_nodes: 2,
        num_gpus: 4,
        ..Default::default()
    };
    let loads = tracker.loads().unwrap();
    let mut planner = Planner::new(&shape).unwrap();
    let balance_only = planner.plan_tracked(&tracker, None).unwrap();
    assert_eq!(
        balance_only.phy2log().unwrap(),
        planner.plan(&loads).unwrap().phy2log().unwrap()
    );
    let mut affinity = Planner::new(&PlannerOptions {
        affinity: true,
        affinity_min_balance: 0.9,
        ..shape
    })
    .unwrap();
    let placed = affinity.plan_tracked(&tracker, Some(&loads)).unwrap();
    assert!(
        placed.metrics(&loads).unwrap().balancedness
            >= 0.9 * balance_only.metrics(&loads).unwrap().balancedness - 1e-12
    );
    assert_eq!(
        affinity.plan(&loads).err().unwrap().status,
        Status::InvalidArgument
    );

    // Physical slot ids fold to the experts the placement puts there.
    let mut physical = Tracker::new(2, 16, 1, Window::Cumulative).unwrap();
    let phy2log = placed.phy2log().unwrap();
    physical.record_physical(&placed, 1, &[0, 19]).unwrap();
    let folded = physical.loads().unwrap();
    assert_eq!(folded[16 + phy2log[20] as usize], 1.0);
    assert_eq!(folded[16 + phy2log[20 + 19] as usize], 1.0);
    assert_eq!(folded.iter().sum::<f64>(), 2.0);
}

/// Each layer's co-activation and samples.
type LayerState = Vec<(Vec<f64>, Vec<i32>)>;

/// Loads, then each layer's (co-activation, samples).
fn tracker_state(tracker: &Tracker, layers: u32) -> (Vec<f64>, LayerState) {
    let per_layer = (0..layers)
        .map(|layer| {
            (
                tracker.coactivation(layer).unwrap(),
                tracker.samples(layer).unwrap(),
            )
        })
        .collect();
    (tracker.loads().unwrap(), per_layer)
}

#[test]
fn try_clone_copies_the_whole_state_and_is_independent() {
    let mut state = 3u64;
    let mut batch = move || -> Vec<i32> {
        (0..48 * 4)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) % 17) as i32 - 1
            })
            .collect()
    };
    for window in [Window::Cumulative, Window::Sliding(3), Window::Decay(0.5)] {
        let options = TrackerOptions {
            window,
            reservoir_capacity: 8, // a small reservoir: the RNG picks the rows kept
            seed: 5,
            ..TrackerOptions::new(2, 16, 4)
        };
        let mut original = Tracker::with_options(&options).unwrap();
        let mut twin = Tracker::with_options(&options).unwrap();
        for i in 0..6 {
            let ids = batch();
            original.record(i % 2, &ids).unwrap();
            twin.record(i % 2, &ids).unwrap();
        }
        let mut clone = original.try_clone().unwrap();
        let before = tracker_state(&original, 2);
        assert_eq!(before.1[1].1.len(), 8 * 4, "{window:?}");
        assert_eq!(tracker_state(&clone, 2), before, "{window:?}");
        assert_eq!(format!("{clone:?}"), format!("{original:?}"));
        for layer in 0..2 {
            assert_eq!(
                clone.layer_counts(layer).unwrap(),
                original.layer_counts(layer).unwrap()
            );
        }
        // The same further batches into the clone and into a tracker that recorded all the
        // original did give equal statistics: the window and the RNG state were copied.
        for i in 0..6 {
            let ids = batch();
            clone.record(i % 2, &ids).unwrap();
            twin.record(i % 2, &ids).unwrap();
        }
        assert_eq!(
            tracker_state(&clone, 2),
            tracker_state(&twin, 2),
            "{window:?}"
        );
        // Recording into the clone left the original as it was.
        assert_eq!(tracker_state(&original, 2), before, "{window:?}");
        // The clone owns its handle: dropping the original leaves it usable.
        drop(original);
        let ids = batch();
        clone.record(0, &ids).unwrap();
        twin.record(0, &ids).unwrap();
        assert_eq!(
            tracker_state(&clone, 2),
            tracker_state(&twin, 2),
            "{window:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn paths_are_bytes_not_text() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = std::env::temp_dir().join(format!("eplb-rust-paths-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A file name that is not UTF-8 (Linux file names are bytes).
    let path = dir.join(OsStr::from_bytes(b"plan-\xff\xfe.eplb"));
    let placement = common::readme_placement();
    placement.save(&path, Some(&WEIGHT), Some("bytes")).unwrap();
    assert!(path.exists());
    assert_eq!(Snapshot::inspect(&path).unwrap().num_layers, 2);
    let snapshot = Snapshot::load(&path).unwrap();
    assert_eq!(snapshot.label().unwrap(), "bytes");
    assert_eq!(
        snapshot.placement().unwrap().phy2log().unwrap(),
        placement.phy2log().unwrap()
    );
    let stats = dir.join(OsStr::from_bytes(b"stats-\x80.eplb"));
    let tracker = Tracker::new(2, 12, 2, Window::Cumulative).unwrap();
    tracker.save(&stats, None).unwrap();
    assert!(Snapshot::load(&stats).unwrap().tracker().unwrap().is_some());
    // A NUL byte cannot reach C: refused here, naming the path.
    let error = Snapshot::load(dir.join("a\0b.eplb")).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    assert!(error.message.contains("a\\0b.eplb"), "{error}");
    let error = placement.save(dir.join("c\0d"), None, None).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn handles_print_their_shape() {
    let planner = Planner::new(&readme_options(Algorithm::Deepseek)).unwrap();
    let text = format!("{planner:?}");
    for field in [
        "algorithm: Deepseek",
        "num_layers: 2",
        "num_logical_experts: 12",
        "num_physical_experts: 16",
        "num_groups: 4",
        "num_nodes: 2",
        "num_gpus: 8",
    ] {
        assert!(text.contains(field), "{text}");
    }
    // C defaults are shown as resolved.
    let text = format!(
        "{:?}",
        Planner::new(&PlannerOptions {
            num_layers: 1,
            num_logical_experts: 4,
            num_physical_experts: 4,
            num_gpus: 2,
            ..Default::default()
        })
        .unwrap()
    );
    assert!(text.contains("num_nodes: 1"), "{text}");

    let placement = common::readme_placement();
    let text = format!("{placement:?}");
    for field in [
        "num_layers: 2",
        "num_logical_experts: 12",
        "num_physical_experts: 16",
        "num_nodes: 2",
        "num_gpus: 8",
    ] {
        assert!(text.contains(field), "{text}");
    }
    assert!(!text.contains("0x"), "{text}");

    let bytes = placement
        .to_snapshot_bytes(Some(&WEIGHT), Some("dbg"))
        .unwrap();
    let snapshot = Snapshot::from_bytes(&bytes).unwrap();
    let text = format!("{snapshot:?}");
    for field in [
        "num_layers: 2",
        "num_physical_experts: 16",
        "num_gpus: 8",
        "has_loads: true",
        "label: \"dbg\"",
    ] {
        assert!(text.contains(field), "{text}");
    }
    assert_eq!(snapshot.library_version().unwrap(), eplb::version());

    let options = TrackerOptions {
        reservoir_capacity: 32,
        seed: 9,
        ..TrackerOptions::new(2, 16, 4)
    };
    let text = format!("{:?}", Tracker::with_options(&options).unwrap());
    for field in [
        "num_layers: 2",
        "num_logical_experts: 16",
        "top_k: 4",
        "reservoir_capacity: 32",
        "seed: 9",
    ] {
        assert!(text.contains(field), "{text}");
    }
    let text = format!("{:?}", Tracker::new(1, 6, 2, Window::Sliding(7)).unwrap());
    assert!(text.contains("window: Sliding(7)"), "{text}");

    let balanced = Planner::new(&readme_options(Algorithm::Balanced))
        .unwrap()
        .plan(&WEIGHT)
        .unwrap();
    let migration =
        Migration::plan(&placement, &balanced, None, &MigrationOptions::default()).unwrap();
    let text = format!("{migration:?}");
    let steps = migration.summary().unwrap().num_steps;
    for field in [
        "num_layers: 2".to_string(),
        "num_gpus: 8".to_string(),
        format!("num_steps: {steps}"),
    ] {
        assert!(text.contains(&field), "{text}");
    }

    assert_eq!(
        format!("{:?}", SplitSolver::new().unwrap()),
        "SplitSolver { .. }"
    );

    let workload = Workload::new(&WorkloadOptions {
        num_layers: 3,
        num_experts: 20,
        top_k: 5,
        num_groups: 1,
        topk_groups: 0,
        seed: 11,
        ..Default::default()
    })
    .unwrap();
    let text = format!("{workload:?}");
    for field in ["num_layers: 3", "num_experts: 20", "top_k: 5", "seed: 11"] {
        assert!(text.contains(field), "{text}");
    }
}

#[test]
fn status_displays_the_c_name_and_code() {
    assert_eq!(
        Status::InvalidArgument.code(),
        eplb::sys::EPLB_ERR_INVALID_ARGUMENT
    );
    assert_eq!(Status::Nccl.code(), 12);
    assert_eq!(Status::Cancelled.code(), eplb::sys::EPLB_ERR_CANCELLED);
    assert_eq!(Status::Cancelled.code(), 13);
    assert_eq!(Status::Cancelled.to_string(), "cancelled");
    assert_eq!(Status::Other(999).code(), 999);
    assert_eq!(Status::InvalidArgument.to_string(), "invalid argument");
    assert_eq!(Status::Io.to_string(), "input/output error");
    assert_eq!(
        Status::Other(999).to_string(),
        "unknown status (status 999)"
    );
    // Every known status shows the library's text for its code.
    for status in [
        Status::InvalidArgument,
        Status::OutOfMemory,
        Status::BufferTooSmall,
        Status::Internal,
        Status::Io,
        Status::Corrupt,
        Status::Truncated,
        Status::UnsupportedVersion,
        Status::NoDevice,
        Status::Device,
        Status::NoNccl,
        Status::Nccl,
        Status::Cancelled,
    ] {
        // SAFETY: static text, never NULL.
        let text =
            unsafe { std::ffi::CStr::from_ptr(eplb::sys::eplb_status_string(status.code())) };
        assert_eq!(status.to_string(), text.to_str().unwrap());
        assert_ne!(status.to_string(), "unknown status");
    }

    let mut options = readme_options(Algorithm::Balanced);
    options.num_physical_experts = 15;
    let error = Planner::new(&options).err().unwrap();
    let text = error.to_string();
    assert!(text.starts_with("invalid argument: "), "{text}");
    assert!(text.ends_with(&error.message), "{text}");
}
