//! Safe Rust bindings to libeplb: expert-parallel load balancing for Mixture-of-Experts serving.
//!
//! ```no_run
//! let mut planner = eplb::Planner::new(&eplb::PlannerOptions {
//!     algorithm: eplb::Algorithm::Deepseek,
//!     num_layers: 2, num_logical_experts: 12, num_physical_experts: 16,
//!     num_groups: 4, num_nodes: 2, num_gpus: 8, ..Default::default()
//! })?;
//! let placement = planner.plan(&[1.0; 24])?;
//! let phy2log: Vec<i32> = placement.phy2log()?; // [layers][physical experts], row-major
//! # Ok::<(), eplb::Error>(())
//! ```
//!
//! Every fallible call returns [`Result`]; an [`Error`] carries the C status and the library's
//! message naming the offending value (read on the same thread right after the failing call).
//! Handles are released on `Drop`. Threading follows the C API: [`Placement`] and [`Snapshot`]
//! are immutable and `Send + Sync`; [`Planner`] and [`Tracker`] are `Send + Sync` because every
//! call that mutates them takes `&mut self` (the C API needs callers to serialise those calls,
//! which the borrow checker does), and their `&self` getters may run concurrently in C.
use std::ffi::{CStr, CString};
use std::fmt;
use std::path::Path;
use std::ptr;

pub use eplb_sys as sys;

/// A failed libeplb call: the C status and the library's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The C `eplb_status` (see [`Status`]).
    pub status: Status,
    /// `eplb_last_error_message()` of the failing call, naming the offending value.
    pub message: String,
}

/// The C API's status codes (`eplb_status`), except `EPLB_OK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    InvalidArgument,
    OutOfMemory,
    BufferTooSmall,
    Internal,
    Io,
    Corrupt,
    Truncated,
    UnsupportedVersion,
    /// Built without CUDA, or no NVIDIA driver or GPU on this machine.
    NoDevice,
    /// A CUDA call failed.
    Device,
    /// NCCL could not be loaded, or the build has no NCCL support.
    NoNccl,
    /// An NCCL call failed.
    Nccl,
    /// A status this crate does not know (from a newer library).
    Other(u32),
}

impl Status {
    fn from_raw(raw: sys::eplb_status) -> Status {
        match raw {
            sys::EPLB_ERR_INVALID_ARGUMENT => Status::InvalidArgument,
            sys::EPLB_ERR_OUT_OF_MEMORY => Status::OutOfMemory,
            sys::EPLB_ERR_BUFFER_TOO_SMALL => Status::BufferTooSmall,
            sys::EPLB_ERR_INTERNAL => Status::Internal,
            sys::EPLB_ERR_IO => Status::Io,
            sys::EPLB_ERR_CORRUPT => Status::Corrupt,
            sys::EPLB_ERR_TRUNCATED => Status::Truncated,
            sys::EPLB_ERR_UNSUPPORTED_VERSION => Status::UnsupportedVersion,
            sys::EPLB_ERR_NO_DEVICE => Status::NoDevice,
            sys::EPLB_ERR_DEVICE => Status::Device,
            sys::EPLB_ERR_NO_NCCL => Status::NoNccl,
            sys::EPLB_ERR_NCCL => Status::Nccl,
            other => Status::Other(other),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.status, self.message)
    }
}

impl std::error::Error for Error {}

/// `Result<T, eplb::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

/// Turns a status into a Result, reading the thread-local message before any other call.
fn check(status: sys::eplb_status) -> Result<()> {
    if status == sys::EPLB_OK {
        return Ok(());
    }
    // SAFETY: eplb_last_error_message never returns NULL; the text is copied at once.
    let message = unsafe { CStr::from_ptr(sys::eplb_last_error_message()) }
        .to_string_lossy()
        .into_owned();
    Err(Error {
        status: Status::from_raw(status),
        message,
    })
}

fn invalid(message: String) -> Error {
    Error {
        status: Status::InvalidArgument,
        message,
    }
}

fn c_string(value: &str, what: &str) -> Result<CString> {
    CString::new(value).map_err(|_| invalid(format!("{what} contains a NUL byte: {value:?}")))
}

/// Default snapshot options (`eplb_snapshot_options_init`) with `label`, which must outlive
/// their use.
fn snapshot_options(label: Option<&CString>) -> sys::eplb_snapshot_options {
    // SAFETY: init fills a zeroed struct of the right size.
    let mut options: sys::eplb_snapshot_options = unsafe { std::mem::zeroed() };
    unsafe { sys::eplb_snapshot_options_init(&mut options) };
    if let Some(label) = label {
        options.label = label.as_ptr();
    }
    options
}

fn path_string(path: &Path) -> Result<CString> {
    let text = path
        .to_str()
        .ok_or_else(|| invalid(format!("path is not UTF-8: {path:?}")))?;
    c_string(text, "path")
}

/// The version of the libeplb actually loaded (`eplb_version_string`).
pub fn version() -> String {
    // SAFETY: static, NUL-terminated, never NULL.
    unsafe { CStr::from_ptr(sys::eplb_version_string()) }
        .to_string_lossy()
        .into_owned()
}

/// Fails when the loaded libeplb is older than, or ABI-incompatible with, the header these
/// bindings were generated from.
pub fn check_version() -> Result<()> {
    // SAFETY: no arguments.
    let runtime = unsafe { sys::eplb_version_number() };
    let header = sys::EPLB_VERSION_NUMBER;
    // One SONAME holds major.minor while the major is 0, the major after: within it the ABI only
    // grows, so the library must be at least as new as the header.
    let same_abi = if header / 10000 == 0 {
        runtime / 100 == header / 100
    } else {
        runtime / 10000 == header / 10000
    };
    if !same_abi || runtime < header {
        return Err(Error {
            status: Status::UnsupportedVersion,
            message: format!("libeplb {runtime} is loaded but the bindings need {header}"),
        });
    }
    Ok(())
}

/// Placement algorithms (`eplb_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    Default,
    Deepseek,
    Trivial,
    Balanced,
    BalancedHierarchical,
    BalancedRelaxed,
}

impl Algorithm {
    fn raw(self) -> u32 {
        match self {
            Algorithm::Default => sys::EPLB_ALGORITHM_DEFAULT,
            Algorithm::Deepseek => sys::EPLB_ALGORITHM_DEEPSEEK,
            Algorithm::Trivial => sys::EPLB_ALGORITHM_TRIVIAL,
            Algorithm::Balanced => sys::EPLB_ALGORITHM_BALANCED,
            Algorithm::BalancedHierarchical => sys::EPLB_ALGORITHM_BALANCED_HIERARCHICAL,
            Algorithm::BalancedRelaxed => sys::EPLB_ALGORITHM_BALANCED_RELAXED,
        }
    }

    /// Looks an algorithm up by its C name ("deepseek", "balanced-relaxed", ...).
    pub fn from_name(name: &str) -> Result<Algorithm> {
        let c_name = c_string(name, "algorithm name")?;
        let mut raw = 0u32;
        // SAFETY: valid NUL-terminated string and output pointer.
        check(unsafe { sys::eplb_algorithm_from_name(c_name.as_ptr(), &mut raw) })?;
        Ok(match raw {
            sys::EPLB_ALGORITHM_DEFAULT => Algorithm::Default,
            sys::EPLB_ALGORITHM_DEEPSEEK => Algorithm::Deepseek,
            sys::EPLB_ALGORITHM_TRIVIAL => Algorithm::Trivial,
            sys::EPLB_ALGORITHM_BALANCED => Algorithm::Balanced,
            sys::EPLB_ALGORITHM_BALANCED_HIERARCHICAL => Algorithm::BalancedHierarchical,
            sys::EPLB_ALGORITHM_BALANCED_RELAXED => Algorithm::BalancedRelaxed,
            // A newer library's algorithm this crate has no variant for: planning with another
            // one instead would be a silent substitution.
            other => {
                return Err(Error {
                    status: Status::InvalidArgument,
                    message: format!(
                        "algorithm '{name}' (id {other}) is newer than these bindings; \
                         update the eplb crate to use it"
                    ),
                })
            }
        })
    }
}

/// Model shape, topology and algorithm of a [`Planner`] (`eplb_planner_options`). Zero fields
/// take the C defaults where the header has one.
#[derive(Debug, Clone, Default)]
pub struct PlannerOptions {
    pub algorithm: Algorithm,
    pub num_layers: u32,
    pub num_logical_experts: u32,
    pub num_physical_experts: u32,
    pub num_groups: u32,
    pub num_nodes: u32,
    pub num_gpus: u32,
    pub cross_node_budget: u32,
    pub num_threads: u32,
    /// [`Planner::plan_tracked`] also keeps experts that tokens pick together on one node;
    /// [`Planner::plan`] then refuses (it has no co-activation statistics).
    pub affinity: bool,
    /// With `affinity`: balancedness stays >= this x the balance-only plan's; 0 = the default
    /// (0.99).
    pub affinity_min_balance: f64,
}

/// Turns load matrices into placements (`eplb_planner`).
pub struct Planner {
    raw: *mut sys::eplb_planner,
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
        Ok(Planner { raw })
    }

    /// Plans a placement from `loads`, `[layers][logical experts]` row-major.
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
}

impl Drop for Planner {
    fn drop(&mut self) {
        // SAFETY: owned handle, released once.
        unsafe { sys::eplb_planner_destroy(self.raw) }
    }
}

/// Shape and provenance of a placement (`eplb_placement_info`).
pub type PlacementInfo = sys::eplb_placement_info;
/// Metrics of a placement under a load matrix (`eplb_metrics`).
pub type Metrics = sys::eplb_metrics;

/// An immutable expert placement for all layers (`eplb_placement`); share it across threads.
pub struct Placement {
    raw: *mut sys::eplb_placement,
}

// SAFETY: a placement is immutable; all its functions take a const handle.
unsafe impl Send for Placement {}
unsafe impl Sync for Placement {}

impl Placement {
    /// Builds a placement from a phy2log map `[layers][physical experts]`.
    pub fn from_phy2log(
        num_layers: u32,
        num_logical_experts: u32,
        num_physical_experts: u32,
        num_nodes: u32,
        num_gpus: u32,
        phy2log: &[i32],
    ) -> Result<Placement> {
        let mut out = ptr::null_mut();
        // SAFETY: the slice is valid for its length.
        check(unsafe {
            sys::eplb_placement_create_from_phy2log(
                num_layers,
                num_logical_experts,
                num_physical_experts,
                num_nodes,
                num_gpus,
                phy2log.as_ptr(),
                phy2log.len(),
                &mut out,
            )
        })?;
        Ok(Placement { raw: out })
    }

    /// Shape, topology and provenance.
    pub fn info(&self) -> Result<PlacementInfo> {
        // SAFETY: zeroed plain-data struct with struct_size set.
        let mut info: PlacementInfo = unsafe { std::mem::zeroed() };
        info.struct_size = std::mem::size_of::<PlacementInfo>() as u32;
        check(unsafe { sys::eplb_placement_get_info(self.raw, &mut info) })?;
        Ok(info)
    }

    fn copy_i32(
        &self,
        len: usize,
        get: unsafe extern "C" fn(*const sys::eplb_placement, *mut i32, usize) -> sys::eplb_status,
    ) -> Result<Vec<i32>> {
        let mut out = vec![0i32; len];
        // SAFETY: the buffer holds `len` elements.
        check(unsafe { get(self.raw, out.as_mut_ptr(), out.len()) })?;
        Ok(out)
    }

    /// `[layers][physical experts]`: the logical expert of each slot.
    pub fn phy2log(&self) -> Result<Vec<i32>> {
        let info = self.info()?;
        self.copy_i32(
            info.num_layers as usize * info.num_physical_experts as usize,
            sys::eplb_placement_get_phy2log,
        )
    }

    /// `[layers][logical experts]`: the replicas of each expert.
    pub fn replica_counts(&self) -> Result<Vec<i32>> {
        let info = self.info()?;
        self.copy_i32(
            info.num_layers as usize * info.num_logical_experts as usize,
            sys::eplb_placement_get_replica_counts,
        )
    }

    /// `[layers][logical experts][log2phy_width]`: each replica's slot, padded with -1.
    pub fn log2phy(&self) -> Result<Vec<i32>> {
        let info = self.info()?;
        let len = info.num_layers as usize
            * info.num_logical_experts as usize
            * info.log2phy_width as usize;
        self.copy_i32(len, sys::eplb_placement_get_log2phy)
    }

    /// Balance metrics under `loads` `[layers][logical experts]`.
    pub fn metrics(&self, loads: &[f64]) -> Result<Metrics> {
        // SAFETY: zeroed plain-data struct with struct_size set; the slice is valid.
        let mut metrics: Metrics = unsafe { std::mem::zeroed() };
        metrics.struct_size = std::mem::size_of::<Metrics>() as u32;
        check(unsafe {
            sys::eplb_metrics_compute(self.raw, loads.as_ptr(), loads.len(), &mut metrics)
        })?;
        Ok(metrics)
    }

    /// `[layers][gpus]`: each GPU's load under `loads`.
    pub fn gpu_loads(&self, loads: &[f64]) -> Result<Vec<f64>> {
        let info = self.info()?;
        let mut out = vec![0.0; info.num_layers as usize * info.num_gpus as usize];
        // SAFETY: both slices are valid for their lengths.
        check(unsafe {
            sys::eplb_metrics_gpu_loads(
                self.raw,
                loads.as_ptr(),
                loads.len(),
                out.as_mut_ptr(),
                out.len(),
            )
        })?;
        Ok(out)
    }

    /// Writes this placement to an `.eplb` snapshot at `path` atomically, with optional load
    /// statistics and label.
    pub fn save(
        &self,
        path: impl AsRef<Path>,
        loads: Option<&[f64]>,
        label: Option<&str>,
    ) -> Result<()> {
        let c_path = path_string(path.as_ref())?;
        let c_label = label.map(|l| c_string(l, "label")).transpose()?;
        let mut options = snapshot_options(c_label.as_ref());
        if let Some(loads) = loads {
            options.loads = loads.as_ptr();
            options.loads_len = loads.len();
        }
        // SAFETY: the loads and label stay valid during the call.
        check(unsafe { sys::eplb_snapshot_save(self.raw, &options, c_path.as_ptr()) })
    }

    /// SGLang's placement document, `num_dense_layers` trivial rows first.
    pub fn to_sglang_json(&self, num_dense_layers: u32) -> Result<String> {
        let mut text: *mut std::os::raw::c_char = ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: outputs are valid; the buffer is copied, then freed by the library.
        check(unsafe {
            sys::eplb_placement_to_sglang_json(self.raw, num_dense_layers, &mut text, &mut len)
        })?;
        let bytes = unsafe { std::slice::from_raw_parts(text as *const u8, len) }.to_vec();
        unsafe { sys::eplb_buffer_free(text.cast()) };
        String::from_utf8(bytes).map_err(|e| Error {
            status: Status::Internal,
            message: e.to_string(),
        })
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        // SAFETY: owned handle, released once.
        unsafe { sys::eplb_placement_destroy(self.raw) }
    }
}

/// A loaded `.eplb` snapshot (`eplb_snapshot`): immutable, shareable across threads.
pub struct Snapshot {
    raw: *mut sys::eplb_snapshot,
}

// SAFETY: a loaded snapshot is immutable; its functions take a const handle.
unsafe impl Send for Snapshot {}
unsafe impl Sync for Snapshot {}

/// What a snapshot holds (`eplb_snapshot_info`).
pub type SnapshotInfo = sys::eplb_snapshot_info;

impl Snapshot {
    /// Reads and validates a snapshot file.
    pub fn load(path: impl AsRef<Path>) -> Result<Snapshot> {
        let c_path = path_string(path.as_ref())?;
        let mut raw = ptr::null_mut();
        // SAFETY: valid string and output pointer.
        check(unsafe { sys::eplb_snapshot_load(c_path.as_ptr(), &mut raw) })?;
        Ok(Snapshot { raw })
    }

    /// Reads a snapshot from bytes (not retained).
    pub fn from_bytes(data: &[u8]) -> Result<Snapshot> {
        let mut raw = ptr::null_mut();
        // SAFETY: the slice is valid for its length.
        check(unsafe {
            sys::eplb_snapshot_load_from_buffer(data.as_ptr().cast(), data.len(), &mut raw)
        })?;
        Ok(Snapshot { raw })
    }

    /// Shape, provenance, label and stored metrics.
    pub fn info(&self) -> Result<SnapshotInfo> {
        // SAFETY: zeroed plain-data struct with struct_size set.
        let mut info: SnapshotInfo = unsafe { std::mem::zeroed() };
        info.struct_size = std::mem::size_of::<SnapshotInfo>() as u32;
        check(unsafe { sys::eplb_snapshot_get_info(self.raw, &mut info) })?;
        Ok(info)
    }

    /// The label the snapshot was saved with ("" if none).
    pub fn label(&self) -> Result<String> {
        let info = self.info()?;
        // SAFETY: the library NUL-terminates the label.
        Ok(unsafe { CStr::from_ptr(info.label.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    /// A new placement equal to the stored one.
    pub fn placement(&self) -> Result<Placement> {
        let mut raw = ptr::null_mut();
        // SAFETY: valid output pointer.
        check(unsafe { sys::eplb_snapshot_get_placement(self.raw, &mut raw) })?;
        Ok(Placement { raw })
    }

    /// The stored load statistics `[layers][logical experts]`, if any.
    pub fn loads(&self) -> Result<Option<Vec<f64>>> {
        let info = self.info()?;
        if info.has_loads == 0 {
            return Ok(None);
        }
        let mut out = vec![0.0; info.num_layers as usize * info.num_logical_experts as usize];
        // SAFETY: the buffer holds out.len() elements.
        check(unsafe { sys::eplb_snapshot_get_loads(self.raw, out.as_mut_ptr(), out.len()) })?;
        Ok(Some(out))
    }
}

impl Snapshot {
    /// A new tracker equal to the stored co-activation statistics (recording into it continues
    /// exactly as the saved one would), or `None` when the snapshot holds none.
    pub fn tracker(&self) -> Result<Option<Tracker>> {
        if self.info()?.has_coactivation == 0 {
            return Ok(None);
        }
        let mut raw = ptr::null_mut();
        // SAFETY: valid handle and output pointer; the new tracker is owned here.
        check(unsafe { sys::eplb_snapshot_get_tracker(self.raw, &mut raw) })?;
        Tracker::adopt(raw).map(Some)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // SAFETY: owned handle, released once.
        unsafe { sys::eplb_snapshot_destroy(self.raw) }
    }
}

/// How a [`Tracker`] forgets (`eplb_window`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    Cumulative,
    /// The last `n` batches of each layer.
    Sliding(u32),
    /// Statistics multiplied by the factor before each batch.
    Decay(f64),
}

/// Per-layer expert load and co-activation statistics from top-k routing (`eplb_tracker`).
pub struct Tracker {
    raw: *mut sys::eplb_tracker,
    num_layers: u32,
    num_logical_experts: u32,
    top_k: u32,
}

// SAFETY: no thread affinity; mutating calls take &mut self, and the C API allows concurrent
// calls of its const getters (the &self methods).
unsafe impl Send for Tracker {}
unsafe impl Sync for Tracker {}

impl Tracker {
    /// A tracker for `num_layers` layers of `num_logical_experts` experts and `top_k` slots.
    pub fn new(
        num_layers: u32,
        num_logical_experts: u32,
        top_k: u32,
        window: Window,
    ) -> Result<Tracker> {
        // SAFETY: init fills the struct.
        let mut options: sys::eplb_tracker_options = unsafe { std::mem::zeroed() };
        unsafe { sys::eplb_tracker_options_init(&mut options) };
        options.num_layers = num_layers;
        options.num_logical_experts = num_logical_experts;
        options.top_k = top_k;
        match window {
            Window::Cumulative => options.window = sys::EPLB_WINDOW_CUMULATIVE,
            Window::Sliding(batches) => {
                options.window = sys::EPLB_WINDOW_SLIDING;
                options.window_batches = batches;
            }
            Window::Decay(decay) => {
                options.window = sys::EPLB_WINDOW_DECAY;
                options.decay = decay;
            }
        }
        let mut raw = ptr::null_mut();
        check(unsafe { sys::eplb_tracker_create(&options, &mut raw) })?;
        Ok(Tracker {
            raw,
            num_layers,
            num_logical_experts,
            top_k,
        })
    }

    /// A tracker from options set in full (`eplb_tracker_options`, e.g. to change the
    /// reservoir's capacity or seed); `struct_size` is set here.
    pub fn with_options(mut options: sys::eplb_tracker_options) -> Result<Tracker> {
        options.struct_size = std::mem::size_of::<sys::eplb_tracker_options>() as u32;
        let mut raw = ptr::null_mut();
        // SAFETY: valid options and output pointer.
        check(unsafe { sys::eplb_tracker_create(&options, &mut raw) })?;
        Tracker::adopt(raw)
    }

    /// Default options for `num_layers` x `num_logical_experts`, top-`top_k`
    /// (`eplb_tracker_options_init`), to adjust and pass to [`Tracker::with_options`].
    pub fn default_options(
        num_layers: u32,
        num_logical_experts: u32,
        top_k: u32,
    ) -> sys::eplb_tracker_options {
        // SAFETY: init fills the struct.
        let mut options: sys::eplb_tracker_options = unsafe { std::mem::zeroed() };
        unsafe { sys::eplb_tracker_options_init(&mut options) };
        options.num_layers = num_layers;
        options.num_logical_experts = num_logical_experts;
        options.top_k = top_k;
        options
    }

    /// Takes ownership of a tracker handle (destroyed on drop, also on error).
    fn adopt(raw: *mut sys::eplb_tracker) -> Result<Tracker> {
        let mut tracker = Tracker {
            raw,
            num_layers: 0,
            num_logical_experts: 0,
            top_k: 0,
        };
        let options = tracker.options()?;
        tracker.num_layers = options.num_layers;
        tracker.num_logical_experts = options.num_logical_experts;
        tracker.top_k = options.top_k;
        Ok(tracker)
    }

    /// The tracker's options (`eplb_tracker_get_options`).
    pub fn options(&self) -> Result<sys::eplb_tracker_options> {
        // SAFETY: zeroed plain-data struct with struct_size set.
        let mut options: sys::eplb_tracker_options = unsafe { std::mem::zeroed() };
        options.struct_size = std::mem::size_of::<sys::eplb_tracker_options>() as u32;
        check(unsafe { sys::eplb_tracker_get_options(self.raw, &mut options) })?;
        Ok(options)
    }

    /// Records one batch of `layer` with physical slot ids of `placement`.
    pub fn record_physical(
        &mut self,
        placement: &Placement,
        layer: u32,
        topk_ids: &[i32],
    ) -> Result<()> {
        let tokens = self.tokens(topk_ids)?;
        // SAFETY: valid handles; the slice is valid for its length.
        check(unsafe {
            sys::eplb_tracker_record_physical(
                self.raw,
                placement.raw,
                layer,
                topk_ids.as_ptr(),
                tokens,
                self.top_k,
            )
        })
    }

    /// One layer's sampled top-k rows, `[rows][top_k]` row-major.
    pub fn samples(&self, layer: u32) -> Result<Vec<i32>> {
        let mut rows = 0usize;
        // SAFETY: size query (NULL, 0) then a buffer of rows * top_k elements.
        check(unsafe {
            sys::eplb_tracker_get_samples(self.raw, layer, ptr::null_mut(), 0, &mut rows)
        })?;
        let mut out = vec![0i32; rows * self.top_k as usize];
        if rows > 0 {
            check(unsafe {
                sys::eplb_tracker_get_samples(
                    self.raw,
                    layer,
                    out.as_mut_ptr(),
                    out.len(),
                    &mut rows,
                )
            })?;
        }
        Ok(out)
    }

    /// Writes a statistics snapshot (the whole state; [`Snapshot::tracker`] resumes it) to
    /// `path` atomically, with an optional `label`.
    pub fn save(&self, path: impl AsRef<Path>, label: Option<&str>) -> Result<()> {
        let c_path = path_string(path.as_ref())?;
        let c_label = label.map(|l| c_string(l, "label")).transpose()?;
        let options = snapshot_options(c_label.as_ref());
        // SAFETY: the label outlives the call.
        check(unsafe { sys::eplb_snapshot_save_statistics(self.raw, &options, c_path.as_ptr()) })
    }

    /// The tokens of a batch of whole `[tokens][top_k]` rows, or an error.
    fn tokens(&self, topk_ids: &[i32]) -> Result<usize> {
        let top_k = self.top_k as usize;
        if topk_ids.len() % top_k != 0 {
            return Err(invalid(format!(
                "topk_ids length {} is not a multiple of top_k {top_k}",
                topk_ids.len()
            )));
        }
        Ok(topk_ids.len() / top_k)
    }

    /// Records one batch of `layer`: `topk_ids` is `[tokens][top_k]` logical ids, -1 masked.
    pub fn record(&mut self, layer: u32, topk_ids: &[i32]) -> Result<()> {
        let tokens = self.tokens(topk_ids)?;
        // SAFETY: the slice is valid for its length.
        check(unsafe {
            sys::eplb_tracker_record(self.raw, layer, topk_ids.as_ptr(), tokens, self.top_k)
        })
    }

    /// Adds `other`'s statistics into this tracker.
    pub fn merge(&mut self, other: &Tracker) -> Result<()> {
        // SAFETY: both handles are valid; other is only read.
        check(unsafe { sys::eplb_tracker_merge(self.raw, other.raw) })
    }

    /// Forgets all statistics.
    pub fn reset(&mut self) -> Result<()> {
        check(unsafe { sys::eplb_tracker_reset(self.raw) })
    }

    /// `[layers][logical experts]` loads at current weights, ready for [`Planner::plan`].
    pub fn loads(&self) -> Result<Vec<f64>> {
        let mut out = vec![0.0; self.num_layers as usize * self.num_logical_experts as usize];
        // SAFETY: the buffer holds out.len() elements.
        check(unsafe { sys::eplb_tracker_get_loads(self.raw, out.as_mut_ptr(), out.len()) })?;
        Ok(out)
    }

    /// One layer's co-activation counts as a packed upper triangle `[E*(E-1)/2]`.
    pub fn coactivation(&self, layer: u32) -> Result<Vec<f64>> {
        let e = self.num_logical_experts as usize;
        let mut out = vec![0.0; e * e.saturating_sub(1) / 2];
        // SAFETY: the buffer holds out.len() elements.
        check(unsafe {
            sys::eplb_tracker_get_coactivation(self.raw, layer, out.as_mut_ptr(), out.len())
        })?;
        Ok(out)
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // SAFETY: owned handle, released once.
        unsafe { sys::eplb_tracker_destroy(self.raw) }
    }
}
