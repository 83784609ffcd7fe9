//! `Planner::plan_near`: a re-plan near the placement the GPUs hold keeps what is balanced
//! enough, stays within `min_balance` of the fresh plan's balancedness, moves fewer experts than
//! the migration to the fresh plan, and refuses bad arguments naming the value.
use eplb::{
    Algorithm, Migration, MigrationOptions, NearOptions, NearReport, Placement, PlanControl,
    Planner, PlannerOptions, Status,
};

const LAYERS: u32 = 4;
const ALGORITHMS: [Algorithm; 3] = [
    Algorithm::Balanced,
    Algorithm::BalancedHierarchical,
    Algorithm::Deepseek,
];

/// The C tests' shape for plan_near: 4 layers of 32 experts, 48 slots on 8 GPUs in 2 nodes,
/// 4 groups.
fn near_shape(algorithm: Algorithm) -> PlannerOptions {
    PlannerOptions {
        algorithm,
        num_layers: LAYERS,
        num_logical_experts: 32,
        num_physical_experts: 48,
        num_groups: 4,
        num_nodes: 2,
        num_gpus: 8,
        ..Default::default()
    }
}

/// Deterministic standard normal draws (xorshift64* and Box-Muller).
struct Normal(u64);

impl Normal {
    fn new(seed: u64) -> Normal {
        Normal(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }

    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        // In (0, 1]: the logarithm below stays finite.
        ((self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn sample(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `[layers][experts]` with a few popular experts (log-normal popularity).
fn skewed_loads(options: &PlannerOptions, rng: &mut Normal) -> Vec<f64> {
    let len = options.num_layers as usize * options.num_logical_experts as usize;
    (0..len).map(|_| 1000.0 * rng.sample().exp()).collect()
}

/// `loads`, each multiplied by a log-normal factor (sigma 0.4).
fn drifted(loads: &[f64], rng: &mut Normal) -> Vec<f64> {
    loads
        .iter()
        .map(|l| l * (0.4 * rng.sample()).exp())
        .collect()
}

fn moved_experts(old: &Placement, new: &Placement, loads: &[f64]) -> u64 {
    Migration::plan(old, new, Some(loads), &MigrationOptions::default())
        .unwrap()
        .summary()
        .unwrap()
        .moved_experts
}

fn balancedness(placement: &Placement, loads: &[f64]) -> f64 {
    placement.metrics(loads).unwrap().balancedness
}

#[test]
fn the_default_min_balance_is_the_headers() {
    assert_eq!(NearOptions::default().min_balance, 0.998); // documented in eplb.h
}

#[test]
fn the_plan_of_the_same_loads_is_kept_as_it_is() {
    for algorithm in ALGORITHMS {
        let options = near_shape(algorithm);
        let loads = skewed_loads(&options, &mut Normal::new(1));
        let mut planner = Planner::new(&options).unwrap();
        let current = planner.plan(&loads).unwrap();
        let (near, report) = planner
            .plan_near(&loads, &current, &NearOptions::default())
            .unwrap();
        assert_eq!(report.layers_kept, LAYERS, "{algorithm}: {report:?}");
        assert_eq!(report.layers_rebalanced + report.layers_replanned, 0);
        assert_eq!(near.phy2log().unwrap(), current.phy2log().unwrap());
        assert_eq!(moved_experts(&current, &near, &loads), 0);
    }
}

#[test]
fn drifted_loads_stay_balanced_and_move_fewer_experts_than_the_fresh_plan() {
    for algorithm in ALGORITHMS {
        let options = near_shape(algorithm);
        let mut rng = Normal::new(5);
        let old_loads = skewed_loads(&options, &mut rng);
        let mut planner = Planner::new(&options).unwrap();
        let current = planner.plan(&old_loads).unwrap();
        let (mut moved_near, mut moved_fresh) = (0, 0);
        for min_balance in [0.99, 0.995, 0.998, 1.0] {
            let loads = drifted(&old_loads, &mut rng);
            let (near, report) = planner
                .plan_near(&loads, &current, &NearOptions { min_balance })
                .unwrap();
            let fresh = planner.plan(&loads).unwrap();
            let NearReport {
                layers_kept,
                layers_rebalanced,
                layers_replanned,
                layers_partly_replanned,
                ..
            } = report;
            assert_eq!(
                layers_kept + layers_rebalanced + layers_replanned + layers_partly_replanned,
                LAYERS
            );
            // Per layer the target holds, so the mean balancedness does too.
            let (got, floor) = (
                balancedness(&near, &loads),
                min_balance * balancedness(&fresh, &loads),
            );
            assert!(
                got >= floor - 1e-12,
                "{algorithm}, min_balance {min_balance}: {got} < {floor}"
            );
            moved_near += moved_experts(&current, &near, &loads);
            moved_fresh += moved_experts(&current, &fresh, &loads);
        }
        assert!(
            moved_near < moved_fresh,
            "{algorithm}: the near plans move {moved_near} experts, the fresh plans {moved_fresh}"
        );
    }
}

#[test]
fn a_control_counts_two_steps_per_layer() {
    let options = near_shape(Algorithm::BalancedHierarchical);
    let mut rng = Normal::new(3);
    let loads = skewed_loads(&options, &mut rng);
    let mut planner = Planner::new(&options).unwrap();
    let control = PlanControl::new().unwrap();
    planner.set_control(Some(&control)).unwrap();
    let current = planner.plan(&loads).unwrap();
    let before = control.progress();
    planner
        .plan_near(
            &drifted(&loads, &mut rng),
            &current,
            &NearOptions::default(),
        )
        .unwrap();
    let after = control.progress();
    assert_eq!(
        after.steps_total - before.steps_total,
        2 * u64::from(LAYERS)
    );
    assert_eq!(after.steps_done, after.steps_total);
}

#[test]
fn bad_arguments_are_invalid_arguments_naming_the_value() {
    let options = near_shape(Algorithm::Balanced);
    let loads = skewed_loads(&options, &mut Normal::new(2));
    let mut planner = Planner::new(&options).unwrap();
    let current = planner.plan(&loads).unwrap();
    let one_node =
        Placement::from_phy2log(LAYERS, 32, 48, 1, 8, &current.phy2log().unwrap()).unwrap();
    let mut negative = loads.clone();
    negative[5] = -2.0;
    let mut affine = Planner::new(&PlannerOptions {
        affinity: true,
        ..near_shape(Algorithm::Balanced)
    })
    .unwrap();
    let defaults = NearOptions::default();
    let with = |min_balance| NearOptions { min_balance };
    // (text the message holds, on the affinity planner, loads, current, options)
    let cases: [(&str, bool, &[f64], &Placement, NearOptions); 8] = [
        ("min_balance (0)", false, &loads, &current, with(0.0)),
        ("min_balance (1.5)", false, &loads, &current, with(1.5)),
        ("min_balance (-0.5)", false, &loads, &current, with(-0.5)),
        ("min_balance (nan)", false, &loads, &current, with(f64::NAN)),
        ("num_nodes (1)", false, &loads, &one_node, defaults.clone()),
        ("loads", false, &loads[..7], &current, defaults.clone()),
        ("-2", false, &negative, &current, defaults.clone()),
        ("affinity", true, &loads, &current, defaults.clone()),
    ];
    for (text, on_affine, loads, current, options) in cases {
        let planner = if on_affine { &mut affine } else { &mut planner };
        let error = planner.plan_near(loads, current, &options).unwrap_err();
        assert_eq!(error.status, Status::InvalidArgument, "{text}: {error}");
        assert!(error.message.contains(text), "{text}: {error}");
    }
    // The planner plans on after the refusals.
    let (near, report) = planner.plan_near(&loads, &current, &defaults).unwrap();
    assert_eq!(report.layers_kept, LAYERS);
    assert_eq!(near.phy2log().unwrap(), current.phy2log().unwrap());
}
