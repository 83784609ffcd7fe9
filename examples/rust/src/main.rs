//! A serving loop with libeplb: simulated batches of top-k routing recorded into a tracker, a
//! re-plan every 50 batches saved as a snapshot, and a restart that loads the snapshot at startup.
//! Usage: eplb-serving-loop [directory for placement.eplb]
use eplb::{Planner, PlannerOptions, Snapshot, Tracker, Window};

const LAYERS: u32 = 4;
const EXPERTS: u32 = 64;
const TOP_K: usize = 8;
const TOKENS: usize = 256;

/// A tiny deterministic generator (no crates): xorshift64*.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One batch of top-k routing: each token picks TOP_K distinct experts, hot experts more often.
fn route(rng: &mut Rng, popularity: &[f64]) -> Vec<i32> {
    let mut ids = Vec::with_capacity(TOKENS * TOP_K);
    for _ in 0..TOKENS {
        let mut scored: Vec<(f64, i32)> = popularity
            .iter()
            .enumerate()
            .map(|(e, &p)| (p * rng.next_f64(), e as i32))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        ids.extend(scored[..TOP_K].iter().map(|&(_, e)| e));
    }
    ids
}

fn main() -> Result<(), eplb::Error> {
    eplb::check_version()?;
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join("placement.eplb");
    // readme-snippet:begin (README.md, Bindings; checked by the rust_readme_snippets test)
    let mut planner = Planner::new(&PlannerOptions {
        num_layers: LAYERS,
        num_logical_experts: EXPERTS,
        num_physical_experts: 80,
        num_gpus: 8,
        ..Default::default()
    })?;
    // readme-snippet:end

    // Startup: a restarted server serves the last saved placement right away.
    let mut placement = match Snapshot::load(&path) {
        Ok(snapshot) => {
            println!("startup: loaded {} ({})", path.display(), snapshot.label()?);
            snapshot.placement()?
        }
        Err(error) => {
            println!("startup: no snapshot yet ({error}); planning from uniform load");
            planner.plan(&vec![1.0; (LAYERS * EXPERTS) as usize])?
        }
    };

    let mut rng = Rng(0x9E3779B97F4A7C15);
    let popularity: Vec<f64> = (0..EXPERTS)
        .map(|e| (-(e as f64) / 16.0).exp() + 0.05)
        .collect();
    let mut tracker = Tracker::new(LAYERS, EXPERTS, TOP_K as u32, Window::Sliding(100))?;
    // readme-snippet:begin
    for batch in 1..=200 {
        for layer in 0..LAYERS {
            tracker.record(layer, &route(&mut rng, &popularity))?;
        }
        if batch % 50 == 0 {
            let loads = tracker.loads()?;
            let before = placement.metrics(&loads)?.balancedness;
            placement = planner.plan(&loads)?;
            placement.save(&path, Some(&loads), Some(&format!("batch {batch}")))?;
            let after = placement.metrics(&loads)?.balancedness;
            println!(
                "batch {batch}: re-planned, balancedness {before:.4} -> {after:.4}, saved {}",
                path.display()
            );
        }
    }
    // readme-snippet:end
    let restarted = Snapshot::load(&path)?.placement()?;
    assert_eq!(restarted.phy2log()?, placement.phy2log()?);
    println!("restart: loaded {} with the last plan", path.display());
    Ok(())
}
