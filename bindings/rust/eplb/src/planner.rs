//! Planners: load matrices to placements (header sections "algorithms" and "planner").
use std::ffi::CStr;
use std::fmt;
use std::ptr;
use std::str::FromStr;

use crate::{c_string, check, sys, Error, Placement, PlanControl, Result, Tracker};

/// Placement algorithms (`eplb_algorithm`). New algorithms may be added: a `match` needs a
/// wildcard arm. `Display` prints the C name ("balanced-relaxed"); `FromStr` (and
/// [`Algorithm::from_name`]) reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// The library's recommended planner for this version (today [`Algorithm::Balanced`]).
    #[default]
    Default,
    /// DeepSeek's hierarchical EPLB (`rebalance_experts`), reproduced exactly.
    Deepseek,
    /// No balancing: physical slot p holds logical expert p % E.
    Trivial,
    /// libeplb's planner, replicas anywhere (global policy).
    Balanced,
    /// `Balanced` under DeepSeek's locality: whole expert groups per node.
    BalancedHierarchical,
    /// `BalancedHierarchical` plus up to [`PlannerOptions::cross_node_budget`] replicas per
    /// layer off their group's node.
    BalancedRelaxed,
    /// An algorithm id of a newer libeplb that these bindings have no variant for; passed to C
    /// as is (so planning with it uses exactly that algorithm).
    Other(u32),
}

impl Algorithm {
    pub(crate) fn raw(self) -> u32 {
        match self {
            Algorithm::Default => sys::EPLB_ALGORITHM_DEFAULT,
            Algorithm::Deepseek => sys::EPLB_ALGORITHM_DEEPSEEK,
            Algorithm::Trivial => sys::EPLB_ALGORITHM_TRIVIAL,
            Algorithm::Balanced => sys::EPLB_ALGORITHM_BALANCED,
            Algorithm::BalancedHierarchical => sys::EPLB_ALGORITHM_BALANCED_HIERARCHICAL,
            Algorithm::BalancedRelaxed => sys::EPLB_ALGORITHM_BALANCED_RELAXED,
            Algorithm::Other(id) => id,
        }
    }

    /// The variant of a C algorithm id (`Other` for an id this crate does not know).
    pub(crate) fn from_raw(raw: u32) -> Algorithm {
        match raw {
            sys::EPLB_ALGORITHM_DEFAULT => Algorithm::Default,
            sys::EPLB_ALGORITHM_DEEPSEEK => Algorithm::Deepseek,
            sys::EPLB_ALGORITHM_TRIVIAL => Algorithm::Trivial,
            sys::EPLB_ALGORITHM_BALANCED => Algorithm::Balanced,
            sys::EPLB_ALGORITHM_BALANCED_HIERARCHICAL => Algorithm::BalancedHierarchical,
            sys::EPLB_ALGORITHM_BALANCED_RELAXED => Algorithm::BalancedRelaxed,
            other => Algorithm::Other(other),
        }
    }

    /// A placement's provenance: `None` for id 0 (imported from a map), else the algorithm.
    pub(crate) fn provenance(raw: u32) -> Option<Algorithm> {
        (raw != sys::EPLB_ALGORITHM_DEFAULT).then(|| Algorithm::from_raw(raw))
    }

    /// Looks an algorithm up by its C name ("deepseek", "balanced-relaxed", "default", ...;
    /// case-sensitive). An unknown name is `Status::InvalidArgument`, its message listing the
    /// known names.
    pub fn from_name(name: &str) -> Result<Algorithm> {
        let c_name = c_string(name, "algorithm name")?;
        let mut raw = 0u32;
        // SAFETY: valid NUL-terminated string and output pointer.
        check(unsafe { sys::eplb_algorithm_from_name(c_name.as_ptr(), &mut raw) })?;
        Ok(Algorithm::from_raw(raw))
    }

    /// The C name ("deepseek", "default", ...), or `None` for an id the loaded library does not
    /// know.
    pub fn name(self) -> Option<&'static str> {
        // SAFETY: static NUL-terminated text or NULL.
        let name = unsafe { sys::eplb_algorithm_name(self.raw()) };
        if name.is_null() {
            return None;
        }
        // SAFETY: non-NULL static NUL-terminated text (ASCII).
        unsafe { CStr::from_ptr(name) }.to_str().ok()
    }

    /// Every algorithm the loaded library offers, in id order (`eplb_algorithm_count`);
    /// `Default` is not among them: it stands for one ([`Algorithm::resolved`]).
    pub fn all() -> Vec<Algorithm> {
        // SAFETY: no arguments.
        let count = unsafe { sys::eplb_algorithm_count() };
        (1..=count).map(Algorithm::from_raw).collect()
    }

    /// The one-line description, or `None` for an id the loaded library does not know.
    pub fn description(self) -> Option<&'static str> {
        // SAFETY: static NUL-terminated text or NULL.
        let text = unsafe { sys::eplb_algorithm_description(self.raw()) };
        if text.is_null() {
            return None;
        }
        // SAFETY: non-NULL static NUL-terminated text.
        unsafe { CStr::from_ptr(text) }.to_str().ok()
    }

    /// The algorithm `Default` stands for in the loaded library (`eplb_algorithm_default`,
    /// today [`Algorithm::Balanced`]); any other variant is itself.
    pub fn resolved(self) -> Algorithm {
        match self {
            // SAFETY: no arguments.
            Algorithm::Default => Algorithm::from_raw(unsafe { sys::eplb_algorithm_default() }),
            other => other,
        }
    }
}

impl fmt::Display for Algorithm {
    /// The C name ("balanced-relaxed"), or `algorithm <id>` for an id the library does not know.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "algorithm {}", self.raw()),
        }
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    /// As [`Algorithm::from_name`].
    fn from_str(name: &str) -> Result<Algorithm> {
        Algorithm::from_name(name)
    }
}

/// Model shape, topology and algorithm of a [`Planner`] (`eplb_planner_options`). Zero fields
/// take the C defaults where the header has one (`num_groups`, `num_nodes`: 1;
/// `affinity_min_balance`: 0.99).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlannerOptions {
    pub algorithm: Algorithm,
    /// MoE layers per plan, >= 1.
    pub num_layers: u32,
    /// E >= 1, a multiple of `num_groups`.
    pub num_logical_experts: u32,
    /// R >= E: slots per layer over all GPUs, a multiple of `num_gpus`.
    pub num_physical_experts: u32,
    /// Expert groups (DeepSeek-V3: 8); 0 = 1.
    pub num_groups: u32,
    /// Nodes; `num_gpus` must be a multiple; 0 = 1.
    pub num_nodes: u32,
    /// GPUs in the expert-parallel group, >= 1.
    pub num_gpus: u32,
    /// `balanced-relaxed`: replicas per layer allowed off their group's node, <= R; every other
    /// algorithm refuses a non-zero budget.
    pub cross_node_budget: u32,
    /// Threads to split layers across, 0..=256 (0 or 1: the caller's thread only); the plan
    /// does not depend on it.
    pub num_threads: u32,
    /// [`Planner::plan_tracked`] also keeps experts that tokens pick together on one node;
    /// [`Planner::plan`] then refuses (it has no co-activation statistics).
    pub affinity: bool,
    /// With `affinity`: balancedness stays >= this x the balance-only plan's, in (0, 1]; 0 = the
    /// default (0.99).
    pub affinity_min_balance: f64,
}

/// Options of [`Planner::plan_near`] (`eplb_plan_near_options`). `Default` is the library's
/// defaults (`eplb_plan_near_options_init`).
#[derive(Debug, Clone, PartialEq)]
pub struct NearOptions {
    /// Per layer, the plan's balancedness stays >= this x that of the planner's own plan of the
    /// loads; in (0, 1] (default 0.998). 1 asks for a busiest GPU no higher than the planner's
    /// own plan's.
    pub min_balance: f64,
}

impl Default for NearOptions {
    fn default() -> Self {
        NearOptions {
            min_balance: raw_default_near_options().min_balance,
        }
    }
}

fn raw_default_near_options() -> sys::eplb_plan_near_options {
    // SAFETY: init fills a zeroed plain-data struct, struct_size included.
    let mut raw: sys::eplb_plan_near_options = unsafe { std::mem::zeroed() };
    unsafe { sys::eplb_plan_near_options_init(&mut raw) };
    raw
}

/// What [`Planner::plan_near`] did with each layer (`eplb_plan_near_report`); every layer is
/// counted once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct NearReport {
    /// Balanced enough already: the current layout, nothing moves.
    pub layers_kept: u32,
    /// The current layout with some replicas moved.
    pub layers_rebalanced: u32,
    /// The planner's own plan of the loads: rebalancing fell short of the target, or the
    /// current layout breaks the algorithm's locality.
    pub layers_replanned: u32,
    /// Hierarchical and relaxed plans only: some nodes rebalanced, the planner's own plan on the
    /// others, whose expert groups change nodes.
    pub layers_partly_replanned: u32,
}

/// Turns load matrices into placements (`eplb_planner`).
pub struct Planner {
    raw: *mut sys::eplb_planner,
    /// The options it was created with, C defaults filled in (for `Debug`).
    options: PlannerOptions,
}

// SAFETY: the planner has no thread affinity, and every call into it takes &mut self.
unsafe impl Send for Planner {}
unsafe impl Sync for Planner {}

impl Planner {
    /// Validates the options and creates a planner.
    pub fn new(options: &PlannerOptions) -> Result<Planner> {
        // SAFETY: the init function fills a zeroed struct of the right size.
        let mut raw_options: sys::eplb_planner_options = unsafe { std::mem::zeroed() };
        unsafe { sys::eplb_planner_options_init(&mut raw_options) };
        raw_options.algorithm = options.algorithm.raw();
        raw_options.num_layers = options.num_layers;
        raw_options.num_logical_experts = options.num_logical_experts;
        raw_options.num_physical_experts = options.num_physical_experts;
        raw_options.num_gpus = options.num_gpus;
        raw_options.cross_node_budget = options.cross_node_budget;
        raw_options.num_threads = options.num_threads;
        raw_options.affinity = u32::from(options.affinity);
        if options.affinity_min_balance != 0.0 {
            raw_options.affinity_min_balance = options.affinity_min_balance;
        }
        if options.num_groups != 0 {
            raw_options.num_groups = options.num_groups;
        }
        if options.num_nodes != 0 {
            raw_options.num_nodes = options.num_nodes;
        }
        let mut raw = ptr::null_mut();
        // SAFETY: valid options and output pointer.
        check(unsafe { sys::eplb_planner_create(&raw_options, &mut raw) })?;
        Ok(Planner {
            raw,
            options: PlannerOptions {
                num_groups: raw_options.num_groups,
                num_nodes: raw_options.num_nodes,
                affinity_min_balance: raw_options.affinity_min_balance,
                ..options.clone()
            },
        })
    }

    /// Attaches `control` (`None` detaches): from now on the planner's plans ([`Planner::plan`],
    /// [`Planner::plan_windows`], [`Planner::plan_tracked`], [`Planner::plan_near`]) count their steps in it and stop
    /// with [`Status::Cancelled`](crate::Status::Cancelled) when it is cancelled, from any
    /// thread (see [`PlanControl`]). The planner holds its own reference to the control, so the
    /// `PlanControl` may be dropped while attached; attaching another replaces it. One control
    /// may serve several planners. A control that is not cancelled does not change the plans.
    pub fn set_control(&mut self, control: Option<&PlanControl>) -> Result<()> {
        let raw = control.map_or(ptr::null_mut(), PlanControl::raw);
        // SAFETY: a live planner (exclusively borrowed: not during a plan) and a live control or
        // NULL; the library takes its own reference to the control.
        check(unsafe { sys::eplb_planner_set_control(self.raw, raw) })
    }

    /// Plans a placement from `loads`, `[layers][logical experts]` row-major. With a control
    /// attached ([`Planner::set_control`]) that is cancelled: `Status::Cancelled` (also for
    /// [`Planner::plan_windows`], [`Planner::plan_tracked`] and [`Planner::plan_near`]).
    pub fn plan(&mut self, loads: &[f64]) -> Result<Placement> {
        let mut out = ptr::null_mut();
        // SAFETY: the slice is valid for its length; the library does not keep it.
        check(unsafe { sys::eplb_planner_plan(self.raw, loads.as_ptr(), loads.len(), &mut out) })?;
        Ok(Placement { raw: out })
    }

    /// Plans from a tracker's statistics: `loads`, or the tracker's current loads when `None`;
    /// with [`PlannerOptions::affinity`], also its sampled top-k rows.
    pub fn plan_tracked(&mut self, tracker: &Tracker, loads: Option<&[f64]>) -> Result<Placement> {
        let (data, len) = loads.map_or((ptr::null(), 0), |l| (l.as_ptr(), l.len()));
        let mut out = ptr::null_mut();
        // SAFETY: valid handles; the slice (or NULL, 0) is valid; the tracker is only read.
        check(unsafe {
            sys::eplb_planner_plan_tracked(self.raw, data, len, tracker.raw, &mut out)
        })?;
        Ok(Placement { raw: out })
    }

    /// Plans one placement robust over `num_windows` load matrices laid out back to back.
    pub fn plan_windows(&mut self, loads: &[f64], num_windows: usize) -> Result<Placement> {
        let mut out = ptr::null_mut();
        // SAFETY: as plan.
        check(unsafe {
            sys::eplb_planner_plan_windows(
                self.raw,
                loads.as_ptr(),
                num_windows,
                loads.len(),
                &mut out,
            )
        })?;
        Ok(Placement { raw: out })
    }

    /// Re-plans for `loads` (`[layers][logical experts]`, as [`Planner::plan`]) near `current`,
    /// the placement the GPUs hold now, so that a [`Migration`](crate::Migration) from `current`
    /// moves few experts; returns the new placement and what happened to each layer.
    ///
    /// Per layer, the planner's own plan of `loads` sets the target: the layer is kept as it is
    /// when its balancedness is at least [`NearOptions::min_balance`] x that plan's, else
    /// rebalanced by moving a few replicas, else replaced by that plan's layer; the algorithm's
    /// locality holds (see `eplb_planner_plan_near`). `current` is only read. An attached
    /// control counts two steps per layer (the planner's own plan, then this one).
    ///
    /// Errors: [`Status::InvalidArgument`](crate::Status::InvalidArgument) for a `current` of
    /// another shape than the planner's (the message names the field, e.g. `num_nodes (1)`),
    /// `min_balance` outside (0, 1] or NaN, a planner with [`PlannerOptions::affinity`], and bad
    /// loads as for [`Planner::plan`]; [`Status::Cancelled`](crate::Status::Cancelled) as
    /// [`Planner::plan`].
    pub fn plan_near(
        &mut self,
        loads: &[f64],
        current: &Placement,
        options: &NearOptions,
    ) -> Result<(Placement, NearReport)> {
        let mut raw_options = raw_default_near_options();
        raw_options.min_balance = options.min_balance;
        // SAFETY: a zeroed plain-data struct with struct_size set, for the library to fill.
        let mut report: sys::eplb_plan_near_report = unsafe { std::mem::zeroed() };
        report.struct_size = std::mem::size_of::<sys::eplb_plan_near_report>() as u32;
        let mut out = ptr::null_mut();
        // SAFETY: valid handles, options and output pointers; the slice is valid for its
        // length and not retained; `current` is only read.
        check(unsafe {
            sys::eplb_planner_plan_near(
                self.raw,
                loads.as_ptr(),
                loads.len(),
                current.raw,
                &raw_options,
                &mut out,
                &mut report,
            )
        })?;
        Ok((
            Placement { raw: out },
            NearReport {
                layers_kept: report.layers_kept,
                layers_rebalanced: report.layers_rebalanced,
                layers_replanned: report.layers_replanned,
                layers_partly_replanned: report.layers_partly_replanned,
            },
        ))
    }
}

impl fmt::Debug for Planner {
    /// The algorithm, shape and topology, e.g. `Planner { algorithm: Deepseek, num_layers: 2, .. }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        f.debug_struct("Planner")
            .field("algorithm", &o.algorithm)
            .field("num_layers", &o.num_layers)
            .field("num_logical_experts", &o.num_logical_experts)
            .field("num_physical_experts", &o.num_physical_experts)
            .field("num_groups", &o.num_groups)
            .field("num_nodes", &o.num_nodes)
            .field("num_gpus", &o.num_gpus)
            .field("cross_node_budget", &o.cross_node_budget)
            .field("affinity", &o.affinity)
            .finish_non_exhaustive()
    }
}

impl Drop for Planner {
    fn drop(&mut self) {
        // SAFETY: owned handle, released once.
        unsafe { sys::eplb_planner_destroy(self.raw) }
    }
}
