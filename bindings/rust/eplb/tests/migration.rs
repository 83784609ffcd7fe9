//! Migration plans checked by replaying their transfers on the old phy2log in Rust: every step
//! reads only the placement before it, ends at the C step placement, and the last one at the
//! target; the summary's counts are recounted from the transfers.
use std::collections::{BTreeMap, HashMap, HashSet};

mod common;

use common::{readme_placement, WEIGHT};
use eplb::{
    Algorithm, Migration, MigrationOptions, Placement, Planner, PlannerOptions, Relabel, Status,
    TransferKind, Workload, WorkloadOptions,
};

const GIB: f64 = (1u64 << 30) as f64;

/// The README's shape: 2 layers, 12 experts, 16 slots on 8 GPUs in 2 nodes.
fn readme_pair() -> (Placement, Placement) {
    // Old: slot p holds expert p % 12 (no GPU holds an expert twice).
    let trivial: Vec<i32> = (0..32).map(|i| (i % 16) % 12).collect();
    let old = Placement::from_phy2log(2, 12, 16, 2, 8, &trivial).unwrap();
    let new = readme_placement();
    (old, new)
}

/// A larger pair from the workload simulator: 3 layers, 16 experts, 24 slots (3 per GPU), 8 GPUs
/// in 2 nodes; old and new are balanced plans of two drifting batches.
fn simulated_pair() -> (Placement, Placement, Vec<f64>) {
    let mut workload = Workload::new(&WorkloadOptions {
        num_layers: 3,
        num_experts: 16,
        top_k: 4,
        drift_rho: 0.3,
        seed: 7,
        ..Default::default()
    })
    .unwrap();
    let mut planner = Planner::new(&PlannerOptions {
        algorithm: Algorithm::Balanced,
        num_layers: 3,
        num_logical_experts: 16,
        num_physical_experts: 24,
        num_nodes: 2,
        num_gpus: 8,
        ..Default::default()
    })
    .unwrap();
    let mut loads_of_batch = || {
        let ids = workload.next_batch(512).unwrap();
        let mut loads = vec![0.0; 3 * 16];
        for (i, &e) in ids.iter().enumerate() {
            let layer = i / (512 * 4);
            loads[layer * 16 + e as usize] += 1.0;
        }
        loads
    };
    let old_loads = loads_of_batch();
    let new_loads = loads_of_batch();
    let old = planner.plan(&old_loads).unwrap();
    let new = planner.plan(&new_loads).unwrap();
    (old, new, new_loads)
}

struct Shape {
    layers: usize,
    slots: usize,
    gpus: usize,
    nodes: usize,
    experts: usize,
}

fn shape(placement: &Placement) -> Shape {
    let info = placement.info().unwrap();
    Shape {
        layers: info.num_layers as usize,
        slots: info.num_physical_experts as usize,
        gpus: info.num_gpus as usize,
        nodes: info.num_nodes as usize,
        experts: info.num_logical_experts as usize,
    }
}

/// The experts of `gpu` of `layer`, sorted (a multiset).
fn gpu_experts(phy2log: &[i32], s: &Shape, layer: usize, gpu: usize) -> Vec<i32> {
    let per_gpu = s.slots / s.gpus;
    let start = layer * s.slots + gpu * per_gpu;
    let mut experts = phy2log[start..start + per_gpu].to_vec();
    experts.sort_unstable();
    experts
}

/// Transfers needed without relabeling (vLLM's rule): per GPU, its new experts that are not
/// already among its old ones (as multisets).
fn same_gpu_rule_count(old: &[i32], new: &[i32], s: &Shape) -> u64 {
    let mut total = 0u64;
    for layer in 0..s.layers {
        for gpu in 0..s.gpus {
            let mut have: HashMap<i32, usize> = HashMap::new();
            for e in gpu_experts(old, s, layer, gpu) {
                *have.entry(e).or_default() += 1;
            }
            for e in gpu_experts(new, s, layer, gpu) {
                match have.get_mut(&e) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => total += 1,
                }
            }
        }
    }
    total
}

/// Replays the schedule on old's phy2log and checks it, and the summary's counts, in Rust.
fn check_schedule(
    old: &Placement,
    new: &Placement,
    migration: &Migration,
    options: &MigrationOptions,
) -> Vec<i32> {
    let s = shape(old);
    let (per_gpu, gpus_per_node) = (s.slots / s.gpus, s.gpus / s.nodes);
    let summary = migration.summary().unwrap();
    let all = migration.transfers(None).unwrap();
    let mut state = old.phy2log().unwrap();
    let mut per_step = Vec::new();
    let mut staging: HashMap<(u32, u32), u32> = HashMap::new();
    for step in 0..summary.num_steps {
        let transfers = migration.transfers(Some(step)).unwrap();
        assert!(!transfers.is_empty(), "step {step} is empty");
        let before = state.clone();
        let mut written = HashSet::new();
        for t in &transfers {
            assert_eq!(t.step, step);
            let (layer, src, dst) = (t.layer as usize, t.src_slot as usize, t.dst_slot as usize);
            assert!(layer < s.layers && src < s.slots && dst < s.slots);
            // The source holds the expert in the placement in force before the step.
            assert_eq!(before[layer * s.slots + src], t.expert as i32, "{t:?}");
            assert_eq!(t.src_gpu as usize, src / per_gpu);
            assert_eq!(t.dst_gpu as usize, dst / per_gpu);
            let kind = if t.src_gpu == t.dst_gpu {
                TransferKind::SameGpu
            } else if t.src_gpu as usize / gpus_per_node == t.dst_gpu as usize / gpus_per_node {
                TransferKind::IntraNode
            } else {
                TransferKind::CrossNode
            };
            assert_eq!(t.kind, kind, "{t:?}");
            assert!(written.insert((layer, dst)), "slot written twice: {t:?}");
            state[layer * s.slots + dst] = t.expert as i32;
            *staging.entry((step, t.dst_gpu)).or_default() += 1;
        }
        // Every expert keeps a replica, and the state is the library's step placement.
        for layer in 0..s.layers {
            let row = &state[layer * s.slots..(layer + 1) * s.slots];
            for e in 0..s.experts as i32 {
                assert!(
                    row.contains(&e),
                    "step {step} layer {layer} lost expert {e}"
                );
            }
        }
        assert_eq!(
            state,
            migration.step_placement(step).unwrap().phy2log().unwrap()
        );
        per_step.push(transfers.len() as u64);
        // Transfers come ordered by layer, then destination slot.
        let keys: Vec<_> = transfers.iter().map(|t| (t.layer, t.dst_slot)).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
    }
    // All steps at once are the steps in order.
    let concatenated: usize = per_step.iter().sum::<u64>() as usize;
    assert_eq!(all.len(), concatenated);
    assert!(all.windows(2).all(|w| w[0].step <= w[1].step));
    // Every GPU ends with exactly the target's experts.
    let target = migration.target().unwrap().phy2log().unwrap();
    assert_eq!(state, target);

    // The summary, recounted.
    let count = |kind| all.iter().filter(|t| t.kind == kind).count() as u64;
    let bpe = options.bytes_per_expert;
    assert_eq!(summary.moved_experts, all.len() as u64);
    assert_eq!(summary.same_gpu_experts, count(TransferKind::SameGpu));
    assert_eq!(summary.intra_node_experts, count(TransferKind::IntraNode));
    assert_eq!(summary.cross_node_experts, count(TransferKind::CrossNode));
    assert_eq!(summary.moved_bytes, all.len() as u64 * bpe);
    assert_eq!(summary.same_gpu_bytes, count(TransferKind::SameGpu) * bpe);
    assert_eq!(
        summary.intra_node_bytes,
        count(TransferKind::IntraNode) * bpe
    );
    assert_eq!(
        summary.cross_node_bytes,
        count(TransferKind::CrossNode) * bpe
    );
    assert_eq!(
        summary.max_step_bytes,
        per_step.iter().max().copied().unwrap_or(0) * bpe
    );
    assert_eq!(
        summary.max_staging_experts,
        staging.values().max().copied().unwrap_or(0)
    );
    assert_eq!(summary.naive_experts, (s.layers * s.slots) as u64);
    let new_phy2log = new.phy2log().unwrap();
    assert_eq!(
        summary.same_gpu_rule_experts,
        same_gpu_rule_count(&old.phy2log().unwrap(), &new_phy2log, &s)
    );
    if summary.complete {
        assert_eq!(summary.full_migration_experts, summary.moved_experts);
    } else {
        assert!(summary.full_migration_experts > summary.moved_experts);
    }
    if options.max_layers_per_step > 0 {
        for step in 0..summary.num_steps {
            let layers: HashSet<u32> = migration
                .transfers(Some(step))
                .unwrap()
                .iter()
                .map(|t| t.layer)
                .collect();
            assert!(layers.len() <= options.max_layers_per_step as usize);
        }
    }

    // The GPU map is a permutation per layer and respects the relabel mode; a complete pure
    // relabeling puts exactly the new plan's experts of GPU g on GPU map[g].
    let map = migration.gpu_map().unwrap();
    assert_eq!(map.len(), s.layers * s.gpus);
    for layer in 0..s.layers {
        let row = &map[layer * s.gpus..(layer + 1) * s.gpus];
        let mut sorted = row.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..s.gpus as u32).collect::<Vec<_>>());
        for (g, &to) in row.iter().enumerate() {
            let (g, to) = (g, to as usize);
            match options.relabel {
                Relabel::SlotsOnly => assert_eq!(g, to),
                Relabel::GpusInNode => assert_eq!(g / gpus_per_node, to / gpus_per_node),
                Relabel::NodesAndGpus | Relabel::RepackInNode => {
                    // Whole nodes move together.
                    let first = row[g / gpus_per_node * gpus_per_node] as usize;
                    assert_eq!(first / gpus_per_node, to / gpus_per_node);
                }
            }
            if summary.complete && options.relabel != Relabel::RepackInNode {
                assert_eq!(
                    gpu_experts(&target, &s, layer, to),
                    gpu_experts(&new_phy2log, &s, layer, g)
                );
            }
        }
    }
    target
}

fn check_balancedness(
    old: &Placement,
    new: &Placement,
    migration: &Migration,
    loads: &[f64],
    options: &MigrationOptions,
) {
    let summary = migration.summary().unwrap();
    assert!(summary.has_loads);
    let balancedness = |p: &Placement| p.metrics(loads).unwrap().balancedness;
    let target = migration.target().unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(close(summary.old_balancedness, balancedness(old)));
    assert!(close(summary.new_balancedness, balancedness(new)));
    assert!(close(summary.target_balancedness, balancedness(&target)));
    assert!(close(
        summary.gain,
        summary.target_balancedness - summary.old_balancedness
    ));
    let gib = summary.moved_bytes as f64 / GIB;
    let gate = summary.moved_experts > 0
        && summary.gain >= options.min_gain
        && summary.gain / gib >= options.min_gain_per_gib;
    assert_eq!(summary.worth_it, gate, "{summary:?}");
}

#[test]
fn every_relabel_mode_replays_to_the_target() {
    let (old, new) = readme_pair();
    for relabel in [
        Relabel::NodesAndGpus,
        Relabel::GpusInNode,
        Relabel::SlotsOnly,
        Relabel::RepackInNode,
    ] {
        let options = MigrationOptions {
            relabel,
            bytes_per_expert: 3 << 20,
            ..Default::default()
        };
        let migration = Migration::plan(&old, &new, Some(&WEIGHT), &options).unwrap();
        let summary = migration.summary().unwrap();
        assert!(summary.complete && summary.num_steps >= 1, "{summary:?}");
        check_schedule(&old, &new, &migration, &options);
        check_balancedness(&old, &new, &migration, &WEIGHT, &options);
        if relabel != Relabel::RepackInNode {
            // A relabeling keeps the new plan's metrics.
            assert!((summary.target_balancedness - summary.new_balancedness).abs() < 1e-12);
        }
        // The optimal relabelings never move more than keeping every GPU's label.
        assert!(summary.full_migration_experts <= summary.same_gpu_rule_experts);
        if relabel == Relabel::SlotsOnly {
            assert_eq!(
                summary.full_migration_experts,
                summary.same_gpu_rule_experts
            );
        }
    }
}

#[test]
fn simulated_plans_replay_under_budgets() {
    let (old, new, loads) = simulated_pair();
    let unlimited =
        Migration::plan(&old, &new, Some(&loads), &MigrationOptions::default()).unwrap();
    let full = unlimited.summary().unwrap();
    check_schedule(&old, &new, &unlimited, &MigrationOptions::default());
    assert!(full.moved_experts > 4, "{full:?}");

    // One layer a step: more steps, each within one layer.
    let options = MigrationOptions {
        max_layers_per_step: 1,
        ..Default::default()
    };
    let chunked = Migration::plan(&old, &new, Some(&loads), &options).unwrap();
    check_schedule(&old, &new, &chunked, &options);
    assert!(chunked.summary().unwrap().num_steps >= 3);

    // A per-step byte budget: the same target, in smaller steps.
    let options = MigrationOptions {
        bytes_per_expert: 1000,
        max_bytes_per_step: 2000,
        ..Default::default()
    };
    let small_steps = Migration::plan(&old, &new, Some(&loads), &options).unwrap();
    let target = check_schedule(&old, &new, &small_steps, &options);
    assert_eq!(target, unlimited.target().unwrap().phy2log().unwrap());
    let summary = small_steps.summary().unwrap();
    assert!(summary.num_steps > full.num_steps, "{summary:?}");

    // A total budget: a partial schedule that moves at most the budget.
    let options = MigrationOptions {
        bytes_per_expert: 1000,
        max_total_bytes: 3000,
        ..Default::default()
    };
    let partial = Migration::plan(&old, &new, Some(&loads), &options).unwrap();
    check_schedule(&old, &new, &partial, &options);
    check_balancedness(&old, &new, &partial, &loads, &options);
    let summary = partial.summary().unwrap();
    assert!(!summary.complete, "{summary:?}");
    assert!(summary.moved_bytes <= 3000, "{summary:?}");
}

#[test]
fn the_worth_it_gate() {
    let (old, new) = readme_pair();
    for (min_gain, min_gain_per_gib) in [(-1.0, 0.0), (2.0, 0.0), (0.0, 1e12), (0.0, 1e-3)] {
        let options = MigrationOptions {
            min_gain,
            min_gain_per_gib,
            bytes_per_expert: 1 << 20,
            ..Default::default()
        };
        let migration = Migration::plan(&old, &new, Some(&WEIGHT), &options).unwrap();
        check_balancedness(&old, &new, &migration, &WEIGHT, &options);
        let worth_it = migration.summary().unwrap().worth_it;
        assert_eq!(worth_it, min_gain < 1.0 && min_gain_per_gib < 1.0);
    }
    // Without loads the gate only checks that something moves.
    let moving = Migration::plan(&old, &new, None, &MigrationOptions::default()).unwrap();
    let summary = moving.summary().unwrap();
    assert!(summary.worth_it && !summary.has_loads, "{summary:?}");
    assert_eq!(summary.old_balancedness, 0.0);
    check_schedule(&old, &new, &moving, &MigrationOptions::default());
    let idle = Migration::plan(&old, &old, None, &MigrationOptions::default()).unwrap();
    let summary = idle.summary().unwrap();
    assert!(!summary.worth_it && summary.complete, "{summary:?}");
    assert_eq!((summary.num_steps, summary.moved_experts), (0, 0));
    assert!(idle.transfers(None).unwrap().is_empty());
    assert_eq!(
        idle.target().unwrap().phy2log().unwrap(),
        old.phy2log().unwrap()
    );
}

#[test]
fn bad_input_returns_the_c_status() {
    let (old, new) = readme_pair();
    let defaults = MigrationOptions::default();
    let error = Migration::plan(&old, &new, Some(&WEIGHT[..23]), &defaults)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    let mut negative = WEIGHT;
    negative[3] = -1.0;
    let error = Migration::plan(&old, &new, Some(&negative), &defaults)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    // Placements of different shape: one node instead of two.
    let one_node = Placement::from_phy2log(2, 12, 16, 1, 8, &old.phy2log().unwrap()).unwrap();
    let error = Migration::plan(&old, &one_node, None, &defaults)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument);
    assert!(error.message.contains("node"), "{error}");
    let zero_bytes = MigrationOptions {
        bytes_per_expert: 0,
        ..Default::default()
    };
    let error = Migration::plan(&old, &new, None, &zero_bytes)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument);
    assert!(error.message.contains("bytes_per_expert"), "{error}");
    let nan_gate = MigrationOptions {
        min_gain: f64::NAN,
        ..Default::default()
    };
    let error = Migration::plan(&old, &new, None, &nan_gate).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument);

    let migration = Migration::plan(&old, &new, Some(&WEIGHT), &defaults).unwrap();
    let steps = migration.summary().unwrap().num_steps;
    for step in [steps, u32::MAX] {
        let error = migration.transfers(Some(step)).err().unwrap();
        assert_eq!(error.status, Status::InvalidArgument, "{error}");
        let error = migration.step_placement(step).err().unwrap();
        assert_eq!(error.status, Status::InvalidArgument, "{error}");
    }
}

#[test]
fn a_plan_is_shared_across_threads() {
    let (old, new) = readme_pair();
    let migration =
        Migration::plan(&old, &new, Some(&WEIGHT), &MigrationOptions::default()).unwrap();
    drop((old, new)); // the plan copied what it needs
    let expected = migration.transfers(None).unwrap();
    let per_thread: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| migration.transfers(None).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for transfers in per_thread {
        assert_eq!(transfers, expected);
    }
    // Transfers are keyed data: group them by step to check none is lost.
    let mut by_step: BTreeMap<u32, usize> = BTreeMap::new();
    for t in &expected {
        *by_step.entry(t.step).or_default() += 1;
    }
    assert_eq!(
        by_step.len(),
        migration.summary().unwrap().num_steps as usize
    );
}
