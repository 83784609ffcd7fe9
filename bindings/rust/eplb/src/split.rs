//! Per-batch balancing on the CPU: the replica split and the shared-expert waterfill (header
//! section "per-batch balancing"). The GPU kernels are not wrapped.
use std::fmt;
use std::ptr;

use crate::{check, invalid, sys, Placement, Result};

/// Optional per-GPU terms of a split: GPU g's load is `weights[g] * (extra_load[g] + tokens)`.
/// Each given array has one entry per GPU of the placement.
#[derive(Debug, Clone, Copy, Default)]
pub struct GpuTerms<'a> {
    /// Finite > 0 (e.g. 2 for a GPU twice as slow); `None`: all 1.
    pub weights: Option<&'a [f64]>,
    /// Finite >= 0 tokens already on the GPU (e.g. shared-expert work); `None`: all 0.
    pub extra_load: Option<&'a [f64]>,
}

impl GpuTerms<'_> {
    /// (weights, extra, gpu_len) for C. The C call takes one length for both arrays: two arrays
    /// of different lengths are refused here rather than one read past its end.
    fn raw(&self) -> Result<(*const f64, *const f64, usize)> {
        let len = match (self.weights, self.extra_load) {
            (Some(w), Some(e)) if w.len() != e.len() => {
                return Err(invalid(format!(
                    "gpu_weights has {} entries but gpu_extra_load has {}",
                    w.len(),
                    e.len()
                )))
            }
            (Some(w), _) => w.len(),
            (None, Some(e)) => e.len(),
            (None, None) => 0,
        };
        let pointer = |a: Option<&[f64]>| a.map_or(ptr::null(), <[f64]>::as_ptr);
        Ok((pointer(self.weights), pointer(self.extra_load), len))
    }
}

/// A batch's split of one layer: `quotas[slot]` tokens per physical slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// `[num_physical_experts]`: over an expert's replicas they sum to its count.
    pub quotas: Vec<i32>,
    /// The busiest GPU's weighted load (the minimum possible).
    pub max_load: f64,
}

/// A batch's split of one layer by source node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSplit {
    /// `[num_physical_experts][num_nodes]`: the tokens from node n that slot r takes.
    pub quotas: Vec<i32>,
    /// The busiest GPU's weighted load.
    pub max_load: f64,
    /// Tokens served off their node (single-replica experts' included).
    pub cross_node_tokens: i64,
}

/// Scratch space of the exact replica split (`eplb_split_workspace`): after the first solve of
/// a shape, a solve allocates nothing. `Send` but not `Sync`: the C API allows one thread at a
/// time per workspace (every call takes `&mut self`); use one solver per thread.
pub struct SplitSolver {
    raw: *mut sys::eplb_split_workspace,
}

// SAFETY: the workspace has no thread affinity; every call into it takes &mut self.
unsafe impl Send for SplitSolver {}

impl fmt::Debug for SplitSolver {
    /// `SplitSolver { .. }`: a workspace has no shape of its own (it fits each solve's).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplitSolver").finish_non_exhaustive()
    }
}

impl SplitSolver {
    /// Creates a workspace.
    pub fn new() -> Result<SplitSolver> {
        let mut raw = ptr::null_mut();
        // SAFETY: valid output pointer.
        check(unsafe { sys::eplb_split_workspace_create(&mut raw) })?;
        Ok(SplitSolver { raw })
    }

    /// Splits this batch's tokens of each logical expert of `layer` (`counts`
    /// `[num_logical_experts]`, >= 0) over its replicas so that the busiest GPU's load is
    /// minimal (exact, in integers).
    pub fn solve(
        &mut self,
        placement: &Placement,
        layer: u32,
        counts: &[i32],
        gpu: &GpuTerms<'_>,
    ) -> Result<Split> {
        let (weights, extra, gpu_len) = gpu.raw()?;
        let mut quotas = vec![0i32; placement.info()?.num_physical_experts as usize];
        let mut max_load = 0.0;
        // SAFETY: every slice is valid for the length passed with it (gpu_len for both
        // per-GPU arrays, checked above); the placement is only read.
        check(unsafe {
            sys::eplb_split_solve(
                self.raw,
                placement.raw,
                layer,
                counts.as_ptr(),
                counts.len(),
                weights,
                extra,
                gpu_len,
                quotas.as_mut_ptr(),
                quotas.len(),
                &mut max_load,
            )
        })?;
        Ok(Split { quotas, max_load })
    }

    /// As [`SplitSolver::solve`] with tokens known by source node: `counts_by_node`
    /// `[num_logical_experts][num_nodes]`. Keeps the busiest GPU within `(1 + slack)` x the
    /// summed counts' optimum, then serves as few tokens as possible off their node.
    pub fn solve_by_node(
        &mut self,
        placement: &Placement,
        layer: u32,
        counts_by_node: &[i32],
        slack: f64,
        gpu: &GpuTerms<'_>,
    ) -> Result<NodeSplit> {
        let (weights, extra, gpu_len) = gpu.raw()?;
        let info = placement.info()?;
        let mut quotas = vec![0i32; info.num_physical_experts as usize * info.num_nodes as usize];
        let mut max_load = 0.0;
        let mut cross_node_tokens = 0i64;
        // SAFETY: as solve.
        check(unsafe {
            sys::eplb_split_solve_by_node(
                self.raw,
                placement.raw,
                layer,
                counts_by_node.as_ptr(),
                counts_by_node.len(),
                weights,
                extra,
                gpu_len,
                slack,
                quotas.as_mut_ptr(),
                quotas.len(),
                &mut max_load,
                &mut cross_node_tokens,
            )
        })?;
        Ok(NodeSplit {
            quotas,
            max_load,
            cross_node_tokens,
        })
    }
}

impl Drop for SplitSolver {
    fn drop(&mut self) {
        // SAFETY: owned handle, released once.
        unsafe { sys::eplb_split_workspace_destroy(self.raw) }
    }
}

/// One rank's share of a batch-wide split of `layer`: `quotas` `[num_physical_experts]` is the
/// split of the counts summed over ranks, `rank_counts` `[num_ranks][num_logical_experts]` each
/// rank's entries per expert. Returns `[num_physical_experts]`, the tokens each slot takes from
/// rank `rank`, so that every slot gets exactly its batch-wide quota over the ranks.
pub fn split_rank_quotas(
    placement: &Placement,
    layer: u32,
    quotas: &[i32],
    rank_counts: &[i32],
    num_ranks: u32,
    rank: u32,
) -> Result<Vec<i32>> {
    let mut out = vec![0i32; placement.info()?.num_physical_experts as usize];
    // SAFETY: every slice is valid for the length passed with it.
    check(unsafe {
        sys::eplb_split_rank_quotas(
            placement.raw,
            layer,
            quotas.as_ptr(),
            quotas.len(),
            rank_counts.as_ptr(),
            rank_counts.len(),
            num_ranks,
            rank,
            out.as_mut_ptr(),
            out.len(),
        )
    })?;
    Ok(out)
}

/// Optional inputs of [`shared_expert_waterfill`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WaterfillOptions<'a> {
    /// `[num_tokens]`: the GPU each token comes from, also a candidate; `None` if unknown.
    pub source_gpu: Option<&'a [i32]>,
    /// `[num_gpus]`, finite > 0; `None`: all 1.
    pub gpu_weights: Option<&'a [f64]>,
    /// Every GPU is a candidate (`EPLB_WATERFILL_ANY_GPU`; adds traffic).
    pub any_gpu: bool,
}

/// Gives each token's shared-expert work to one GPU, deterministically. `topk_slots`
/// `[num_tokens][top_k]` holds physical slots (-1 unused). `gpu_loads` `[num_gpus]`, in/out:
/// the tokens each GPU already has, plus the shared tokens assigned (`None`: counted from
/// `topk_slots`, one per valid entry, and not returned). Returns `[num_tokens][top_k + 1]`: each row followed by slot
/// `num_physical_experts + g` of the chosen GPU g, or -1 for a token without a valid slot.
pub fn shared_expert_waterfill(
    placement: &Placement,
    topk_slots: &[i32],
    top_k: u32,
    gpu_loads: Option<&mut [f64]>,
    options: &WaterfillOptions<'_>,
) -> Result<Vec<i32>> {
    let num_tokens = topk_slots.len().checked_div(top_k as usize).unwrap_or(0);
    if top_k == 0 || num_tokens * top_k as usize != topk_slots.len() {
        return Err(invalid(format!(
            "topk_slots length {} is not a whole number of rows of top_k {top_k}",
            topk_slots.len()
        )));
    }
    // C takes no lengths for these two: check them here so that nothing is read past an end.
    if let Some(source) = options.source_gpu {
        if source.len() != num_tokens {
            return Err(invalid(format!(
                "source_gpu has {} entries for {num_tokens} tokens",
                source.len()
            )));
        }
    }
    let loads_len = gpu_loads.as_ref().map(|l| l.len());
    let gpu_len = match (options.gpu_weights, loads_len) {
        (Some(w), Some(l)) if w.len() != l => {
            return Err(invalid(format!(
                "gpu_weights has {} entries but gpu_loads has {l}",
                w.len()
            )))
        }
        (Some(w), _) => w.len(),
        (None, Some(l)) => l,
        (None, None) => 0,
    };
    let out_len = num_tokens
        .checked_mul(top_k as usize + 1)
        .ok_or_else(|| invalid(format!("{num_tokens} tokens x (top_k + 1) overflows")))?;
    let mut out = vec![0i32; out_len];
    let flags = if options.any_gpu {
        sys::EPLB_WATERFILL_ANY_GPU
    } else {
        0
    };
    let source = options.source_gpu.map_or(ptr::null(), <[i32]>::as_ptr);
    let weights = options.gpu_weights.map_or(ptr::null(), <[f64]>::as_ptr);
    let loads = gpu_loads.map_or(ptr::null_mut(), <[f64]>::as_mut_ptr);
    // SAFETY: source_gpu holds num_tokens entries and both per-GPU arrays gpu_len (checked
    // above); out holds out_len; the placement is only read.
    check(unsafe {
        sys::eplb_shared_expert_waterfill(
            placement.raw,
            topk_slots.as_ptr(),
            num_tokens,
            top_k,
            source,
            weights,
            loads,
            gpu_len,
            flags,
            out.as_mut_ptr(),
            out.len(),
        )
    })?;
    Ok(out)
}
