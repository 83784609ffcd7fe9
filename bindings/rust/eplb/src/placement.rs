//! Placements: phy2log, replicas, metrics and snapshot files (header section "placement").
use std::fmt;
use std::path::Path;
use std::ptr;

use crate::{check, path_string, sys, Algorithm, LibraryBuffer, Result, SnapshotOptions};

/// Shape, topology and provenance of a placement (`eplb_placement_info`). Slot p of a layer
/// lives on GPU p / `slots_per_gpu`; GPU g on node g / (`num_gpus` / `num_nodes`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PlacementInfo {
    /// MoE layers (rows).
    pub num_layers: u32,
    /// E: logical experts per layer.
    pub num_logical_experts: u32,
    /// R: physical slots per layer, summed over all GPUs.
    pub num_physical_experts: u32,
    pub num_nodes: u32,
    pub num_gpus: u32,
    /// Expert groups the planner was given (1 if none).
    pub num_groups: u32,
    /// R / `num_gpus`.
    pub slots_per_gpu: u32,
    /// X: the most replicas of any expert in any layer (the width of [`Placement::log2phy`]).
    pub log2phy_width: u32,
    /// The algorithm that made it (`Default` resolved to the concrete one); `None` when it was
    /// imported from a map ([`Placement::from_phy2log`], the JSON formats).
    pub algorithm: Option<Algorithm>,
    /// Replicas were kept on their group's node.
    pub hierarchical: bool,
    /// Wall time the planner spent, in seconds (0 for imported placements).
    pub plan_seconds: f64,
}

impl PlacementInfo {
    fn from_raw(raw: &sys::eplb_placement_info) -> PlacementInfo {
        PlacementInfo {
            num_layers: raw.num_layers,
            num_logical_experts: raw.num_logical_experts,
            num_physical_experts: raw.num_physical_experts,
            num_nodes: raw.num_nodes,
            num_gpus: raw.num_gpus,
            num_groups: raw.num_groups,
            slots_per_gpu: raw.slots_per_gpu,
            log2phy_width: raw.log2phy_width,
            algorithm: Algorithm::provenance(raw.algorithm),
            hierarchical: raw.hierarchical != 0,
            plan_seconds: raw.plan_seconds,
        }
    }
}

/// An immutable expert placement for all layers (`eplb_placement`); share it across threads.
pub struct Placement {
    pub(crate) raw: *mut sys::eplb_placement,
}

// SAFETY: a placement is immutable; all its functions take a const handle.
unsafe impl Send for Placement {}
unsafe impl Sync for Placement {}

impl Placement {
    /// The C handle, for the [`sys`](crate::sys) functions this crate does not wrap (the
    /// device tables, the GPU kernels). It stays owned by `self`: valid while `self` lives,
    /// never to be destroyed, and only for functions taking a `const eplb_placement*`.
    pub fn as_raw(&self) -> *const sys::eplb_placement {
        self.raw
    }

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
        let mut info: sys::eplb_placement_info = unsafe { std::mem::zeroed() };
        info.struct_size = std::mem::size_of::<sys::eplb_placement_info>() as u32;
        check(unsafe { sys::eplb_placement_get_info(self.raw, &mut info) })?;
        Ok(PlacementInfo::from_raw(&info))
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

    /// Writes this placement to an `.eplb` snapshot at `path` atomically (a crash or a full
    /// disk leaves the previous file intact), with optional load statistics
    /// `[layers][logical experts]` (stored, and used for the stored metrics) and label.
    /// [`Placement::save_with`] also stores a tracker or sets the compression level.
    pub fn save(
        &self,
        path: impl AsRef<Path>,
        loads: Option<&[f64]>,
        label: Option<&str>,
    ) -> Result<()> {
        self.save_with(
            path,
            &SnapshotOptions {
                loads,
                label,
                ..SnapshotOptions::default()
            },
        )
    }

    /// [`Placement::save`] with every option of the snapshot.
    pub fn save_with(&self, path: impl AsRef<Path>, options: &SnapshotOptions<'_>) -> Result<()> {
        let c_path = path_string(path.as_ref())?;
        let c_label = options.c_label()?;
        let raw = options.raw(c_label.as_ref());
        // SAFETY: the loads, label and tracker stay valid during the call.
        check(unsafe { sys::eplb_snapshot_save(self.raw, &raw, c_path.as_ptr()) })
    }

    /// The `.eplb` snapshot [`Placement::save`] would write, as bytes
    /// ([`Snapshot::from_bytes`](crate::Snapshot::from_bytes) reads them back).
    pub fn to_snapshot_bytes(&self, loads: Option<&[f64]>, label: Option<&str>) -> Result<Vec<u8>> {
        self.to_snapshot_bytes_with(&SnapshotOptions {
            loads,
            label,
            ..SnapshotOptions::default()
        })
    }

    /// The `.eplb` snapshot [`Placement::save_with`] would write, as bytes.
    pub fn to_snapshot_bytes_with(&self, options: &SnapshotOptions<'_>) -> Result<Vec<u8>> {
        let c_label = options.c_label()?;
        let raw = options.raw(c_label.as_ref());
        let (mut data, mut size) = (ptr::null_mut(), 0usize);
        // SAFETY: the loads, label and tracker stay valid during the call; the buffer is copied,
        // then freed.
        check(unsafe { sys::eplb_snapshot_save_to_buffer(self.raw, &raw, &mut data, &mut size) })?;
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
