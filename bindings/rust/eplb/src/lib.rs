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
//! Modules of the C API covered here: planners ([`Planner`]; [`Planner::plan_near`] re-plans
//! near the placement the GPUs hold, so that few experts move), plan controls ([`PlanControl`]:
//! cancel a plan from another thread, watch its progress), placements ([`Placement`], with
//! metrics, bounds and the SGLang / vLLM-Ascend JSON formats), snapshots ([`Snapshot`], files or
//! bytes), trackers ([`Tracker`]), migration plans ([`Migration`]), per-batch balancing on the
//! CPU ([`SplitSolver`], [`split_rank_quotas`], [`shared_expert_waterfill`]) and the workload
//! simulator ([`Workload`]). GPU kernels and NCCL are only in [`sys`]; the handles' `as_raw()`
//! passes a safe [`Placement`], [`Tracker`], [`Migration`] or [`Snapshot`] to them.
//!
//! Every fallible call returns [`Result`]; an [`Error`] carries the C status and the library's
//! message naming the offending value (read on the same thread right after the failing call).
//! Handles are released on `Drop`; buffers the library allocates are copied and freed at once.
//! Threading follows the C API: [`Placement`], [`Snapshot`] and [`Migration`] are immutable and
//! `Send + Sync`; [`Planner`] and [`Tracker`] are `Send + Sync` because every call that mutates
//! them takes `&mut self` (the C API needs callers to serialise those calls, which the borrow
//! checker does), and their `&self` getters may run concurrently in C; [`PlanControl`] is
//! `Send + Sync` because every C function on it is thread-safe; [`SplitSolver`] and
//! [`Workload`] are only `Send` (one thread at a time each, as the header says):
//!
//! ```compile_fail,E0277
//! fn shared<T: Sync>(_: &T) {}
//! shared(&eplb::SplitSolver::new()?); // one solver per thread
//! # Ok::<(), eplb::Error>(())
//! ```
//! ```compile_fail,E0277
//! fn shared<T: Sync>(_: &T) {}
//! shared(&eplb::Workload::new(&Default::default())?); // one simulator per thread
//! # Ok::<(), eplb::Error>(())
//! ```
//!
//! What the library reports comes back as Rust values ([`PlacementInfo`], [`Metrics`],
//! [`LayerMetrics`], [`SnapshotInfo`], [`MigrationSummary`], ...); options are Rust structs
//! whose `Default` is the library's (`*_options_init`). The C structs stay in [`sys`].
//!
//! Linking: `eplb-sys` finds libeplb in `EPLB_LIB_DIR`, else through `pkg-config eplb`. The
//! rpath this crate's build script adds reaches only its own tests (Cargo passes a dependency's
//! link arguments to no one else), so a binary that runs against a libeplb outside the system
//! paths needs its own, or it stops at startup with "libeplb.so.0.1: cannot open shared object
//! file". Either depend on `eplb-sys` too (Cargo gives its `DEP_EPLB_LIBDIR` only to direct
//! dependents) with this `build.rs` (as `examples/rust` does):
//!
//! ```ignore
//! // build.rs (examples/rust/build.rs, run by its CTest test)
//! fn main() {
//!     if let Ok(dir) = std::env::var("DEP_EPLB_LIBDIR") {
//!         println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
//!     }
//! }
//! ```
//!
//! or build with `RUSTFLAGS="-C link-arg=-Wl,-rpath,$EPLB_LIB_DIR"`.
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::c_char;
use std::path::Path;

pub use eplb_sys as sys;

mod interop;
mod metrics;
mod migration;
mod placement;
mod plan_control;
mod planner;
mod snapshot;
mod split;
mod tracker;
mod workload;

pub use interop::{loads_from_sglang_json, LoadMatrix};
pub use metrics::{LayerMetrics, Metrics};
pub use migration::{
    Migration, MigrationOptions, MigrationSummary, Relabel, Transfer, TransferKind,
};
pub use placement::{Placement, PlacementInfo};
pub use plan_control::{PlanControl, PlanProgress};
pub use planner::{Algorithm, NearOptions, NearReport, Planner, PlannerOptions};
pub use snapshot::{Snapshot, SnapshotInfo, SnapshotOptions};
pub use split::{
    shared_expert_waterfill, split_rank_quotas, GpuTerms, NodeSplit, Split, SplitSolver,
    WaterfillOptions,
};
pub use tracker::{Tracker, TrackerOptions, Window};
pub use workload::{Workload, WorkloadOptions};

/// A failed libeplb call: the C status and the library's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The C `eplb_status` (see [`Status`]).
    pub status: Status,
    /// `eplb_last_error_message()` of the failing call, naming the offending value.
    pub message: String,
}

/// The C API's status codes (`eplb_status`), except `EPLB_OK`. `Display` prints the library's
/// text for the status (`eplb_status_string`); [`Status::code`] is the C value. New statuses may
/// be added: a `match` needs a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
    /// A plan stopped early because its [`PlanControl`] was cancelled; nothing was returned and
    /// the planner stays usable.
    Cancelled,
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
            sys::EPLB_ERR_CANCELLED => Status::Cancelled,
            other => Status::Other(other),
        }
    }

    /// The C `eplb_status` value (`EPLB_ERR_INVALID_ARGUMENT` is 1, ...).
    pub fn code(self) -> u32 {
        match self {
            Status::InvalidArgument => sys::EPLB_ERR_INVALID_ARGUMENT,
            Status::OutOfMemory => sys::EPLB_ERR_OUT_OF_MEMORY,
            Status::BufferTooSmall => sys::EPLB_ERR_BUFFER_TOO_SMALL,
            Status::Internal => sys::EPLB_ERR_INTERNAL,
            Status::Io => sys::EPLB_ERR_IO,
            Status::Corrupt => sys::EPLB_ERR_CORRUPT,
            Status::Truncated => sys::EPLB_ERR_TRUNCATED,
            Status::UnsupportedVersion => sys::EPLB_ERR_UNSUPPORTED_VERSION,
            Status::NoDevice => sys::EPLB_ERR_NO_DEVICE,
            Status::Device => sys::EPLB_ERR_DEVICE,
            Status::NoNccl => sys::EPLB_ERR_NO_NCCL,
            Status::Nccl => sys::EPLB_ERR_NCCL,
            Status::Cancelled => sys::EPLB_ERR_CANCELLED,
            Status::Other(code) => code,
        }
    }
}

impl fmt::Display for Status {
    /// The loaded library's text for the status ("invalid argument", ...); an unknown one also
    /// shows its code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: static NUL-terminated text, never NULL (also for unknown values).
        let text = unsafe { CStr::from_ptr(sys::eplb_status_string(self.code())) };
        f.write_str(&text.to_string_lossy())?;
        if let Status::Other(code) = self {
            write!(f, " (status {code})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    /// `<status>: <message>`, e.g. `invalid argument: num_gpus (0) must be at least 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.status)
        } else {
            write!(f, "{}: {}", self.status, self.message)
        }
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

/// `len` zeroed elements for an output buffer whose size the caller chose: an allocation that
/// fails is `Status::OutOfMemory` naming `what`, not an abort.
fn zeroed_vec<T: Clone + Default>(len: usize, what: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| Error {
        status: Status::OutOfMemory,
        message: format!(
            "{what}: cannot allocate {len} elements of {} bytes",
            std::mem::size_of::<T>()
        ),
    })?;
    out.resize(len, T::default());
    Ok(out)
}

fn c_string(value: &str, what: &str) -> Result<CString> {
    CString::new(value).map_err(|_| invalid(format!("{what} contains a NUL byte: {value:?}")))
}

/// A buffer the library allocated for the caller, released with `eplb_buffer_free` on drop (also
/// when a conversion of its content fails).
struct LibraryBuffer(*mut std::os::raw::c_void);

impl LibraryBuffer {
    /// The first `len` bytes (empty for a NULL buffer).
    fn bytes(&self, len: usize) -> &[u8] {
        if self.0.is_null() || len == 0 {
            return &[];
        }
        // SAFETY: the library wrote `len` bytes at this non-NULL address, alive until drop.
        unsafe { std::slice::from_raw_parts(self.0 as *const u8, len) }
    }
}

impl Drop for LibraryBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated by libeplb for the caller, released once; NULL is a no-op.
        unsafe { sys::eplb_buffer_free(self.0) }
    }
}

/// A library-written UTF-8 text of `len` bytes, copied out and then freed.
fn library_string(buffer: LibraryBuffer, len: usize) -> Result<String> {
    String::from_utf8(buffer.bytes(len).to_vec()).map_err(|e| Error {
        status: Status::Internal,
        message: format!("libeplb returned text that is not UTF-8: {e}"),
    })
}

/// A path as C sees it: its bytes on Unix (any file name but one with a NUL byte), its UTF-8
/// text elsewhere.
fn path_string(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes()
    };
    #[cfg(not(unix))]
    let bytes = path
        .to_str()
        .ok_or_else(|| invalid(format!("path is not UTF-8: {path:?}")))?
        .as_bytes();
    CString::new(bytes).map_err(|_| invalid(format!("path contains a NUL byte: {path:?}")))
}

/// The text of a fixed-size C char array (`eplb_snapshot_info::label`, ...): up to its first NUL,
/// or the whole array when it has none, never past its end.
fn fixed_c_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .map(|&c| u8::from_ne_bytes(c.to_ne_bytes()))
        .collect();
    let text = CStr::from_bytes_until_nul(&bytes).map_or(&bytes[..], CStr::to_bytes);
    String::from_utf8_lossy(text).into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(bytes: &[u8]) -> Vec<c_char> {
        bytes
            .iter()
            .map(|&b| c_char::from_ne_bytes(b.to_ne_bytes()))
            .collect()
    }

    #[test]
    fn fixed_c_string_stops_at_the_array_end() {
        assert_eq!(fixed_c_string(&chars(b"abc\0def\0")), "abc");
        assert_eq!(fixed_c_string(&chars(b"\0abc")), "");
        // No terminator: the whole array and not a byte more.
        assert_eq!(fixed_c_string(&chars(b"abcd")), "abcd");
        assert_eq!(fixed_c_string(&[]), "");
        assert_eq!(fixed_c_string(&chars(b"\xffx\0")), "\u{fffd}x");
    }

    #[test]
    fn nul_in_a_path_is_refused() {
        let error = path_string(Path::new("dir/a\0b")).err().unwrap();
        assert_eq!(error.status, Status::InvalidArgument);
        assert!(error.message.contains("a\\0b"), "{error}");
    }
}
