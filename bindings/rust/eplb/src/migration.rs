//! Migration plans: moving expert weights from one placement to the next (header section
//! "migration"). Executing a step over NCCL is not wrapped.
use std::fmt;
use std::ptr;

use crate::{check, invalid, sys, Error, Placement, Result, Status};

/// How the new plan may be relabeled before the weights move (`eplb_migration_relabel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Relabel {
    /// Permute nodes, GPUs within a node and slots within a GPU; the new plan's metrics hold.
    #[default]
    NodesAndGpus,
    /// Permute GPUs within their node and slots within a GPU; nodes keep their experts.
    GpusInNode,
    /// Only slots within a GPU (`EPLB_MIGRATION_RELABEL_NONE`): keep what stays on its GPU
    /// (vLLM's rule).
    SlotsOnly,
    /// `NodesAndGpus`, then (with loads) exchanges of replicas between GPUs of one node that
    /// keep more experts on their GPU without raising the layer's busiest GPU.
    RepackInNode,
}

impl Relabel {
    fn raw(self) -> u32 {
        match self {
            Relabel::NodesAndGpus => sys::EPLB_MIGRATION_RELABEL_NODES_AND_GPUS,
            Relabel::GpusInNode => sys::EPLB_MIGRATION_RELABEL_GPUS_IN_NODE,
            Relabel::SlotsOnly => sys::EPLB_MIGRATION_RELABEL_NONE,
            Relabel::RepackInNode => sys::EPLB_MIGRATION_RELABEL_REPACK_IN_NODE,
        }
    }
}

/// Budgets and the worth-it gate of a [`Migration`] (`eplb_migration_options`).
/// `Default` is the library's defaults (`eplb_migration_options_init`).
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationOptions {
    pub relabel: Relabel,
    /// Bytes of one expert's weights, > 0 (default 1: bytes count experts).
    pub bytes_per_expert: u64,
    /// 0: no limit. A cycle of swaps (each the only replica) moves at once and may exceed it.
    pub max_bytes_per_step: u64,
    /// 0: migrate completely; else stop each layer before the first change over it (the
    /// schedule then ends at a partial placement, `complete == false`).
    pub max_total_bytes: u64,
    /// 0: no limit; else at most this many layers a step.
    pub max_layers_per_step: u32,
    /// Worth-it gate: predicted balancedness gain at least this (default 0.005).
    pub min_gain: f64,
    /// ... and at least this gain per GiB moved (default 0).
    pub min_gain_per_gib: f64,
}

impl Default for MigrationOptions {
    fn default() -> Self {
        let raw = raw_default_options();
        MigrationOptions {
            relabel: Relabel::default(),
            bytes_per_expert: raw.bytes_per_expert,
            max_bytes_per_step: raw.max_bytes_per_step,
            max_total_bytes: raw.max_total_bytes,
            max_layers_per_step: raw.max_layers_per_step,
            min_gain: raw.min_gain,
            min_gain_per_gib: raw.min_gain_per_gib,
        }
    }
}

fn raw_default_options() -> sys::eplb_migration_options {
    // SAFETY: init fills a zeroed plain-data struct, struct_size included.
    let mut raw: sys::eplb_migration_options = unsafe { std::mem::zeroed() };
    unsafe { sys::eplb_migration_options_init(&mut raw) };
    raw
}

impl MigrationOptions {
    fn raw(&self) -> sys::eplb_migration_options {
        let mut raw = raw_default_options();
        raw.relabel = self.relabel.raw();
        raw.bytes_per_expert = self.bytes_per_expert;
        raw.max_bytes_per_step = self.max_bytes_per_step;
        raw.max_total_bytes = self.max_total_bytes;
        raw.max_layers_per_step = self.max_layers_per_step;
        raw.min_gain = self.min_gain;
        raw.min_gain_per_gib = self.min_gain_per_gib;
        raw
    }
}

/// What a plan moves and predicts (`eplb_migration_summary`). Experts count transfers; bytes
/// are experts x `bytes_per_expert`. Balancedness fields are 0 unless `has_loads`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MigrationSummary {
    /// Steps of the schedule (0 if nothing moves).
    pub num_steps: u32,
    /// The schedule reaches the relabeled new plan (no total budget cut it).
    pub complete: bool,
    /// The gate says apply: gain >= `min_gain` and gain per GiB >= `min_gain_per_gib` (with
    /// loads), or something moves (without).
    pub worth_it: bool,
    /// Loads were given, so the balancedness fields are set.
    pub has_loads: bool,
    /// Most experts one GPU stages in one step (staging buffer = this x bytes_per_expert).
    pub max_staging_experts: u32,
    pub moved_experts: u64,
    pub same_gpu_experts: u64,
    pub intra_node_experts: u64,
    pub cross_node_experts: u64,
    pub moved_bytes: u64,
    pub same_gpu_bytes: u64,
    pub intra_node_bytes: u64,
    pub cross_node_bytes: u64,
    /// The largest step, all GPUs together.
    pub max_step_bytes: u64,
    /// Transfers to reach the relabeled new plan.
    pub full_migration_experts: u64,
    /// Transfers without relabeling (vLLM's rule).
    pub same_gpu_rule_experts: u64,
    /// A full reload: num_layers x num_physical_experts.
    pub naive_experts: u64,
    pub old_balancedness: f64,
    /// Of where the schedule ends ([`Migration::target`]).
    pub target_balancedness: f64,
    pub new_balancedness: f64,
    /// `target_balancedness - old_balancedness`.
    pub gain: f64,
}

/// Where a transfer's source is relative to its destination (`eplb_transfer_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferKind {
    SameGpu,
    IntraNode,
    CrossNode,
}

/// Copy `expert`'s weights of `layer` from slot `src_slot` (as it is before the step) into slot
/// `dst_slot`; slots are global (GPU = slot / slots_per_gpu).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transfer {
    pub step: u32,
    pub layer: u32,
    pub expert: u32,
    pub src_slot: u32,
    pub dst_slot: u32,
    pub src_gpu: u32,
    pub dst_gpu: u32,
    pub kind: TransferKind,
}

impl Transfer {
    fn from_raw(raw: &sys::eplb_migration_transfer) -> Result<Transfer> {
        let kind = match raw.kind {
            sys::EPLB_TRANSFER_SAME_GPU => TransferKind::SameGpu,
            sys::EPLB_TRANSFER_INTRA_NODE => TransferKind::IntraNode,
            sys::EPLB_TRANSFER_CROSS_NODE => TransferKind::CrossNode,
            other => {
                return Err(Error {
                    status: Status::Internal,
                    message: format!(
                        "transfer kind {other} is newer than these bindings; update the eplb crate"
                    ),
                })
            }
        };
        Ok(Transfer {
            step: raw.step,
            layer: raw.layer,
            expert: raw.expert,
            src_slot: raw.src_slot,
            dst_slot: raw.dst_slot,
            src_gpu: raw.src_gpu,
            dst_gpu: raw.dst_gpu,
            kind,
        })
    }
}

/// An immutable schedule of weight transfers from an old placement to a relabeled new one
/// (`eplb_migration`); share it across threads.
pub struct Migration {
    raw: *mut sys::eplb_migration,
    num_layers: u32,
    num_gpus: u32,
}

// SAFETY: a plan is immutable and every call on it except destroy (Drop) is thread-safe.
unsafe impl Send for Migration {}
unsafe impl Sync for Migration {}

impl Migration {
    /// The C handle, for the [`sys`](crate::sys) functions this crate does not wrap
    /// (`eplb_migration_execute_step` over NCCL). It stays owned by `self`: valid while `self`
    /// lives, never to be destroyed, and only for functions taking a `const eplb_migration*`.
    pub fn as_raw(&self) -> *const sys::eplb_migration {
        self.raw
    }

    /// Plans the migration from `old` (what the GPUs hold now) to `new`. `loads`
    /// `[layers][logical experts]`, when given, orders the most useful changes first and lets
    /// the summary predict balancedness. The plan copies what it needs from its arguments.
    pub fn plan(
        old: &Placement,
        new: &Placement,
        loads: Option<&[f64]>,
        options: &MigrationOptions,
    ) -> Result<Migration> {
        let info = old.info()?;
        let raw_options = options.raw();
        let (data, len) = loads.map_or((ptr::null(), 0), |l| (l.as_ptr(), l.len()));
        let mut raw = ptr::null_mut();
        // SAFETY: valid handles, options and output pointer; the loads (or NULL, 0) are valid
        // for their length and not retained.
        check(unsafe {
            sys::eplb_migration_plan(old.raw, new.raw, data, len, &raw_options, &mut raw)
        })?;
        Ok(Migration {
            raw,
            num_layers: info.num_layers,
            num_gpus: info.num_gpus,
        })
    }

    /// What the plan moves and predicts, and whether it is worth applying.
    pub fn summary(&self) -> Result<MigrationSummary> {
        // SAFETY: zeroed plain-data struct with struct_size set.
        let mut s: sys::eplb_migration_summary = unsafe { std::mem::zeroed() };
        s.struct_size = std::mem::size_of::<sys::eplb_migration_summary>() as u32;
        check(unsafe { sys::eplb_migration_get_summary(self.raw, &mut s) })?;
        Ok(MigrationSummary {
            num_steps: s.num_steps,
            complete: s.complete != 0,
            worth_it: s.worth_it != 0,
            has_loads: s.has_loads != 0,
            max_staging_experts: s.max_staging_experts,
            moved_experts: s.moved_experts,
            same_gpu_experts: s.same_gpu_experts,
            intra_node_experts: s.intra_node_experts,
            cross_node_experts: s.cross_node_experts,
            moved_bytes: s.moved_bytes,
            same_gpu_bytes: s.same_gpu_bytes,
            intra_node_bytes: s.intra_node_bytes,
            cross_node_bytes: s.cross_node_bytes,
            max_step_bytes: s.max_step_bytes,
            full_migration_experts: s.full_migration_experts,
            same_gpu_rule_experts: s.same_gpu_rule_experts,
            naive_experts: s.naive_experts,
            old_balancedness: s.old_balancedness,
            target_balancedness: s.target_balancedness,
            new_balancedness: s.new_balancedness,
            gain: s.gain,
        })
    }

    /// The transfers of step `step`, or of every step with `None`, ordered by step, layer and
    /// destination slot.
    pub fn transfers(&self, step: Option<u32>) -> Result<Vec<Transfer>> {
        let step = match step {
            None => sys::EPLB_MIGRATION_ALL_STEPS,
            // The C value for "all steps" is not a step number.
            Some(sys::EPLB_MIGRATION_ALL_STEPS) => {
                return Err(invalid(format!(
                    "step {} is out of range (use None for every step)",
                    sys::EPLB_MIGRATION_ALL_STEPS
                )))
            }
            Some(step) => step,
        };
        let mut count = 0usize;
        // SAFETY: size query (NULL, 0); then a buffer of `count` elements. The plan is
        // immutable, so the count cannot change between the two calls.
        check(unsafe {
            sys::eplb_migration_get_transfers(self.raw, step, ptr::null_mut(), 0, &mut count)
        })?;
        if count == 0 {
            return Ok(Vec::new());
        }
        // SAFETY: plain-data structs, fully overwritten by the call.
        let mut raw = vec![unsafe { std::mem::zeroed::<sys::eplb_migration_transfer>() }; count];
        check(unsafe {
            sys::eplb_migration_get_transfers(
                self.raw,
                step,
                raw.as_mut_ptr(),
                raw.len(),
                &mut count,
            )
        })?;
        raw[..count.min(raw.len())]
            .iter()
            .map(Transfer::from_raw)
            .collect()
    }

    /// `[layers][gpus]`: the GPU each GPU of the new plan moved to by the relabeling.
    pub fn gpu_map(&self) -> Result<Vec<u32>> {
        let mut out = vec![0u32; self.num_layers as usize * self.num_gpus as usize];
        // SAFETY: the buffer holds out.len() elements.
        check(unsafe { sys::eplb_migration_get_gpu_map(self.raw, out.as_mut_ptr(), out.len()) })?;
        Ok(out)
    }

    /// The placement to serve once the schedule is done: the relabeled new plan, or the
    /// partial placement when `max_total_bytes` cut the schedule.
    pub fn target(&self) -> Result<Placement> {
        let mut raw = ptr::null_mut();
        // SAFETY: valid handle and output pointer; the new placement is owned here.
        check(unsafe { sys::eplb_migration_get_target(self.raw, &mut raw) })?;
        Ok(Placement { raw })
    }

    /// The placement in force after step `step` (0-based) is committed; every expert has a
    /// replica in it.
    pub fn step_placement(&self, step: u32) -> Result<Placement> {
        let mut raw = ptr::null_mut();
        // SAFETY: valid handle and output pointer; the new placement is owned here.
        check(unsafe { sys::eplb_migration_get_step_placement(self.raw, step, &mut raw) })?;
        Ok(Placement { raw })
    }
}

impl fmt::Debug for Migration {
    /// Shape and what the plan moves, e.g. `Migration { num_layers: 2, num_gpus: 8, num_steps: 1, .. }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Migration");
        out.field("num_layers", &self.num_layers)
            .field("num_gpus", &self.num_gpus);
        if let Ok(summary) = self.summary() {
            out.field("num_steps", &summary.num_steps)
                .field("moved_experts", &summary.moved_experts)
                .field("complete", &summary.complete)
                .field("worth_it", &summary.worth_it);
        }
        out.finish_non_exhaustive()
    }
}

impl Drop for Migration {
    fn drop(&mut self) {
        // SAFETY: owned handle, released once.
        unsafe { sys::eplb_migration_destroy(self.raw) }
    }
}
