//! The workload simulator's documented properties, and the extra metrics against brute force
//! and Rust transcriptions of their documented rules.
use eplb::{
    Algorithm, Placement, Planner, PlannerOptions, Status, Tracker, Window, Workload,
    WorkloadOptions,
};

#[test]
fn workload_defaults_determinism_and_routing() {
    let defaults = WorkloadOptions::default();
    assert_eq!(
        (defaults.num_layers, defaults.num_experts, defaults.top_k),
        (1, 256, 8)
    );
    assert_eq!((defaults.num_groups, defaults.num_topics), (1, 32));
    assert_eq!((defaults.sigma_min, defaults.sigma_max), (0.5, 0.9));
    assert_eq!((defaults.drift_rho, defaults.seed), (1.0, 0));

    let options = WorkloadOptions {
        num_layers: 2,
        num_experts: 32,
        top_k: 4,
        num_groups: 8,
        topk_groups: 2,
        drift_rho: 0.9,
        seed: 42,
        ..Default::default()
    };
    let batches = |options: &WorkloadOptions| -> Vec<Vec<i32>> {
        let mut workload = Workload::new(options).unwrap();
        (0..3).map(|_| workload.next_batch(100).unwrap()).collect()
    };
    let first = batches(&options);
    assert_eq!(first, batches(&options), "not deterministic for a seed");
    let other_seed = WorkloadOptions {
        seed: 43,
        ..options.clone()
    };
    assert_ne!(first, batches(&other_seed));
    for batch in &first {
        assert_eq!(batch.len(), 2 * 100 * 4);
        for row in batch.chunks(4) {
            assert!(row.iter().all(|&e| (0..32).contains(&e)), "{row:?}");
            let mut sorted = row.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 4, "repeated id in {row:?}");
            // Group-limited routing: at most topk_groups groups of 4 experts.
            let mut groups: Vec<i32> = row.iter().map(|e| e / 4).collect();
            groups.sort_unstable();
            groups.dedup();
            assert!(groups.len() <= 2, "{row:?}");
        }
    }
    // A simulator moves to another thread (Send).
    let mut workload = Workload::new(&options).unwrap();
    let moved = std::thread::spawn(move || workload.next_batch(100).unwrap())
        .join()
        .unwrap();
    assert_eq!(moved, first[0]);
}

#[test]
fn workload_errors() {
    let error = Workload::new(&WorkloadOptions {
        num_experts: 4,
        top_k: 8,
        ..Default::default()
    })
    .err()
    .unwrap();
    assert_eq!(error.status, Status::InvalidArgument);
    assert!(error.message.contains("top_k"), "{error}");
    let error = Workload::new(&WorkloadOptions {
        drift_rho: 1.5,
        ..Default::default()
    })
    .err()
    .unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    let mut workload = Workload::new(&WorkloadOptions::default()).unwrap();
    let error = workload.next_batch(0).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
}

/// The smallest busiest-GPU load over every phy2log of one layer (each expert at least once, no
/// GPU holding an expert twice), loads split evenly over replicas.
fn brute_force_optimum(loads: &[f64], slots: usize, gpus: usize) -> f64 {
    let experts = loads.len();
    let per_gpu = slots / gpus;
    let mut best = f64::INFINITY;
    let mut phy2log = vec![0usize; slots];
    loop {
        let mut replicas = vec![0usize; experts];
        for &e in &phy2log {
            replicas[e] += 1;
        }
        let duplicate = (0..gpus).any(|g| {
            let row = &phy2log[g * per_gpu..(g + 1) * per_gpu];
            (1..row.len()).any(|i| row[..i].contains(&row[i]))
        });
        if replicas.iter().all(|&r| r > 0) && !duplicate {
            let busiest = (0..gpus)
                .map(|g| {
                    phy2log[g * per_gpu..(g + 1) * per_gpu]
                        .iter()
                        .map(|&e| loads[e] / replicas[e] as f64)
                        .sum::<f64>()
                })
                .fold(0.0, f64::max);
            best = best.min(busiest);
        }
        // Next phy2log in base `experts`.
        let mut i = 0;
        while i < slots && phy2log[i] == experts - 1 {
            phy2log[i] = 0;
            i += 1;
        }
        if i == slots {
            return best;
        }
        phy2log[i] += 1;
    }
}

#[test]
fn exact_optimum_matches_brute_force() {
    // (experts, slots, gpus): one slot per GPU, and two slots per GPU.
    for (experts, slots, gpus) in [(3usize, 5usize, 5usize), (4, 6, 3), (3, 6, 3)] {
        let trivial: Vec<i32> = (0..slots).map(|s| (s % experts) as i32).collect();
        let placement =
            Placement::from_phy2log(1, experts as u32, slots as u32, 1, gpus as u32, &trivial)
                .unwrap();
        for loads in [[7.0, 1.0, 3.0, 5.0], [10.0, 0.0, 2.5, 9.0], [1.0; 4]] {
            let loads = &loads[..experts];
            let optimum = placement.exact_optimum(loads).unwrap().unwrap();
            let expected = brute_force_optimum(loads, slots, gpus);
            assert!(
                (optimum - expected).abs() < 1e-9,
                "{experts}/{slots}/{gpus} {loads:?}: {optimum} vs {expected}"
            );
        }
    }
    // Three slots per GPU: too large to solve exactly.
    let placement = Placement::from_phy2log(1, 4, 6, 1, 2, &[0, 1, 2, 3, 0, 1]).unwrap();
    assert_eq!(
        placement.exact_optimum(&[1.0, 2.0, 3.0, 4.0]).unwrap(),
        None
    );
    let error = placement.exact_optimum(&[1.0, 2.0, 3.0]).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument);
    let error = placement
        .exact_optimum(&[1.0, f64::NAN, 3.0, 4.0])
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument);
}

fn readme_placement(algorithm: Algorithm, num_nodes: u32) -> Placement {
    Planner::new(&PlannerOptions {
        algorithm,
        num_layers: 1,
        num_logical_experts: 12,
        num_physical_experts: 16,
        num_groups: 4,
        num_nodes,
        num_gpus: 8,
        ..Default::default()
    })
    .unwrap()
    .plan(&LOADS)
    .unwrap()
}

const LOADS: [f64; 12] = [
    90., 132., 40., 61., 104., 165., 39., 4., 73., 56., 183., 86.,
];

#[test]
fn layer_metrics_and_relaxed_bound() {
    let placement = readme_placement(Algorithm::Deepseek, 2);
    let metrics = placement.layer_metrics(0, &LOADS).unwrap();
    let gpu_loads = placement.gpu_loads(&LOADS).unwrap();
    let total: f64 = LOADS.iter().sum();
    let busiest = gpu_loads.iter().copied().fold(0.0, f64::max);
    assert!((metrics.total_load - total).abs() < 1e-9);
    assert!((metrics.mean_gpu_load - total / 8.0).abs() < 1e-9);
    assert!((metrics.max_gpu_load - busiest).abs() < 1e-9);
    assert!((metrics.balancedness - total / 8.0 / busiest).abs() < 1e-12);
    // The relaxed bound never goes below the global bound, and falls as the budget grows.
    let tight = placement.relaxed_bound(&LOADS, 0).unwrap();
    let loose = placement.relaxed_bound(&LOADS, 4).unwrap();
    assert!(tight >= loose - 1e-9 && loose >= metrics.lower_bound - 1e-9);
    assert!(metrics.max_gpu_load >= metrics.lower_bound - 1e-9);
    // One node has no locality: the global bound.
    let flat = readme_placement(Algorithm::Balanced, 1);
    let flat_metrics = flat.layer_metrics(0, &LOADS).unwrap();
    assert!((flat.relaxed_bound(&LOADS, 0).unwrap() - flat_metrics.lower_bound).abs() < 1e-9);
    assert_eq!(
        placement
            .relaxed_bound(&LOADS[..11], 0)
            .err()
            .unwrap()
            .status,
        Status::InvalidArgument
    );
    assert_eq!(
        placement.layer_metrics(1, &LOADS).err().unwrap().status,
        Status::InvalidArgument
    );
}

/// Nodes touched per row by the header's replica-choice rule, transcribed.
fn nodes_touched_oracle(placement: &Placement, rows: &[i32], top_k: usize) -> f64 {
    let info = placement.info().unwrap();
    let (slots, nodes) = (info.num_physical_experts as usize, info.num_nodes as usize);
    let slots_per_node = slots / nodes;
    let phy2log = placement.phy2log().unwrap();
    let on_node =
        |e: i32, n: usize| phy2log[n * slots_per_node..(n + 1) * slots_per_node].contains(&e);
    let (mut sum, mut counted) = (0usize, 0usize);
    for row in rows.chunks(top_k) {
        let mut experts: Vec<i32> = row.iter().copied().filter(|&e| e >= 0).collect();
        experts.sort_unstable();
        experts.dedup();
        if experts.is_empty() {
            continue;
        }
        let mut chosen = vec![false; nodes];
        for &e in &experts {
            let homes: Vec<usize> = (0..nodes).filter(|&n| on_node(e, n)).collect();
            if homes.len() == 1 {
                chosen[homes[0]] = true;
            }
        }
        loop {
            let uncovered: Vec<i32> = experts
                .iter()
                .copied()
                .filter(|&e| !(0..nodes).any(|n| chosen[n] && on_node(e, n)))
                .collect();
            if uncovered.is_empty() {
                break;
            }
            let best = (0..nodes)
                .max_by_key(|&n| {
                    let covered = uncovered.iter().filter(|&&e| on_node(e, n)).count();
                    (covered, std::cmp::Reverse(n))
                })
                .unwrap();
            chosen[best] = true;
        }
        sum += chosen.iter().filter(|&&c| c).count();
        counted += 1;
    }
    if counted == 0 {
        0.0
    } else {
        sum as f64 / counted as f64
    }
}

#[test]
fn nodes_touched_matches_the_rule() {
    // 4 nodes, replicas spread by the balanced planner, rows from the simulator via a tracker's
    // samples.
    let placement = Planner::new(&PlannerOptions {
        algorithm: Algorithm::Balanced,
        num_layers: 1,
        num_logical_experts: 12,
        num_physical_experts: 16,
        num_nodes: 4,
        num_gpus: 8,
        ..Default::default()
    })
    .unwrap()
    .plan(&LOADS)
    .unwrap();
    let mut workload = Workload::new(&WorkloadOptions {
        num_experts: 12,
        top_k: 3,
        seed: 5,
        ..Default::default()
    })
    .unwrap();
    let mut tracker = Tracker::new(1, 12, 3, Window::Cumulative).unwrap();
    let mut batch = workload.next_batch(200).unwrap();
    for (i, id) in batch.iter_mut().enumerate() {
        if i % 7 == 0 {
            *id = -1; // masked slots
        }
    }
    tracker.record(0, &batch).unwrap();
    for rows in [batch.clone(), tracker.samples(0).unwrap(), vec![-1, -1, -1]] {
        let mean = placement.nodes_touched(0, &rows, 3).unwrap();
        let expected = nodes_touched_oracle(&placement, &rows, 3);
        assert!((mean - expected).abs() < 1e-12, "{mean} vs {expected}");
    }
    let error = placement.nodes_touched(0, &[0, 12, 1], 3).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument);
    assert!(error.message.contains("12"), "{error}");
    assert_eq!(
        placement.nodes_touched(0, &[0, 1], 3).err().unwrap().status,
        Status::InvalidArgument
    );
    assert_eq!(
        placement
            .nodes_touched(1, &[0, 1, 2], 3)
            .err()
            .unwrap()
            .status,
        Status::InvalidArgument
    );
}
