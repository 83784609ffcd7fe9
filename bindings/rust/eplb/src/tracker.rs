//! Trackers: load and co-activation statistics recorded online (header section "tracker").
use std::fmt;
use std::path::Path;
use std::ptr;

use crate::{
    c_string, check, invalid, path_string, snapshot_options, sys, LibraryBuffer, Placement, Result,
};

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
    pub(crate) fn adopt(raw: *mut sys::eplb_tracker) -> Result<Tracker> {
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

    /// Writes a statistics snapshot (the whole state; [`Snapshot::tracker`](crate::Snapshot::tracker) resumes it) to
    /// `path` atomically, with an optional `label`.
    pub fn save(&self, path: impl AsRef<Path>, label: Option<&str>) -> Result<()> {
        let c_path = path_string(path.as_ref())?;
        let c_label = label.map(|l| c_string(l, "label")).transpose()?;
        let options = snapshot_options(c_label.as_ref());
        // SAFETY: the label outlives the call.
        check(unsafe { sys::eplb_snapshot_save_statistics(self.raw, &options, c_path.as_ptr()) })
    }

    /// The statistics snapshot [`Tracker::save`] would write, as bytes.
    pub fn to_snapshot_bytes(&self, label: Option<&str>) -> Result<Vec<u8>> {
        let c_label = label.map(|l| c_string(l, "label")).transpose()?;
        let options = snapshot_options(c_label.as_ref());
        let (mut data, mut size) = (ptr::null_mut(), 0usize);
        // SAFETY: the label outlives the call; the buffer is copied, then freed.
        check(unsafe {
            sys::eplb_snapshot_save_statistics_to_buffer(self.raw, &options, &mut data, &mut size)
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
        if let Ok(options) = self.options() {
            let window = match options.window {
                sys::EPLB_WINDOW_CUMULATIVE => Some(Window::Cumulative),
                sys::EPLB_WINDOW_SLIDING => Some(Window::Sliding(options.window_batches)),
                sys::EPLB_WINDOW_DECAY => Some(Window::Decay(options.decay)),
                _ => None,
            };
            match window {
                Some(window) => out.field("window", &window),
                None => out.field("window", &options.window),
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
