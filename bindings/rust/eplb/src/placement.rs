//! Placements: phy2log, replicas, metrics and snapshot files (header section "placement").
use std::fmt;
use std::path::Path;
use std::ptr;

use crate::{c_string, check, path_string, snapshot_options, sys, LibraryBuffer, Result};

/// Shape and provenance of a placement (`eplb_placement_info`).
pub type PlacementInfo = sys::eplb_placement_info;
/// Metrics of a placement under a load matrix (`eplb_metrics`).
pub type Metrics = sys::eplb_metrics;

/// An immutable expert placement for all layers (`eplb_placement`); share it across threads.
pub struct Placement {
    pub(crate) raw: *mut sys::eplb_placement,
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

    /// The `.eplb` snapshot [`Placement::save`] would write, as bytes ([`Snapshot::from_bytes`](crate::Snapshot::from_bytes)
    /// reads them back).
    pub fn to_snapshot_bytes(&self, loads: Option<&[f64]>, label: Option<&str>) -> Result<Vec<u8>> {
        let c_label = label.map(|l| c_string(l, "label")).transpose()?;
        let mut options = snapshot_options(c_label.as_ref());
        if let Some(loads) = loads {
            options.loads = loads.as_ptr();
            options.loads_len = loads.len();
        }
        let (mut data, mut size) = (ptr::null_mut(), 0usize);
        // SAFETY: the loads and label stay valid during the call; the buffer is copied, then
        // freed.
        check(unsafe {
            sys::eplb_snapshot_save_to_buffer(self.raw, &options, &mut data, &mut size)
        })?;
        Ok(LibraryBuffer(data).bytes(size).to_vec())
    }
}

impl fmt::Debug for Placement {
    /// Shape and topology, e.g. `Placement { num_layers: 2, num_logical_experts: 12, .. }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Placement");
        match self.info() {
            Ok(info) => out
                .field("num_layers", &info.num_layers)
                .field("num_logical_experts", &info.num_logical_experts)
                .field("num_physical_experts", &info.num_physical_experts)
                .field("num_nodes", &info.num_nodes)
                .field("num_gpus", &info.num_gpus)
                .field("num_groups", &info.num_groups)
                .finish_non_exhaustive(),
            Err(error) => out
                .field("error", &error.to_string())
                .finish_non_exhaustive(),
        }
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        // SAFETY: owned handle, released once.
        unsafe { sys::eplb_placement_destroy(self.raw) }
    }
}
