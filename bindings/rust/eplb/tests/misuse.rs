//! Deliberate misuse, as an integrator might get it wrong: every case is an `Err` naming the bad
//! value (never a panic, an abort or a hang), and a handle stays usable after a failed call.
mod common;

use common::{readme_options, readme_placement, WEIGHT};
use eplb::{
    loads_from_sglang_json, shared_expert_waterfill, split_rank_quotas, Algorithm, GpuTerms,
    Migration, MigrationOptions, Placement, Planner, PlannerOptions, Result, Snapshot,
    SnapshotOptions, SplitSolver, Status, Tracker, TrackerOptions, WaterfillOptions, Window,
    Workload, WorkloadOptions,
};

/// `result` is an error of `status` whose message contains `needle`.
fn refused<T: std::fmt::Debug>(result: Result<T>, status: Status, needle: &str) {
    let error = result.expect_err(needle);
    assert_eq!(error.status, status, "{error}");
    assert!(error.message.contains(needle), "{needle:?} not in: {error}");
}

#[test]
fn a_batch_too_large_to_allocate_is_an_error_not_an_abort() {
    // 2^58 tokens x top-8 is 2^61 ids, 2^63 bytes: more than any allocation may hold. This
    // used to panic ("capacity overflow") or abort the process in the allocator.
    let mut workload = Workload::new(&WorkloadOptions {
        num_layers: 1,
        num_experts: 16,
        top_k: 8,
        ..Default::default()
    })
    .unwrap();
    refused(
        workload.next_batch(1 << 58),
        Status::OutOfMemory,
        "288230376151711744 tokens",
    );
    refused(
        workload.next_batch(usize::MAX),
        Status::InvalidArgument,
        "overflows",
    );
    refused(
        workload.next_batch(0),
        Status::InvalidArgument,
        "num_tokens (0)",
    );
    // Still usable.
    assert_eq!(workload.next_batch(3).unwrap().len(), 3 * 8);
}

#[test]
fn algorithms_newer_than_the_bindings_pass_through() {
    // An id this crate has no variant for reaches C unchanged, which names it.
    let options = PlannerOptions {
        algorithm: Algorithm::Other(99),
        ..readme_options(Algorithm::Default)
    };
    refused(Planner::new(&options), Status::InvalidArgument, "99");
    assert_eq!(Algorithm::Other(99).to_string(), "algorithm 99");
    assert_eq!(Algorithm::Other(99).name(), None);
    // Known ids are their variants, by name, `Display` and `FromStr`.
    for algorithm in [
        Algorithm::Default,
        Algorithm::Deepseek,
        Algorithm::Trivial,
        Algorithm::Balanced,
        Algorithm::BalancedHierarchical,
        Algorithm::BalancedRelaxed,
    ] {
        let name = algorithm.to_string();
        assert_eq!(name.parse::<Algorithm>().unwrap(), algorithm, "{name}");
        assert_eq!(Algorithm::from_name(&name).unwrap(), algorithm);
    }
    assert_eq!(Algorithm::BalancedRelaxed.to_string(), "balanced-relaxed");
    refused(
        "Deepseek".parse::<Algorithm>(),
        Status::InvalidArgument,
        "Deepseek",
    );
    refused(Algorithm::from_name("a\0b"), Status::InvalidArgument, "NUL");
}

#[test]
fn placement_snapshots_store_a_tracker() {
    let placement = readme_placement();
    let mut tracker = Tracker::with_options(&TrackerOptions {
        reservoir_capacity: 8,
        seed: 3,
        ..TrackerOptions::new(2, 12, 2)
    })
    .unwrap();
    for i in 0..20 {
        tracker
            .record(i % 2, &[(i % 12) as i32, 11, 4, -1])
            .unwrap();
    }
    let options = SnapshotOptions {
        loads: Some(&WEIGHT),
        label: Some("with statistics"),
        tracker: Some(&tracker),
        compression_level: 19,
    };
    let bytes = placement.to_snapshot_bytes_with(&options).unwrap();
    // The same through a file.
    let dir = std::env::temp_dir().join(format!("eplb-rust-misuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("both.eplb");
    placement.save_with(&path, &options).unwrap();
    assert!(Snapshot::inspect(&path).unwrap().has_coactivation);
    std::fs::remove_dir_all(&dir).unwrap();
    let snapshot = Snapshot::from_bytes(&bytes).unwrap();
    let info = snapshot.info().unwrap();
    assert!(info.has_placement() && info.has_loads && info.has_coactivation);
    assert_eq!(info.label, "with statistics");
    assert_eq!(snapshot.loads().unwrap().unwrap(), WEIGHT);
    let mut restored = snapshot.tracker().unwrap().unwrap();
    assert_eq!(restored.options().unwrap(), tracker.options().unwrap());
    restored.record(0, &[1, 2]).unwrap();
    tracker.record(0, &[1, 2]).unwrap();
    assert_eq!(restored.loads().unwrap(), tracker.loads().unwrap());
    assert_eq!(restored.samples(0).unwrap(), tracker.samples(0).unwrap());

    // Bad options are refused, naming them.
    let other_shape = Tracker::new(2, 13, 2, Window::Cumulative).unwrap();
    let error = placement
        .to_snapshot_bytes_with(&SnapshotOptions {
            tracker: Some(&other_shape),
            ..SnapshotOptions::default()
        })
        .unwrap_err();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    assert!(error.message.contains("13"), "{error}");
    refused(
        placement.to_snapshot_bytes_with(&SnapshotOptions {
            compression_level: 0,
            ..SnapshotOptions::default()
        }),
        Status::InvalidArgument,
        "0",
    );
}

#[test]
fn wrong_shapes_and_ids_name_the_value() {
    let placement = readme_placement();
    let mut planner = Planner::new(&readme_options(Algorithm::Balanced)).unwrap();
    refused(
        planner.plan(&[]),
        Status::InvalidArgument,
        "loads has 0 values",
    );
    refused(planner.plan(&[-1.0; 24]), Status::InvalidArgument, "-1");
    refused(
        planner.plan_windows(&WEIGHT, 0),
        Status::InvalidArgument,
        "num_windows",
    );
    refused(
        planner.plan_windows(&WEIGHT, usize::MAX),
        Status::OutOfMemory,
        "18446744073709551615",
    );
    // A failed call leaves the planner usable.
    assert_eq!(planner.plan(&WEIGHT).unwrap().info().unwrap().num_layers, 2);

    refused(
        Placement::from_phy2log(1, 2, 2, 1, 1, &[0, 5]),
        Status::InvalidArgument,
        "= 5",
    );
    refused(
        placement.layer_metrics(u32::MAX, &WEIGHT[..12]),
        Status::InvalidArgument,
        "4294967295",
    );
    refused(
        placement.nodes_touched(0, &[1, 2, 3], 2),
        Status::InvalidArgument,
        "length 3",
    );
    refused(
        placement.nodes_touched(0, &[1, 2], 0),
        Status::InvalidArgument,
        "top_k 0",
    );
    refused(
        placement.nodes_touched(0, &[1, 99], 2),
        Status::InvalidArgument,
        "99",
    );

    let mut tracker = Tracker::new(2, 12, 2, Window::Cumulative).unwrap();
    refused(
        tracker.record(0, &[1, 2, 3]),
        Status::InvalidArgument,
        "length 3",
    );
    refused(
        tracker.record(2, &[1, 2]),
        Status::InvalidArgument,
        "layer (2)",
    );
    refused(tracker.record(0, &[1, -2]), Status::InvalidArgument, "-2");
    refused(
        tracker.record_physical(&placement, 0, &[0, 16]),
        Status::InvalidArgument,
        "16",
    );
    refused(tracker.samples(9), Status::InvalidArgument, "layer (9)");
    // A failed record changes nothing; an empty batch is allowed (it advances the window).
    tracker.record(0, &[]).unwrap();
    assert_eq!(tracker.loads().unwrap(), vec![0.0; 24]);
    let other = Tracker::new(2, 13, 2, Window::Cumulative).unwrap();
    refused(tracker.merge(&other), Status::InvalidArgument, "13");
    refused(
        planner.plan_tracked(&other, None),
        Status::InvalidArgument,
        "13",
    );

    let mut solver = SplitSolver::new().unwrap();
    let no_terms = GpuTerms::default();
    refused(
        solver.solve(&placement, 0, &[], &no_terms),
        Status::InvalidArgument,
        "counts has 0",
    );
    refused(
        solver.solve(&placement, 0, &[-1; 12], &no_terms),
        Status::InvalidArgument,
        "-1",
    );
    let three = GpuTerms {
        weights: Some(&[1.0; 3]),
        extra_load: None,
    };
    refused(
        solver.solve(&placement, 0, &[1; 12], &three),
        Status::InvalidArgument,
        "(3)",
    );
    assert_eq!(
        solver
            .solve(&placement, 0, &[1; 12], &no_terms)
            .unwrap()
            .quotas
            .iter()
            .sum::<i32>(),
        12
    );
    refused(
        split_rank_quotas(&placement, 0, &[0; 16], &[0; 12], 1, 1),
        Status::InvalidArgument,
        "rank (1)",
    );
    refused(
        shared_expert_waterfill(&placement, &[0, 99], 2, None, &WaterfillOptions::default()),
        Status::InvalidArgument,
        "99",
    );

    let small = Placement::from_phy2log(1, 2, 2, 1, 1, &[0, 1]).unwrap();
    refused(
        Migration::plan(&placement, &small, None, &MigrationOptions::default()),
        Status::InvalidArgument,
        "num_layers",
    );
    refused(
        Migration::plan(
            &placement,
            &placement,
            None,
            &MigrationOptions {
                bytes_per_expert: 0,
                ..Default::default()
            },
        ),
        Status::InvalidArgument,
        "bytes_per_expert",
    );
    refused(
        loads_from_sglang_json("{\"logical_count\": [[1, -2]]}"),
        Status::Corrupt,
        "-2",
    );
}

#[test]
fn corrupt_and_odd_files_are_refused() {
    let bytes = readme_placement()
        .to_snapshot_bytes(Some(&WEIGHT), None)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("eplb-rust-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("damaged.eplb");
    let mut damaged = bytes.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    std::fs::write(&path, &damaged).unwrap();
    let error = Snapshot::load(&path).unwrap_err();
    assert_eq!(error.status, Status::Corrupt, "{error}");
    assert!(error.message.contains("damaged.eplb"), "{error}");
    assert_eq!(
        Snapshot::inspect(&path).unwrap_err().status,
        Status::Corrupt
    );
    refused(Snapshot::from_bytes(&[]), Status::Truncated, "0 bytes");
    refused(Snapshot::load(&dir), Status::Io, dir.to_str().unwrap());
    refused(Snapshot::load(""), Status::Io, "''");
    refused(Snapshot::load("/dev/null"), Status::Truncated, "/dev/null");
    refused(
        readme_placement().save(dir.join("missing/x.eplb"), None, None),
        Status::Io,
        "missing",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn handles_outlive_what_made_them_in_any_drop_order() {
    let mut planner = Planner::new(&readme_options(Algorithm::Deepseek)).unwrap();
    let old = planner.plan(&WEIGHT).unwrap();
    let mut skewed = WEIGHT;
    skewed[0] *= 10.0;
    let new = planner.plan(&skewed).unwrap();
    drop(planner);
    let migration = Migration::plan(&old, &new, Some(&skewed), &Default::default()).unwrap();
    drop(new);
    drop(old);
    let target = migration.target().unwrap();
    let steps = migration.summary().unwrap().num_steps;
    let last = migration.step_placement(steps - 1).unwrap();
    drop(migration);
    assert_eq!(target.phy2log().unwrap(), last.phy2log().unwrap());

    let tracker = Tracker::new(2, 12, 2, Window::Sliding(4)).unwrap();
    let snapshot = Snapshot::from_bytes(&tracker.to_snapshot_bytes(None).unwrap()).unwrap();
    let clone = tracker.try_clone().unwrap();
    drop(tracker);
    let mut restored = snapshot.tracker().unwrap().unwrap();
    drop(snapshot);
    restored.merge(&clone).unwrap();
    restored.record(1, &[0, 1]).unwrap();
    assert_eq!(restored.layer_counts(1).unwrap().0, 1);
}

#[test]
fn concurrent_readers_and_per_thread_errors() {
    use std::sync::Arc;
    let placement = Arc::new(readme_placement());
    let mut tracker = Tracker::new(2, 12, 2, Window::Cumulative).unwrap();
    tracker.record(0, &[1, 2, 3, 4]).unwrap();
    let tracker = Arc::new(tracker);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (placement, tracker) = (placement.clone(), tracker.clone());
            std::thread::spawn(move || {
                for _ in 0..50 {
                    placement.metrics(&WEIGHT).unwrap();
                    tracker.loads().unwrap();
                    tracker.samples(0).unwrap();
                    tracker.try_clone().unwrap();
                    if i % 2 == 0 {
                        // This thread's error names its own bad value.
                        refused(
                            placement.metrics(&WEIGHT[..i + 1]),
                            Status::InvalidArgument,
                            &format!("has {} values", i + 1),
                        );
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}
