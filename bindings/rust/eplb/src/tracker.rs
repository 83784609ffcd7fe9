//! Trackers: load and co-activation statistics recorded online (header section "tracker").
use std::fmt;
use std::path::Path;
use std::ptr;

use crate::{
    check, invalid, path_string, sys, Error, LibraryBuffer, Placement, Result, SnapshotOptions,
    Status,
};

/// How a [`Tracker`] forgets (`eplb_window`). A *batch* is one [`Tracker::record`] call for
/// one layer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Window {
    /// Everything since creation or the last reset; exact counts.
    #[default]
    Cumulative,
    /// The last `n` batches of each layer (`n` >= 1; the C default is 64); exact counts. Memory
    /// `n` x (E + E(E-1)/2) x 4 bytes per layer.
    Sliding(u32),
    /// Before each batch of a layer its statistics are multiplied by this factor, in (0, 1]
    /// (the C default is 0.99), so a batch b batches old weighs factor^b.
    Decay(f64),
}

impl Window {
    /// The C triple (window, window_batches, decay), other fields at their `defaults`.
    fn raw(self, defaults: &sys::eplb_tracker_options) -> (u32, u32, f64) {
        match self {
            Window::Cumulative => (
                sys::EPLB_WINDOW_CUMULATIVE,
                defaults.window_batches,
                defaults.decay,
            ),
            Window::Sliding(batches) => (sys::EPLB_WINDOW_SLIDING, batches, defaults.decay),
            Window::Decay(decay) => (sys::EPLB_WINDOW_DECAY, defaults.window_batches, decay),
        }
    }

    /// The window of C options, or an error for a window kind newer than these bindings.
    fn from_raw(raw: &sys::eplb_tracker_options) -> Result<Window> {
        match raw.window {
            sys::EPLB_WINDOW_CUMULATIVE => Ok(Window::Cumulative),
            sys::EPLB_WINDOW_SLIDING => Ok(Window::Sliding(raw.window_batches)),
            sys::EPLB_WINDOW_DECAY => Ok(Window::Decay(raw.decay)),
            other => Err(Error {
                status: Status::UnsupportedVersion,
                message: format!(
                    "tracker window {other} is newer than these bindings; update the eplb crate"
                ),
            }),
        }
    }
}

/// Shape, window, reservoir and seed of a [`Tracker`] (`eplb_tracker_options`). `Default` is
/// the library's defaults (`eplb_tracker_options_init`): the shape fields are 0 and must be set
/// (see [`TrackerOptions::new`]), window [`Window::Cumulative`], reservoir 4096 rows, seed 0.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerOptions {
    /// MoE layers, >= 1.
    pub num_layers: u32,
    /// E: logical experts per layer, >= 1.
    pub num_logical_experts: u32,
    /// Slots per token, 1..=1024.
    pub top_k: u32,
    /// How the statistics forget.
    pub window: Window,
    /// Top-k rows sampled per layer (the input of [`Placement::nodes_touched`] and of
    /// affinity-aware planning); 0 = none.
    pub reservoir_capacity: u32,
    /// Seed of the reservoir's RNG (the only option two merged trackers may differ in).
    pub seed: u64,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        let raw = raw_default_options();
        TrackerOptions {
            num_layers: raw.num_layers,
            num_logical_experts: raw.num_logical_experts,
            top_k: raw.top_k,
            // The defaults of `eplb_tracker_options_init` are always a known window.
            window: Window::from_raw(&raw).unwrap_or_default(),
            reservoir_capacity: raw.reservoir_capacity,
            seed: raw.seed,
        }
    }
}

impl TrackerOptions {
    /// The defaults for `num_layers` x `num_logical_experts` experts, top-`top_k`.
    pub fn new(num_layers: u32, num_logical_experts: u32, top_k: u32) -> TrackerOptions {
        TrackerOptions {
            num_layers,
            num_logical_experts,
            top_k,
            ..TrackerOptions::default()
        }
    }

    fn raw(&self) -> sys::eplb_tracker_options {
        let mut raw = raw_default_options();
        let (window, window_batches, decay) = self.window.raw(&raw);
        raw.num_layers = self.num_layers;
        raw.num_logical_experts = self.num_logical_experts;
        raw.top_k = self.top_k;
        raw.window = window;
        raw.window_batches = window_batches;
        raw.decay = decay;
        raw.reservoir_capacity = self.reservoir_capacity;
        raw.seed = self.seed;
        raw
    }

    fn from_raw(raw: &sys::eplb_tracker_options) -> Result<TrackerOptions> {
        Ok(TrackerOptions {
            num_layers: raw.num_layers,
            num_logical_experts: raw.num_logical_experts,
            top_k: raw.top_k,
            window: Window::from_raw(raw)?,
            reservoir_capacity: raw.reservoir_capacity,
            seed: raw.seed,
        })
    }
}

/// Snapshot options of a statistics snapshot: the defaults with `label`, which must outlive
/// their use.
fn raw_default_options() -> sys::eplb_tracker_options {
    // SAFETY: init fills a zeroed plain-data struct, struct_size included.
    let mut raw: sys::eplb_tracker_options = unsafe { std::mem::zeroed() };
    unsafe { sys::eplb_tracker_options_init(&mut raw) };
    raw
}

/// Per-layer expert load and co-activation statistics from top-k routing (`eplb_tracker`).
pub struct Tracker {
    pub(crate) raw: *mut sys::eplb_tracker,
    num_layers: u32,
    num_logical_experts: u32,
    top_k: u32,
}

// SAFETY: no thread affinity; mutating calls take &mut self, and the C API allows concurrent
// calls of its const getters (the &self methods).
unsafe impl Send for Tracker {}
unsafe impl Sync for Tracker {}

impl Tracker {
    /// A tracker for `num_layers` layers of `num_logical_experts` experts and `top_k` slots,
    /// with the other options at their defaults.
    pub fn new(
        num_layers: u32,
        num_logical_experts: u32,
        top_k: u32,
        window: Window,
    ) -> Result<Tracker> {
        Tracker::with_options(&TrackerOptions {
            window,
            ..TrackerOptions::new(num_layers, num_logical_experts, top_k)
        })
    }

    /// A tracker from options set in full (e.g. to change the reservoir's capacity or seed).
    pub fn with_options(options: &TrackerOptions) -> Result<Tracker> {
        let raw_options = options.raw();
        let mut raw = ptr::null_mut();
        // SAFETY: valid options and output pointer.
        check(unsafe { sys::eplb_tracker_create(&raw_options, &mut raw) })?;
        Ok(Tracker {
            raw,
            num_layers: options.num_layers,
            num_logical_experts: options.num_logical_experts,
            top_k: options.top_k,
        })
    }

    /// The C handle, for the [`sys`](crate::sys) functions this crate does not wrap (e.g.
    /// `eplb_comm_allreduce_tracker`'s `local`). It stays owned by `self`: valid while `self`
    /// lives, never to be destroyed, and only for functions taking a `const eplb_tracker*`.
    pub fn as_raw(&self) -> *const sys::eplb_tracker {
        self.raw
    }

    /// The C handle for a function that changes the tracker (e.g.
    /// `eplb_comm_allreduce_tracker`'s `out_sum`). As [`Tracker::as_raw`]; the exclusive borrow
    /// is what the C API asks of such calls, so use the pointer before `self` is used again.
    /// The function must keep the tracker's shape (layers, experts, top_k).
    pub fn as_raw_mut(&mut self) -> *mut sys::eplb_tracker {
        self.raw
    }

    /// Takes ownership of a tracker handle (destroyed on drop, also on error).
    pub(crate) fn adopt(raw: *mut sys::eplb_tracker) -> Result<Tracker> {
        let mut tracker = Tracker {
            raw,
            num_layers: 0,
            num_logical_experts: 0,
            top_k: 0,
        };
        // The raw options: the shape is needed even for a window newer than these bindings.
        let options = tracker.raw_options()?;
        tracker.num_layers = options.num_layers;
        tracker.num_logical_experts = options.num_logical_experts;
        tracker.top_k = options.top_k;
        Ok(tracker)
    }

    /// A new, independent tracker with this one's whole state (`eplb_tracker_clone`): options,
    /// counts, window, sampled rows and the sampler's RNG, so recording the same batches into
    /// both gives the same statistics. E.g. plan from a clone on another thread while serving
    /// keeps recording into this one; either may be dropped first. Not [`Clone`], since it can
    /// fail (out of memory).
    pub fn try_clone(&self) -> Result<Tracker> {
        let mut raw = ptr::null_mut();
        // SAFETY: valid handle, only read (allowed concurrently with the other &self calls);
        // valid output pointer.
        check(unsafe { sys::eplb_tracker_clone(self.raw, &mut raw) })?;
        Ok(Tracker {
            raw,
            num_layers: self.num_layers,
            num_logical_experts: self.num_logical_experts,
            top_k: self.top_k,
        })
    }

    /// The tracker's options (also of one restored from a snapshot). `UnsupportedVersion` for a
    /// window kind newer than these bindings.
    pub fn options(&self) -> Result<TrackerOptions> {
        TrackerOptions::from_raw(&self.raw_options()?)
    }

    fn raw_options(&self) -> Result<sys::eplb_tracker_options> {
        let mut options = raw_default_options();
        // SAFETY: valid handle; output struct with struct_size set.
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

    /// Writes a statistics snapshot (the whole state, no placement;
    /// [`Snapshot::tracker`](crate::Snapshot::tracker) resumes it) to `path` atomically, with an
    /// optional `label`. To store statistics with a placement, see
    /// [`SnapshotOptions::tracker`](crate::SnapshotOptions::tracker).
    pub fn save(&self, path: impl AsRef<Path>, label: Option<&str>) -> Result<()> {
        self.save_with(
            path,
            &SnapshotOptions {
                label,
                ..SnapshotOptions::default()
            },
        )
    }

    /// The statistics snapshot [`Tracker::save`] would write, as bytes.
    pub fn to_snapshot_bytes(&self, label: Option<&str>) -> Result<Vec<u8>> {
        self.to_snapshot_bytes_with(&SnapshotOptions {
            label,
            ..SnapshotOptions::default()
        })
    }

    /// [`Tracker::save`] with options: the label and the zstd `compression_level` of
    /// [`SnapshotOptions`]; its `loads` and `tracker` must be `None` (the loads are the
    /// tracker's), else `Status::InvalidArgument`.
    pub fn save_with(&self, path: impl AsRef<Path>, options: &SnapshotOptions<'_>) -> Result<()> {
        let c_path = path_string(path.as_ref())?;
        let c_label = options.c_label()?;
        let raw = options.raw(c_label.as_ref());
        // SAFETY: the label (and any loads or tracker the library refuses) outlive the call.
        check(unsafe { sys::eplb_snapshot_save_statistics(self.raw, &raw, c_path.as_ptr()) })
    }

    /// The statistics snapshot [`Tracker::save_with`] would write, as bytes.
    pub fn to_snapshot_bytes_with(&self, options: &SnapshotOptions<'_>) -> Result<Vec<u8>> {
        let c_label = options.c_label()?;
        let raw = options.raw(c_label.as_ref());
        let (mut data, mut size) = (ptr::null_mut(), 0usize);
        // SAFETY: the label outlives the call; the buffer is copied, then freed.
        check(unsafe {
            sys::eplb_snapshot_save_statistics_to_buffer(self.raw, &raw, &mut data, &mut size)
        })?;
        Ok(LibraryBuffer(data).bytes(size).to_vec())
    }

    /// How much `layer` has recorded since creation or reset: (batches, tokens its reservoir
    /// saw).
    pub fn layer_counts(&self, layer: u32) -> Result<(u64, u64)> {
        let (mut batches, mut tokens) = (0u64, 0u64);
        // SAFETY: valid handle and output pointers.
        check(unsafe {
            sys::eplb_tracker_get_layer_counts(self.raw, layer, &mut batches, &mut tokens)
        })?;
        Ok((batches, tokens))
    }

    /// The tokens of a batch of whole `[tokens][top_k]` rows, or an error.
    fn tokens(&self, topk_ids: &[i32]) -> Result<usize> {
        let top_k = self.top_k as usize;
        let tokens = topk_ids.len() / top_k;
        if tokens * top_k != topk_ids.len() {
            return Err(invalid(format!(
                "topk_ids length {} is not a multiple of top_k {top_k}",
                topk_ids.len()
            )));
        }
        Ok(tokens)
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

    /// `[layers][logical experts]` loads at current weights, ready for
    /// [`Planner::plan`](crate::Planner::plan).
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

impl fmt::Debug for Tracker {
    /// Shape and options, e.g. `Tracker { num_layers: 2, num_logical_experts: 16, top_k: 4, .. }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Tracker");
        out.field("num_layers", &self.num_layers)
            .field("num_logical_experts", &self.num_logical_experts)
            .field("top_k", &self.top_k);
        if let Ok(options) = self.raw_options() {
            match Window::from_raw(&options) {
                Ok(window) => out.field("window", &window),
                Err(_) => out.field("window", &options.window),
            };
            out.field("reservoir_capacity", &options.reservoir_capacity)
                .field("seed", &options.seed);
        }
        out.finish_non_exhaustive()
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // SAFETY: owned handle, released once.
        unsafe { sys::eplb_tracker_destroy(self.raw) }
    }
}
