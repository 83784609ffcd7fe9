//! Per-batch balancing against brute force over every integer split of tiny instances, and the
//! shared-expert waterfill against a Rust transcription of its documented greedy rule.
use eplb::{
    shared_expert_waterfill, split_rank_quotas, GpuTerms, Placement, SplitSolver, Status,
    WaterfillOptions,
};

/// 1 layer, 4 experts, 6 slots on 3 GPUs (one node): experts 0 and 1 have two replicas.
fn three_gpus() -> Placement {
    Placement::from_phy2log(1, 4, 6, 1, 3, &[0, 1, 0, 2, 1, 3]).unwrap()
}

/// 1 layer, 4 experts, 8 slots on 4 GPUs in 2 nodes: every expert on both nodes.
fn two_nodes() -> Placement {
    Placement::from_phy2log(1, 4, 8, 2, 4, &[0, 1, 2, 3, 0, 2, 1, 3]).unwrap()
}

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Calls `visit` with every `quotas` [slots][nodes] that splits each (expert, node) count over
/// the expert's slots.
fn every_split(
    phy2log: &[i32],
    counts: &[i32], // [experts][nodes]
    nodes: usize,
    visit: &mut dyn FnMut(&[i32]),
) {
    let items: Vec<(Vec<usize>, usize, i32)> = (0..counts.len())
        .map(|i| {
            let (e, n) = (i / nodes, i % nodes);
            let slots = (0..phy2log.len())
                .filter(|&s| phy2log[s] == e as i32)
                .collect();
            (slots, n, counts[i])
        })
        .collect();
    fn go(
        items: &[(Vec<usize>, usize, i32)],
        nodes: usize,
        quotas: &mut Vec<i32>,
        visit: &mut dyn FnMut(&[i32]),
    ) {
        let Some(((slots, node, count), rest)) = items.split_first() else {
            visit(quotas);
            return;
        };
        // Every composition of `count` into slots.len() parts.
        fn parts(
            slots: &[usize],
            node: usize,
            nodes: usize,
            left: i32,
            quotas: &mut Vec<i32>,
            then: &mut dyn FnMut(&mut Vec<i32>),
        ) {
            let (&slot, more) = slots.split_first().unwrap();
            if more.is_empty() {
                quotas[slot * nodes + node] += left;
                then(quotas);
                quotas[slot * nodes + node] -= left;
                return;
            }
            for take in 0..=left {
                quotas[slot * nodes + node] += take;
                parts(more, node, nodes, left - take, quotas, then);
                quotas[slot * nodes + node] -= take;
            }
        }
        parts(slots, *node, nodes, *count, quotas, &mut |q| {
            go(rest, nodes, q, visit)
        });
    }
    let mut quotas = vec![0; phy2log.len() * nodes];
    go(&items, nodes, &mut quotas, visit);
}

/// Weighted GPU loads of `quotas` [slots][nodes].
fn gpu_loads(quotas: &[i32], slots: usize, gpus: usize, w: &[f64], extra: &[f64]) -> Vec<f64> {
    let per_gpu = slots / gpus;
    let nodes = quotas.len() / slots;
    (0..gpus)
        .map(|g| {
            let tokens: i32 = quotas[g * per_gpu * nodes..(g + 1) * per_gpu * nodes]
                .iter()
                .sum();
            w[g] * (extra[g] + tokens as f64)
        })
        .collect()
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

#[test]
fn solve_matches_brute_force() {
    let placement = three_gpus();
    let phy2log = placement.phy2log().unwrap();
    let mut solver = SplitSolver::new().unwrap();
    let mut rng = Lcg(3);
    let weights = [1.0, 2.0, 1.5];
    let extra = [0.0, 1.0, 3.0];
    for round in 0..40 {
        let counts: Vec<i32> = (0..4).map(|_| rng.below(9) as i32).collect();
        let (w, x, terms) = if round % 2 == 0 {
            (vec![1.0; 3], vec![0.0; 3], GpuTerms::default())
        } else {
            let terms = GpuTerms {
                weights: Some(&weights),
                extra_load: Some(&extra),
            };
            (weights.to_vec(), extra.to_vec(), terms)
        };
        let split = solver.solve(&placement, 0, &counts, &terms).unwrap();
        // Quotas sum exactly to each expert's count over its replicas.
        for e in 0..4 {
            let total: i32 = (0..6)
                .filter(|&s| phy2log[s] == e)
                .map(|s| split.quotas[s])
                .sum();
            assert_eq!(total, counts[e as usize]);
        }
        assert!(split.quotas.iter().all(|&q| q >= 0));
        // The reported max load is the quotas' max load, and the brute-force optimum.
        assert_eq!(split.max_load, max(&gpu_loads(&split.quotas, 6, 3, &w, &x)));
        let mut best = f64::INFINITY;
        every_split(&phy2log, &counts, 1, &mut |q| {
            best = best.min(max(&gpu_loads(q, 6, 3, &w, &x)));
        });
        assert_eq!(split.max_load, best, "counts {counts:?}");
    }
}

#[test]
fn solve_by_node_matches_brute_force() {
    let placement = two_nodes();
    let phy2log = placement.phy2log().unwrap();
    let mut solver = SplitSolver::new().unwrap();
    let mut rng = Lcg(11);
    let (w, x) = ([1.0; 4], [0.0; 4]);
    let node_of_slot = |s: usize| s / 4;
    for round in 0..20 {
        let counts: Vec<i32> = (0..8).map(|_| rng.below(4) as i32).collect();
        let slack = [0.0, 0.25][round % 2];
        let split = solver
            .solve_by_node(&placement, 0, &counts, slack, &GpuTerms::default())
            .unwrap();
        let cross = |q: &[i32]| -> i64 {
            (0..8)
                .flat_map(|s| (0..2).map(move |n| (s, n)))
                .filter(|&(s, n)| node_of_slot(s) != n)
                .map(|(s, n)| q[s * 2 + n] as i64)
                .sum()
        };
        // Sums per (expert, source node), and the reported values recomputed.
        for e in 0..4 {
            for n in 0..2 {
                let total: i32 = (0..8)
                    .filter(|&s| phy2log[s] == e)
                    .map(|s| split.quotas[s * 2 + n])
                    .sum();
                assert_eq!(total, counts[e as usize * 2 + n]);
            }
        }
        assert_eq!(split.max_load, max(&gpu_loads(&split.quotas, 8, 4, &w, &x)));
        assert_eq!(split.cross_node_tokens, cross(&split.quotas));
        // Brute force: the optimum, then the fewest cross-node tokens within the slack.
        let mut optimum = f64::INFINITY;
        every_split(&phy2log, &counts, 2, &mut |q| {
            optimum = optimum.min(max(&gpu_loads(q, 8, 4, &w, &x)));
        });
        let bound = (1.0 + slack) * optimum + 1e-9;
        let mut fewest = i64::MAX;
        every_split(&phy2log, &counts, 2, &mut |q| {
            if max(&gpu_loads(q, 8, 4, &w, &x)) <= bound {
                fewest = fewest.min(cross(q));
            }
        });
        assert!(split.max_load <= bound, "counts {counts:?}");
        assert_eq!(split.cross_node_tokens, fewest, "counts {counts:?}");
    }
}

#[test]
fn rank_quotas_follow_the_interval_rule() {
    let placement = three_gpus();
    let info = placement.info().unwrap();
    let width = info.log2phy_width as usize;
    let log2phy = placement.log2phy().unwrap();
    let mut solver = SplitSolver::new().unwrap();
    let mut rng = Lcg(5);
    let ranks = 3usize;
    for _ in 0..20 {
        let rank_counts: Vec<i32> = (0..ranks * 4).map(|_| rng.below(5) as i32).collect();
        let counts: Vec<i32> = (0..4)
            .map(|e| (0..ranks).map(|r| rank_counts[r * 4 + e]).sum())
            .collect();
        let quotas = solver
            .solve(&placement, 0, &counts, &GpuTerms::default())
            .unwrap()
            .quotas;
        let mut summed = vec![0; 6];
        for rank in 0..ranks {
            let out = split_rank_quotas(
                &placement,
                0,
                &quotas,
                &rank_counts,
                ranks as u32,
                rank as u32,
            )
            .unwrap();
            // Rank r owns [O, O + c) of each expert's entries, replica i takes [Q, Q + q).
            let mut expected = vec![0; 6];
            for e in 0..4 {
                let own_start: i32 = (0..rank).map(|r| rank_counts[r * 4 + e]).sum();
                let own_end = own_start + rank_counts[rank * 4 + e];
                let mut start = 0;
                for &slot in log2phy[e * width..(e + 1) * width]
                    .iter()
                    .filter(|&&s| s >= 0)
                {
                    let end = start + quotas[slot as usize];
                    expected[slot as usize] = (end.min(own_end) - start.max(own_start)).max(0);
                    start = end;
                }
            }
            assert_eq!(out, expected, "rank {rank} counts {rank_counts:?}");
            for (s, q) in out.iter().enumerate() {
                summed[s] += q;
            }
        }
        assert_eq!(summed, quotas);
    }
}

#[test]
fn split_errors_carry_the_c_status() {
    let placement = three_gpus();
    let mut solver = SplitSolver::new().unwrap();
    let none = GpuTerms::default();
    let cases: Vec<(&[i32], GpuTerms, &str)> = vec![
        (&[1, 2, 3], none, "counts"),
        (&[1, -2, 3, 4], none, "-2"),
        (
            &[1, 2, 3, 4],
            GpuTerms {
                weights: Some(&[1.0, 1.0]),
                extra_load: None,
            },
            "",
        ),
        (
            &[1, 2, 3, 4],
            GpuTerms {
                weights: Some(&[1.0, 0.0, 1.0]),
                extra_load: None,
            },
            "",
        ),
        (
            &[1, 2, 3, 4],
            GpuTerms {
                weights: Some(&[1.0; 3]),
                extra_load: Some(&[0.0; 2]),
            },
            "gpu_extra_load",
        ),
    ];
    for (counts, terms, needle) in cases {
        let error = solver.solve(&placement, 0, counts, &terms).err().unwrap();
        assert_eq!(error.status, Status::InvalidArgument, "{error}");
        assert!(error.message.contains(needle), "{error}");
    }
    let error = solver
        .solve(&placement, 1, &[1, 2, 3, 4], &none)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    let error = solver
        .solve_by_node(&placement, 0, &[1, 2, 3, 4], f64::NAN, &none)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    let error = solver
        .solve_by_node(&placement, 0, &[1, 2, 3], 0.0, &none)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    // The solver still works after errors, also on another thread (it is Send).
    let (split, solver) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let split = solver.solve(&placement, 0, &[1, 2, 3, 4], &none).unwrap();
                (split, solver)
            })
            .join()
            .unwrap()
    });
    drop(solver);
    assert_eq!(split.quotas.iter().sum::<i32>(), 10);
    // Quotas that do not sum to the ranks' entries, and a rank out of range.
    let quotas = split.quotas;
    let error = split_rank_quotas(&placement, 0, &quotas, &[1, 2, 3, 5], 1, 0)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    let error = split_rank_quotas(&placement, 0, &quotas, &[1, 2, 3, 4], 1, 1)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    let error = split_rank_quotas(&placement, 0, &quotas[..5], &[1, 2, 3, 4], 1, 0)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
}

/// The documented sequential greedy of eplb_shared_expert_waterfill, transcribed, for the
/// test's topology: 8 slots on 4 GPUs (slot s on GPU s / 2).
fn waterfill_oracle(
    slots: &[i32],
    top_k: usize,
    options: &WaterfillOptions,
    weights: &[f64],
    loads: &mut [f64],
) -> Vec<i32> {
    let (per_gpu, num_physical) = (2usize, 8i32);
    let (source, any_gpu) = (options.source_gpu, options.any_gpu);
    let tokens = slots.len() / top_k;
    let gpus = weights.len();
    let mut candidates: Vec<Vec<usize>> = Vec::new();
    for t in 0..tokens {
        let row = &slots[t * top_k..(t + 1) * top_k];
        let mut c: Vec<usize> = Vec::new();
        if row.iter().any(|&s| s >= 0) {
            if any_gpu {
                c = (0..gpus).collect();
            } else {
                for &s in row.iter().filter(|&&s| s >= 0) {
                    let g = s as usize / per_gpu;
                    if !c.contains(&g) {
                        c.push(g);
                    }
                }
                if let Some(source) = source {
                    let g = source[t] as usize;
                    if !c.contains(&g) {
                        c.push(g);
                    }
                }
            }
        }
        candidates.push(c);
    }
    let mut order: Vec<usize> = (0..tokens).collect();
    order.sort_by_key(|&t| (candidates[t].len(), t));
    let mut chosen = vec![-1i32; tokens];
    for t in order {
        let mut best: Option<usize> = None;
        for &g in &candidates[t] {
            let cost = weights[g] * (loads[g] + 1.0);
            best = match best {
                None => Some(g),
                Some(b) => {
                    let best_cost = weights[b] * (loads[b] + 1.0);
                    let is_source = |x: usize| source.is_some_and(|s| s[t] as usize == x);
                    let better = cost < best_cost
                        || (cost == best_cost
                            && ((is_source(g) && !is_source(b))
                                || (is_source(g) == is_source(b) && g < b)));
                    Some(if better { g } else { b })
                }
            };
        }
        if let Some(g) = best {
            loads[g] += 1.0;
            chosen[t] = num_physical + g as i32;
        }
    }
    (0..tokens)
        .flat_map(|t| {
            slots[t * top_k..(t + 1) * top_k]
                .iter()
                .copied()
                .chain(std::iter::once(chosen[t]))
        })
        .collect()
}

#[test]
fn waterfill_matches_the_greedy_rule() {
    // 8 slots on 4 GPUs: slot s on GPU s / 2.
    let placement = Placement::from_phy2log(1, 8, 8, 2, 4, &[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    let mut rng = Lcg(17);
    let top_k = 2usize;
    for round in 0..30 {
        let tokens = 1 + rng.below(40) as usize;
        let slots: Vec<i32> = (0..tokens * top_k)
            .map(|_| rng.below(10) as i32 - 1) // -1 (unused) or a slot; some rows all -1
            .map(|s| if s > 7 { -1 } else { s })
            .collect();
        let source: Vec<i32> = (0..tokens).map(|_| rng.below(4) as i32).collect();
        let weights = [1.0, 1.5, 1.0, 2.0];
        let start: Vec<f64> = (0..4).map(|_| rng.below(6) as f64).collect();
        let options = WaterfillOptions {
            source_gpu: (round % 2 == 0).then_some(source.as_slice()),
            gpu_weights: Some(&weights),
            any_gpu: round % 3 == 0,
        };
        let mut loads = start.clone();
        let out =
            shared_expert_waterfill(&placement, &slots, top_k as u32, Some(&mut loads), &options)
                .unwrap();
        let mut expected_loads = start.clone();
        let expected = waterfill_oracle(&slots, top_k, &options, &weights, &mut expected_loads);
        assert_eq!(out, expected, "round {round}");
        assert_eq!(loads, expected_loads, "round {round}");
        // Without loads the library counts each GPU's valid (token, slot) entries (a token with
        // two slots on one GPU counts twice there).
        let mut counted = [0.0; 4];
        for &slot in slots.iter().filter(|&&s| s >= 0) {
            counted[slot as usize / 2] += 1.0;
        }
        let without = shared_expert_waterfill(&placement, &slots, top_k as u32, None, &options);
        let with_counted = shared_expert_waterfill(
            &placement,
            &slots,
            top_k as u32,
            Some(&mut counted),
            &options,
        );
        assert_eq!(without.unwrap(), with_counted.unwrap(), "round {round}");
    }
}

#[test]
fn waterfill_errors() {
    let placement = Placement::from_phy2log(1, 8, 8, 2, 4, &[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    let none = WaterfillOptions::default();
    let slots = [0, 1, 2, 3];
    let status = |r: eplb::Result<Vec<i32>>| r.err().unwrap().status;
    // Rows, lengths and values checked here or by the library, all InvalidArgument.
    assert_eq!(
        status(shared_expert_waterfill(
            &placement,
            &slots[..3],
            2,
            None,
            &none
        )),
        Status::InvalidArgument
    );
    assert_eq!(
        status(shared_expert_waterfill(&placement, &slots, 0, None, &none)),
        Status::InvalidArgument
    );
    assert_eq!(
        status(shared_expert_waterfill(&placement, &[0, 8], 2, None, &none)),
        Status::InvalidArgument
    );
    let short_source = WaterfillOptions {
        source_gpu: Some(&[0]),
        ..Default::default()
    };
    assert_eq!(
        status(shared_expert_waterfill(
            &placement,
            &slots,
            2,
            None,
            &short_source
        )),
        Status::InvalidArgument
    );
    let bad_source = WaterfillOptions {
        source_gpu: Some(&[0, 4]),
        ..Default::default()
    };
    let error = shared_expert_waterfill(&placement, &slots, 2, None, &bad_source)
        .err()
        .unwrap();
    assert_eq!(error.status, Status::InvalidArgument);
    assert!(error.message.contains('4'), "{error}");
    let mut three = [0.0; 3];
    assert_eq!(
        status(shared_expert_waterfill(
            &placement,
            &slots,
            2,
            Some(&mut three),
            &none
        )),
        Status::InvalidArgument
    );
    let mut negative = [0.0, -1.0, 0.0, 0.0];
    assert_eq!(
        status(shared_expert_waterfill(
            &placement,
            &slots,
            2,
            Some(&mut negative),
            &none
        )),
        Status::InvalidArgument
    );
    // Outputs are written only on success.
    assert_eq!(negative, [0.0, -1.0, 0.0, 0.0]);
}
