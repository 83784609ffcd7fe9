//! Snapshots: `.eplb` files and bytes read back (header section "snapshots").
use std::ffi::CString;
use std::fmt;
use std::path::Path;
use std::ptr;

use crate::{
    c_string, check, fixed_c_string, path_string, sys, Algorithm, Placement, Result, Tracker,
};

/// What [`Placement::save_with`] stores besides the placement (`eplb_snapshot_options`).
/// `Default` is the library's defaults (`eplb_snapshot_options_init`): nothing stored, zstd
/// level 3.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotOptions<'a> {
    /// Load statistics `[layers][logical experts]`, stored with the placement
    /// ([`Snapshot::loads`]) and used for its stored metrics.
    pub loads: Option<&'a [f64]>,
    /// A label, at most 255 bytes ([`Snapshot::label`]).
    pub label: Option<&'a str>,
    /// Co-activation statistics of the placement's shape, stored with it so that
    /// [`Snapshot::tracker`] resumes them. Its loads are not `loads`: without `loads` the file
    /// stores no metrics.
    pub tracker: Option<&'a Tracker>,
    /// zstd level, 1..=19.
    pub compression_level: u32,
}

impl Default for SnapshotOptions<'_> {
    fn default() -> Self {
        SnapshotOptions {
            loads: None,
            label: None,
            tracker: None,
            compression_level: raw_default_options().compression_level,
        }
    }
}

impl SnapshotOptions<'_> {
    pub(crate) fn c_label(&self) -> Result<Option<CString>> {
        self.label.map(|l| c_string(l, "label")).transpose()
    }

    /// The C options, pointing into `self` and `label` (from [`SnapshotOptions::c_label`]),
    /// which must outlive their use.
    pub(crate) fn raw(&self, label: Option<&CString>) -> sys::eplb_snapshot_options {
        let mut raw = raw_default_options();
        raw.compression_level = self.compression_level;
        if let Some(loads) = self.loads {
            raw.loads = loads.as_ptr();
            raw.loads_len = loads.len();
        }
        if let Some(label) = label {
            raw.label = label.as_ptr();
        }
        if let Some(tracker) = self.tracker {
            raw.tracker = tracker.raw;
        }
        raw
    }
}

pub(crate) fn raw_default_options() -> sys::eplb_snapshot_options {
    // SAFETY: init fills a zeroed plain-data struct, struct_size included.
    let mut raw: sys::eplb_snapshot_options = unsafe { std::mem::zeroed() };
    unsafe { sys::eplb_snapshot_options_init(&mut raw) };
    raw
}

/// A loaded `.eplb` snapshot (`eplb_snapshot`): immutable, shareable across threads.
pub struct Snapshot {
    raw: *mut sys::eplb_snapshot,
}

// SAFETY: a loaded snapshot is immutable; its functions take a const handle.
unsafe impl Send for Snapshot {}
unsafe impl Sync for Snapshot {}

/// What a snapshot holds (`eplb_snapshot_info`), read from its header and small sections. A
/// statistics snapshot ([`Tracker::save`]: co-activation statistics, no placement) has
/// `num_physical_experts`, `num_nodes`, `num_gpus` and `num_groups` 0
/// ([`SnapshotInfo::has_placement`] is false), `algorithm` `None`, `has_loads` false and
/// `has_coactivation` true; its `num_layers` and `num_logical_experts` are the tracker's.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SnapshotInfo {
    /// Snapshot format version of the file (major.minor).
    pub format_major: u32,
    pub format_minor: u32,
    pub num_layers: u32,
    pub num_logical_experts: u32,
    pub num_physical_experts: u32,
    pub num_nodes: u32,
    pub num_gpus: u32,
    pub num_groups: u32,
    /// The algorithm that made the placement; `None` if imported (or a statistics snapshot).
    pub algorithm: Option<Algorithm>,
    /// Load statistics are stored ([`Snapshot::loads`]).
    pub has_loads: bool,
    /// Co-activation statistics are stored ([`Snapshot::tracker`]).
    pub has_coactivation: bool,
    /// When the snapshot was written, in seconds since the Unix epoch.
    pub created_unix_seconds: u64,
    /// The file's size in bytes.
    pub file_size: u64,
    /// Wall time the planner spent, in seconds.
    pub plan_seconds: f64,
    /// The stored metrics' balancedness under the stored loads; `None` when no metrics are
    /// stored (no load statistics, or a format 1.0 file).
    pub balancedness: Option<f64>,
    /// The version of the libeplb that wrote it ("0.1.1", ...).
    pub library_version: String,
    /// The label it was saved with ("" if none).
    pub label: String,
}

impl SnapshotInfo {
    fn from_raw(raw: &sys::eplb_snapshot_info) -> SnapshotInfo {
        SnapshotInfo {
            format_major: raw.format_major,
            format_minor: raw.format_minor,
            num_layers: raw.num_layers,
            num_logical_experts: raw.num_logical_experts,
            num_physical_experts: raw.num_physical_experts,
            num_nodes: raw.num_nodes,
            num_gpus: raw.num_gpus,
            num_groups: raw.num_groups,
            algorithm: Algorithm::provenance(raw.algorithm),
            has_loads: raw.has_loads != 0,
            has_coactivation: raw.has_coactivation != 0,
            created_unix_seconds: raw.created_unix_seconds,
            file_size: raw.file_size,
            plan_seconds: raw.plan_seconds,
            // -1 when absent; a balancedness is in (0, 1].
            balancedness: (raw.balancedness >= 0.0).then_some(raw.balancedness),
            library_version: fixed_c_string(&raw.library_version),
            label: fixed_c_string(&raw.label),
        }
    }

    /// The snapshot holds a placement ([`Snapshot::placement`]); false for a statistics
    /// snapshot.
    pub fn has_placement(&self) -> bool {
        self.num_physical_experts != 0
    }
}

/// A zeroed `eplb_snapshot_info` with `struct_size` set.
fn raw_info() -> sys::eplb_snapshot_info {
    // SAFETY: plain-data struct; all-zero bytes are a valid value.
    let mut info: sys::eplb_snapshot_info = unsafe { std::mem::zeroed() };
    info.struct_size = std::mem::size_of::<sys::eplb_snapshot_info>() as u32;
    info
}

impl Snapshot {
    /// The C handle, for the [`sys`](crate::sys) functions. It stays owned by `self`: valid
    /// while `self` lives, never to be destroyed, and only for functions taking a
    /// `const eplb_snapshot*`.
    pub fn as_raw(&self) -> *const sys::eplb_snapshot {
        self.raw
    }

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

    /// What the snapshot file at `path` holds, from its header and small sections only.
    pub fn inspect(path: impl AsRef<Path>) -> Result<SnapshotInfo> {
        let c_path = path_string(path.as_ref())?;
        let mut info = raw_info();
        // SAFETY: valid string and output struct with struct_size set.
        check(unsafe { sys::eplb_snapshot_inspect(c_path.as_ptr(), &mut info) })?;
        Ok(SnapshotInfo::from_raw(&info))
    }

    /// Shape, provenance, label and stored metrics.
    pub fn info(&self) -> Result<SnapshotInfo> {
        let mut info = raw_info();
        // SAFETY: valid handle and output struct with struct_size set.
        check(unsafe { sys::eplb_snapshot_get_info(self.raw, &mut info) })?;
        Ok(SnapshotInfo::from_raw(&info))
    }

    /// The label the snapshot was saved with ("" if none).
    pub fn label(&self) -> Result<String> {
        Ok(self.info()?.label)
    }

    /// The version of the libeplb that wrote the snapshot ("0.1.1", ...).
    pub fn library_version(&self) -> Result<String> {
        Ok(self.info()?.library_version)
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
        if !info.has_loads {
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
        if !self.info()?.has_coactivation {
            return Ok(None);
        }
        let mut raw = ptr::null_mut();
        // SAFETY: valid handle and output pointer; the new tracker is owned here.
        check(unsafe { sys::eplb_snapshot_get_tracker(self.raw, &mut raw) })?;
        Tracker::adopt(raw).map(Some)
    }
}

impl fmt::Debug for Snapshot {
    /// Shape, contents and label, e.g. `Snapshot { num_layers: 2, num_logical_experts: 12, .. }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Snapshot");
        match self.info() {
            Ok(info) => out
                .field("num_layers", &info.num_layers)
                .field("num_logical_experts", &info.num_logical_experts)
                .field("num_physical_experts", &info.num_physical_experts)
                .field("num_nodes", &info.num_nodes)
                .field("num_gpus", &info.num_gpus)
                .field("has_loads", &info.has_loads)
                .field("has_coactivation", &info.has_coactivation)
                .field("label", &info.label)
                .finish_non_exhaustive(),
            Err(error) => out
                .field("error", &error.to_string())
                .finish_non_exhaustive(),
        }
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // SAFETY: owned handle, released once.
        unsafe { sys::eplb_snapshot_destroy(self.raw) }
    }
}
