//! The workload simulator: synthetic top-k routing for demos, tests and benchmarks (header
//! section "workload simulator").
use std::fmt;
use std::ptr;

use crate::{check, invalid, sys, zeroed_vec, Result};

/// Shape and statistics of a [`Workload`] (`eplb_workload_options`). `Default` is the library's
/// defaults (`eplb_workload_options_init`).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadOptions {
    /// >= 1.
    pub num_layers: u32,
    /// Logical experts per layer, >= top_k.
    pub num_experts: u32,
    /// Experts per token, >= 1.
    pub top_k: u32,
    /// Expert groups (DeepSeek-V3: 8).
    pub num_groups: u32,
    /// Groups a token may use (DeepSeek-V3: 4); 0 = all.
    pub topk_groups: u32,
    /// Latent topics; 0 = none.
    pub num_topics: u32,
    /// Experts boosted per topic and layer; 0 = 2 x top_k.
    pub topic_experts: u32,
    /// Range of the per-layer sigma of ln popularity.
    pub sigma_min: f64,
    pub sigma_max: f64,
    /// Topic z has weight 1 / (z + 1)^topic_zipf.
    pub topic_zipf: f64,
    /// Log-score boost of a topic's experts.
    pub boost: f64,
    /// Probability that a token keeps the previous token's topic.
    pub topic_persistence: f64,
    /// Per-batch correlation of ln popularity, [0, 1] (1: no drift).
    pub drift_rho: f64,
    /// Scale of the Gumbel noise, >= 0.
    pub noise_scale: f64,
    pub seed: u64,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        // SAFETY: init fills a zeroed plain-data struct.
        let mut raw: sys::eplb_workload_options = unsafe { std::mem::zeroed() };
        unsafe { sys::eplb_workload_options_init(&mut raw) };
        WorkloadOptions {
            num_layers: raw.num_layers,
            num_experts: raw.num_experts,
            top_k: raw.top_k,
            num_groups: raw.num_groups,
            topk_groups: raw.topk_groups,
            num_topics: raw.num_topics,
            topic_experts: raw.topic_experts,
            sigma_min: raw.sigma_min,
            sigma_max: raw.sigma_max,
            topic_zipf: raw.topic_zipf,
            boost: raw.boost,
            topic_persistence: raw.topic_persistence,
            drift_rho: raw.drift_rho,
            noise_scale: raw.noise_scale,
            seed: raw.seed,
        }
    }
}

/// A deterministic generator of top-k routing (`eplb_workload`). `Send` but not `Sync`: the C
/// API allows one thread at a time per simulator (every call takes `&mut self`).
pub struct Workload {
    raw: *mut sys::eplb_workload,
    /// The options it was created with (shape for batches, `Debug`).
    options: WorkloadOptions,
}

// SAFETY: the simulator has no thread affinity; every call into it takes &mut self.
unsafe impl Send for Workload {}

impl Workload {
    /// Validates the options and creates a simulator.
    pub fn new(options: &WorkloadOptions) -> Result<Workload> {
        // SAFETY: init fills a zeroed plain-data struct, struct_size included.
        let mut raw: sys::eplb_workload_options = unsafe { std::mem::zeroed() };
        unsafe { sys::eplb_workload_options_init(&mut raw) };
        raw.num_layers = options.num_layers;
        raw.num_experts = options.num_experts;
        raw.top_k = options.top_k;
        raw.num_groups = options.num_groups;
        raw.topk_groups = options.topk_groups;
        raw.num_topics = options.num_topics;
        raw.topic_experts = options.topic_experts;
        raw.sigma_min = options.sigma_min;
        raw.sigma_max = options.sigma_max;
        raw.topic_zipf = options.topic_zipf;
        raw.boost = options.boost;
        raw.topic_persistence = options.topic_persistence;
        raw.drift_rho = options.drift_rho;
        raw.noise_scale = options.noise_scale;
        raw.seed = options.seed;
        let mut handle = ptr::null_mut();
        // SAFETY: valid options and output pointer.
        check(unsafe { sys::eplb_workload_create(&raw, &mut handle) })?;
        Ok(Workload {
            raw: handle,
            options: options.clone(),
        })
    }

    /// The next batch of `num_tokens` tokens: `[num_layers][num_tokens][top_k]` logical ids,
    /// distinct within a row (each layer's rows are the input of [`crate::Tracker::record`]).
    /// Drifts the popularity afterwards.
    pub fn next_batch(&mut self, num_tokens: usize) -> Result<Vec<i32>> {
        let len = (self.options.num_layers as usize)
            .checked_mul(self.options.top_k as usize)
            .and_then(|n| n.checked_mul(num_tokens))
            .ok_or_else(|| invalid(format!("a batch of {num_tokens} tokens overflows")))?;
        let mut out = zeroed_vec(len, &format!("a batch of {num_tokens} tokens"))?;
        // SAFETY: the buffer holds out.len() elements.
        check(unsafe {
            sys::eplb_workload_next_batch(self.raw, num_tokens, out.as_mut_ptr(), out.len())
        })?;
        Ok(out)
    }
}

impl fmt::Debug for Workload {
    /// Shape and seed, e.g. `Workload { num_layers: 2, num_experts: 64, top_k: 8, .. }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        f.debug_struct("Workload")
            .field("num_layers", &o.num_layers)
            .field("num_experts", &o.num_experts)
            .field("top_k", &o.top_k)
            .field("num_groups", &o.num_groups)
            .field("num_topics", &o.num_topics)
            .field("seed", &o.seed)
            .finish_non_exhaustive()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        // SAFETY: owned handle, released once.
        unsafe { sys::eplb_workload_destroy(self.raw) }
    }
}
