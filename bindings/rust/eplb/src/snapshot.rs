//! Snapshots: `.eplb` files and bytes read back (header section "snapshots").
use std::fmt;
use std::path::Path;
use std::ptr;

use crate::{check, fixed_c_string, path_string, sys, Placement, Result, Tracker};

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

    /// What the snapshot file at `path` holds, from its header and small sections only.
    pub fn inspect(path: impl AsRef<Path>) -> Result<SnapshotInfo> {
        let c_path = path_string(path.as_ref())?;
        // SAFETY: zeroed plain-data struct with struct_size set; valid string.
        let mut info: SnapshotInfo = unsafe { std::mem::zeroed() };
        info.struct_size = std::mem::size_of::<SnapshotInfo>() as u32;
        check(unsafe { sys::eplb_snapshot_inspect(c_path.as_ptr(), &mut info) })?;
        Ok(info)
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
        Ok(fixed_c_string(&self.info()?.label))
    }

    /// The version of the libeplb that wrote the snapshot ("0.1.1", ...).
    pub fn library_version(&self) -> Result<String> {
        Ok(fixed_c_string(&self.info()?.library_version))
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
                .field("has_loads", &(info.has_loads != 0))
                .field("has_coactivation", &(info.has_coactivation != 0))
                .field("label", &fixed_c_string(&info.label))
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
