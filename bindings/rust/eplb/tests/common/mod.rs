//! What several test files share: DeepSeek's published README example (2 layers of 12 experts,
//! 16 slots on 8 GPUs in 2 nodes, 4 groups).
#![allow(dead_code)] // each test crate uses part of it

use eplb::{Algorithm, Placement, Planner, PlannerOptions};

pub const WEIGHT: [f64; 24] = [
    90., 132., 40., 61., 104., 165., 39., 4., 73., 56., 183., 86., //
    20., 107., 104., 64., 19., 197., 187., 157., 172., 86., 16., 27.,
];

/// The README example's planner options, with `algorithm`.
pub fn readme_options(algorithm: Algorithm) -> PlannerOptions {
    PlannerOptions {
        algorithm,
        num_layers: 2,
        num_logical_experts: 12,
        num_physical_experts: 16,
        num_groups: 4,
        num_nodes: 2,
        num_gpus: 8,
        ..Default::default()
    }
}

/// DeepSeek's plan of the README example.
pub fn readme_placement() -> Placement {
    Planner::new(&readme_options(Algorithm::Deepseek))
        .unwrap()
        .plan(&WEIGHT)
        .unwrap()
}
