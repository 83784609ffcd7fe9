//! The Rust structs the crate returns and takes equal the C structs field by field, and their
//! `Default`s are the library's `*_options_init`.
mod common;

use common::{readme_options, readme_placement, WEIGHT};
use eplb::{
    sys, Algorithm, Placement, Planner, Snapshot, SnapshotOptions, Status, Tracker, TrackerOptions,
    Window,
};

fn raw_placement_info(placement: &Placement) -> sys::eplb_placement_info {
    // SAFETY: zeroed plain-data struct with struct_size set; a live handle.
    let mut raw: sys::eplb_placement_info = unsafe { std::mem::zeroed() };
    raw.struct_size = std::mem::size_of::<sys::eplb_placement_info>() as u32;
    let status = unsafe { sys::eplb_placement_get_info(placement.as_raw(), &mut raw) };
    assert_eq!(status, sys::EPLB_OK);
    raw
}

#[test]
fn placement_info_is_the_c_struct() {
    let placement = readme_placement();
    let info = placement.info().unwrap();
    let raw = raw_placement_info(&placement);
    assert_eq!(
        (
            info.num_layers,
            info.num_logical_experts,
            info.num_physical_experts,
            info.num_nodes,
            info.num_gpus,
            info.num_groups,
            info.slots_per_gpu,
            info.log2phy_width,
        ),
        (
            raw.num_layers,
            raw.num_logical_experts,
            raw.num_physical_experts,
            raw.num_nodes,
            raw.num_gpus,
            raw.num_groups,
            raw.slots_per_gpu,
            raw.log2phy_width,
        )
    );
    assert_eq!((info.slots_per_gpu, info.num_groups), (2, 4));
    assert_eq!(info.algorithm, Some(Algorithm::Deepseek));
    assert_eq!(raw.hierarchical, 1);
    assert!(info.hierarchical);
    assert_eq!(info.plan_seconds, raw.plan_seconds);
    // The planner's Default resolves to a concrete algorithm; an imported map has none.
    let planned = Planner::new(&readme_options(Algorithm::Default))
        .unwrap()
        .plan(&WEIGHT)
        .unwrap();
    let algorithm = planned.info().unwrap().algorithm.unwrap();
    assert_ne!(algorithm, Algorithm::Default);
    let imported = Placement::from_phy2log(1, 2, 2, 1, 1, &[1, 0]).unwrap();
    let info = imported.info().unwrap();
    assert_eq!((info.algorithm, info.hierarchical), (None, false));
    assert_eq!(info.plan_seconds, 0.0);
}

#[test]
fn metrics_are_the_c_structs() {
    let placement = readme_placement();
    let mut loads = WEIGHT;
    loads[12..].fill(0.0); // an idle layer: left out of the means
    let metrics = placement.metrics(&loads).unwrap();
    // SAFETY: zeroed plain-data struct with struct_size set; valid handle and slice.
    let mut raw: sys::eplb_metrics = unsafe { std::mem::zeroed() };
    raw.struct_size = std::mem::size_of::<sys::eplb_metrics>() as u32;
    let status = unsafe {
        sys::eplb_metrics_compute(placement.as_raw(), loads.as_ptr(), loads.len(), &mut raw)
    };
    assert_eq!(status, sys::EPLB_OK);
    assert_eq!(
        (
            metrics.num_layers,
            metrics.max_replicas,
            metrics.loaded_layers,
            metrics.duplicate_pairs,
            metrics.cross_node_replicas,
        ),
        (
            raw.num_layers,
            raw.max_replicas,
            raw.loaded_layers,
            raw.duplicate_pairs,
            raw.cross_node_replicas,
        )
    );
    assert_eq!((metrics.num_layers, metrics.loaded_layers), (2, 1));
    assert_eq!(
        [
            metrics.balancedness,
            metrics.min_balancedness,
            metrics.node_balancedness,
            metrics.max_load_over_bound,
            metrics.worst_max_load_over_bound,
            metrics.max_over_mean,
            metrics.max_load_over_node_bound,
        ],
        [
            raw.balancedness,
            raw.min_balancedness,
            raw.node_balancedness,
            raw.max_load_over_bound,
            raw.worst_max_load_over_bound,
            raw.max_over_mean,
            raw.max_load_over_node_bound,
        ]
    );

    let layer = placement.layer_metrics(1, &WEIGHT[12..]).unwrap();
    // SAFETY: as above.
    let mut raw: sys::eplb_layer_metrics = unsafe { std::mem::zeroed() };
    raw.struct_size = std::mem::size_of::<sys::eplb_layer_metrics>() as u32;
    let status = unsafe {
        sys::eplb_metrics_compute_layer(placement.as_raw(), 1, WEIGHT[12..].as_ptr(), 12, &mut raw)
    };
    assert_eq!(status, sys::EPLB_OK);
    assert_eq!(
        (
            layer.duplicate_gpus,
            layer.max_replicas,
            layer.cross_node_replicas
        ),
        (
            raw.duplicate_gpus,
            raw.max_replicas,
            raw.cross_node_replicas
        )
    );
    assert_eq!(
        [
            layer.total_load,
            layer.mean_gpu_load,
            layer.max_gpu_load,
            layer.lower_bound,
            layer.balancedness,
            layer.node_balancedness,
            layer.max_load_over_bound,
            layer.node_bound,
        ],
        [
            raw.total_load,
            raw.mean_gpu_load,
            raw.max_gpu_load,
            raw.lower_bound,
            raw.balancedness,
            raw.node_balancedness,
            raw.max_load_over_bound,
            raw.node_bound,
        ]
    );
    assert_eq!(layer.total_load, WEIGHT[12..].iter().sum::<f64>());
}

#[test]
fn snapshot_info_is_owned_rust_data() {
    let placement = readme_placement();
    let with_loads = Snapshot::from_bytes(
        &placement
            .to_snapshot_bytes(Some(&WEIGHT), Some("é label"))
            .unwrap(),
    )
    .unwrap();
    let info = with_loads.info().unwrap();
    // SAFETY: zeroed plain-data struct with struct_size set; a live handle.
    let mut raw: sys::eplb_snapshot_info = unsafe { std::mem::zeroed() };
    raw.struct_size = std::mem::size_of::<sys::eplb_snapshot_info>() as u32;
    let status = unsafe { sys::eplb_snapshot_get_info(with_loads.as_raw(), &mut raw) };
    assert_eq!(status, sys::EPLB_OK);
    assert_eq!(
        (
            info.format_major,
            info.format_minor,
            info.num_layers,
            info.num_logical_experts,
            info.num_physical_experts,
            info.num_nodes,
            info.num_gpus,
            info.num_groups,
            info.created_unix_seconds,
            info.file_size,
        ),
        (
            raw.format_major,
            raw.format_minor,
            raw.num_layers,
            raw.num_logical_experts,
            raw.num_physical_experts,
            raw.num_nodes,
            raw.num_gpus,
            raw.num_groups,
            raw.created_unix_seconds,
            raw.file_size,
        )
    );
    assert_eq!(info.plan_seconds, raw.plan_seconds);
    assert_eq!(info.algorithm, Some(Algorithm::Deepseek));
    assert!(info.has_loads && !info.has_coactivation && info.has_placement());
    assert_eq!(info.label, "é label");
    assert_eq!(info.library_version, eplb::version());
    let stored = info.balancedness.unwrap();
    assert_eq!(stored, raw.balancedness);
    assert_eq!(stored, placement.metrics(&WEIGHT).unwrap().balancedness);

    // Without loads no metrics are stored: None, not the C sentinel -1.
    let bare = Snapshot::from_bytes(&placement.to_snapshot_bytes(None, None).unwrap()).unwrap();
    let info = bare.info().unwrap();
    assert_eq!((info.balancedness, info.has_loads), (None, false));
    assert_eq!(info.label, "");

    // A statistics snapshot holds no placement.
    let tracker = Tracker::new(2, 12, 2, Window::Cumulative).unwrap();
    let stats = Snapshot::from_bytes(&tracker.to_snapshot_bytes(None).unwrap()).unwrap();
    let info = stats.info().unwrap();
    assert!(!info.has_placement() && info.has_coactivation && !info.has_loads);
    assert_eq!((info.num_layers, info.num_logical_experts), (2, 12));
    assert_eq!((info.num_physical_experts, info.algorithm), (0, None));
}

#[test]
fn tracker_options_default_is_the_c_init() {
    // SAFETY: init fills a zeroed plain-data struct.
    let mut raw: sys::eplb_tracker_options = unsafe { std::mem::zeroed() };
    unsafe { sys::eplb_tracker_options_init(&mut raw) };
    let defaults = TrackerOptions::default();
    assert_eq!(
        (
            defaults.num_layers,
            defaults.num_logical_experts,
            defaults.top_k
        ),
        (raw.num_layers, raw.num_logical_experts, raw.top_k)
    );
    assert_eq!(raw.window, sys::EPLB_WINDOW_CUMULATIVE);
    assert_eq!(defaults.window, Window::Cumulative);
    assert_eq!(defaults.reservoir_capacity, raw.reservoir_capacity);
    assert_eq!(defaults.seed, raw.seed);
    assert_eq!(
        TrackerOptions::new(3, 8, 2),
        TrackerOptions {
            num_layers: 3,
            num_logical_experts: 8,
            top_k: 2,
            ..TrackerOptions::default()
        }
    );
    // A tracker made with the defaults is one made with the C init.
    let tracker = Tracker::new(3, 8, 2, Window::default()).unwrap();
    assert_eq!(tracker.options().unwrap(), TrackerOptions::new(3, 8, 2));
}

#[test]
fn tracker_options_round_trip_through_c_and_snapshots() {
    for window in [Window::Cumulative, Window::Sliding(5), Window::Decay(0.5)] {
        let options = TrackerOptions {
            window,
            reservoir_capacity: 16,
            seed: 77,
            ..TrackerOptions::new(2, 6, 3)
        };
        let tracker = Tracker::with_options(&options).unwrap();
        assert_eq!(tracker.options().unwrap(), options);
        // The C struct holds what was asked for.
        // SAFETY: init sets struct_size; a live handle.
        let mut raw: sys::eplb_tracker_options = unsafe { std::mem::zeroed() };
        unsafe { sys::eplb_tracker_options_init(&mut raw) };
        let status = unsafe { sys::eplb_tracker_get_options(tracker.as_raw(), &mut raw) };
        assert_eq!(status, sys::EPLB_OK);
        assert_eq!((raw.reservoir_capacity, raw.seed), (16, 77));
        match window {
            Window::Sliding(n) => assert_eq!(
                (raw.window, raw.window_batches),
                (sys::EPLB_WINDOW_SLIDING, n)
            ),
            Window::Decay(d) => assert_eq!((raw.window, raw.decay), (sys::EPLB_WINDOW_DECAY, d)),
            _ => assert_eq!(raw.window, sys::EPLB_WINDOW_CUMULATIVE),
        }
        // A restored tracker reads unused window fields back as stored; the enum has none.
        let restored = Snapshot::from_bytes(&tracker.to_snapshot_bytes(None).unwrap())
            .unwrap()
            .tracker()
            .unwrap()
            .unwrap();
        assert_eq!(restored.options().unwrap(), options, "{window:?}");
    }
    // Bad options are refused by the library, naming the field and value.
    let error = Tracker::new(1, 4, 2, Window::Sliding(0)).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument);
    assert!(error.message.contains("window_batches (0)"), "{error}");
    let error = Tracker::new(1, 4, 2, Window::Decay(1.5)).err().unwrap();
    assert!(error.message.contains("decay (1.5)"), "{error}");
}

#[test]
fn snapshot_options_default_is_the_c_init() {
    // SAFETY: init fills a zeroed plain-data struct.
    let mut raw: sys::eplb_snapshot_options = unsafe { std::mem::zeroed() };
    unsafe { sys::eplb_snapshot_options_init(&mut raw) };
    let defaults = SnapshotOptions::default();
    assert_eq!(defaults.compression_level, raw.compression_level);
    assert!(defaults.loads.is_none() && defaults.label.is_none() && defaults.tracker.is_none());
}

#[test]
fn handles_reach_the_sys_functions() {
    let placement = readme_placement();
    let mut tracker = Tracker::new(2, 12, 2, Window::Cumulative).unwrap();
    // SAFETY: live handles; the slice holds one row of top_k 2.
    let status =
        unsafe { sys::eplb_tracker_record(tracker.as_raw_mut(), 1, [3, 4].as_ptr(), 1, 2) };
    assert_eq!(status, sys::EPLB_OK);
    assert_eq!(tracker.loads().unwrap()[12 + 3..12 + 5], [1.0, 1.0]);
    // A kernel entry point that takes a placement.
    let mut bytes = 0usize;
    // SAFETY: a live handle and an output pointer.
    let status = unsafe {
        sys::eplb_kernel_shared_waterfill_workspace_size(placement.as_raw(), 100, &mut bytes)
    };
    assert_eq!(status, sys::EPLB_OK);
    assert!(bytes >= 8 * 100, "{bytes}");
}
