//! Plan controls: cancel a plan from another thread and watch its progress (header section
//! "plan control").
use std::fmt;
use std::ptr;

use crate::{check, sys, Result};

/// How far the plans that use a [`PlanControl`] are (`eplb_plan_progress`).
///
/// Progress is counted in steps: one per layer and pass. Affinity planning
/// ([`Planner::plan_tracked`](crate::Planner::plan_tracked) with
/// [`PlannerOptions::affinity`](crate::PlannerOptions::affinity)) on more than one node and
/// [`Planner::plan_near`](crate::Planner::plan_near) make two passes, every other plan one. A plan announces its steps when it starts (after its
/// arguments are checked), so the steps of every plan that used the control add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct PlanProgress {
    /// Steps finished by the plans that use the control.
    pub steps_done: u64,
    /// Steps announced by those plans; `steps_done <= steps_total`, equal when every plan
    /// finished (a failed or cancelled plan leaves a gap).
    pub steps_total: u64,
    /// [`PlanControl::cancel`] was called.
    pub cancelled: bool,
}

/// Cancels the plans of the [`Planner`](crate::Planner)s it is attached to from any thread,
/// and reports their progress (`eplb_plan_control`). Attach it with
/// [`Planner::set_control`](crate::Planner::set_control).
///
/// Cancelling is sticky: a plan in progress stops at its next layer boundary (a layer takes
/// milliseconds; an affinity layer, or a near layer where experts have dozens of replicas, up
/// to about a second on one core), and every
/// later plan stops before it starts, all with [`Status::Cancelled`](crate::Status::Cancelled);
/// nothing is returned and the planners stay usable. Use a new control for new work.
///
/// `Send + Sync`: share it by reference (e.g. with [`std::thread::scope`]) or in an
/// [`Arc`](std::sync::Arc) with the thread that plans. One control may serve several planners,
/// which then stop together. Dropping it while it is attached is safe: each planner keeps its
/// own reference until it is dropped or detaches it.
///
/// A deadline: a watcher thread cancels the plan unless it finishes within five seconds.
///
/// ```
/// use std::sync::mpsc::{channel, RecvTimeoutError};
/// use std::time::Duration;
/// use eplb::{PlanControl, Planner, PlannerOptions, Status};
///
/// let mut planner = Planner::new(&PlannerOptions {
///     num_layers: 2, num_logical_experts: 12, num_physical_experts: 16, num_gpus: 8,
///     ..Default::default()
/// })?;
/// let control = PlanControl::new()?;
/// planner.set_control(Some(&control))?;
/// let (finished, deadline) = channel::<()>();
/// let result = std::thread::scope(|scope| {
///     let control = &control;
///     scope.spawn(move || {
///         if deadline.recv_timeout(Duration::from_secs(5)) == Err(RecvTimeoutError::Timeout) {
///             control.cancel(); // the plan stops at its next layer with Status::Cancelled
///         }
///     });
///     let result = planner.plan(&[1.0; 24]);
///     drop(finished); // wakes the watcher
///     result
/// });
/// match result {
///     Ok(placement) => println!("planned: {placement:?}"),
///     Err(error) if error.status == Status::Cancelled => println!("past the deadline"),
///     Err(error) => return Err(error),
/// }
/// println!("{:?}", control.progress()); // steps_done: 2, steps_total: 2 (one per layer)
/// # Ok::<(), eplb::Error>(())
/// ```
pub struct PlanControl {
    raw: *mut sys::eplb_plan_control,
}

// SAFETY: the C API says every plan control function is thread-safe and may run concurrently
// with any other call on the same control and with the plans that use it (the cancelled flag and
// the step counters are atomics); the handle has no thread affinity, and destroying it only
// releases the caller's reference (the planners attached to it keep theirs).
unsafe impl Send for PlanControl {}
unsafe impl Sync for PlanControl {}

impl PlanControl {
    /// A new control: not cancelled, no steps.
    pub fn new() -> Result<PlanControl> {
        let mut raw = ptr::null_mut();
        // SAFETY: valid output pointer.
        check(unsafe { sys::eplb_plan_control_create(&mut raw) })?;
        Ok(PlanControl { raw })
    }

    /// The C handle, for [`Planner::set_control`](crate::Planner::set_control).
    pub(crate) fn raw(&self) -> *mut sys::eplb_plan_control {
        self.raw
    }

    /// Cancels every plan using the control, running or later (see the type's documentation).
    /// Idempotent; any thread, any time, also while a plan runs.
    pub fn cancel(&self) {
        // SAFETY: a live handle; cancelling is thread-safe (an atomic store in the library), so
        // a shared reference is enough. It fails only for a NULL control.
        let status = unsafe { sys::eplb_plan_control_cancel(self.raw) };
        debug_assert_eq!(status, sys::EPLB_OK);
    }

    /// The steps done and announced so far, and whether the control is cancelled. Lock-free and
    /// cheap enough to poll from any thread while a plan runs.
    pub fn progress(&self) -> PlanProgress {
        // SAFETY: zeroed plain-data struct with struct_size set.
        let mut raw: sys::eplb_plan_progress = unsafe { std::mem::zeroed() };
        raw.struct_size = std::mem::size_of::<sys::eplb_plan_progress>() as u32;
        // SAFETY: a live handle, only read (thread-safe); valid output struct. It fails only for
        // a NULL pointer or a bad struct_size, which neither is.
        let status = unsafe { sys::eplb_plan_control_get_progress(self.raw, &mut raw) };
        debug_assert_eq!(status, sys::EPLB_OK);
        PlanProgress {
            steps_done: raw.steps_done,
            steps_total: raw.steps_total,
            cancelled: raw.cancelled != 0,
        }
    }

    /// [`PlanControl::cancel`] was called (`progress().cancelled`).
    pub fn is_cancelled(&self) -> bool {
        self.progress().cancelled
    }
}

impl fmt::Debug for PlanControl {
    /// The progress, e.g. `PlanControl { steps_done: 3, steps_total: 600, cancelled: false }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let progress = self.progress();
        f.debug_struct("PlanControl")
            .field("steps_done", &progress.steps_done)
            .field("steps_total", &progress.steps_total)
            .field("cancelled", &progress.cancelled)
            .finish()
    }
}

impl Drop for PlanControl {
    fn drop(&mut self) {
        // SAFETY: owned reference, released once; the planners attached to it keep theirs.
        unsafe { sys::eplb_plan_control_destroy(self.raw) }
    }
}
