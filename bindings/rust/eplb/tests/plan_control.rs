//! Plan controls: progress counted per layer and pass, cancelling before and during a plan from
//! another thread (shared by reference and in an `Arc`), a planner that stays usable and plans
//! exactly as before after a cancelled plan, shared controls, and controls dropped while attached.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use eplb::{
    Placement, PlanControl, PlanProgress, Planner, PlannerOptions, Status, Tracker, TrackerOptions,
};

// PlanControl is shared with the threads that cancel and watch (checked at compile time).
const _: fn() = {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PlanControl>
};

fn shape(layers: u32, experts: u32, slots: u32, nodes: u32, gpus: u32) -> PlannerOptions {
    PlannerOptions {
        num_layers: layers,
        num_logical_experts: experts,
        num_physical_experts: slots,
        num_nodes: nodes,
        num_gpus: gpus,
        ..Default::default()
    }
}

/// Skewed integer loads `[layers][experts]` (log-uniform over three decades), deterministic.
fn skewed_loads(options: &PlannerOptions, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let len = options.num_layers as usize * options.num_logical_experts as usize;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let uniform =
                (state.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64;
            (10f64.powf(3.0 * uniform)).floor()
        })
        .collect()
}

fn phy2log_of_fresh_planner(options: &PlannerOptions, loads: &[f64]) -> Vec<i32> {
    Planner::new(options)
        .unwrap()
        .plan(loads)
        .unwrap()
        .phy2log()
        .unwrap()
}

#[test]
fn a_new_control_is_not_cancelled_and_has_no_steps() {
    let control = PlanControl::new().unwrap();
    assert_eq!(control.progress(), PlanProgress::default());
    assert!(!control.is_cancelled());
    assert_eq!(
        format!("{control:?}"),
        "PlanControl { steps_done: 0, steps_total: 0, cancelled: false }"
    );
    control.cancel();
    control.cancel(); // idempotent
    assert!(control.is_cancelled());
    let progress = control.progress();
    assert!(progress.cancelled);
    assert_eq!((progress.steps_done, progress.steps_total), (0, 0));
}

#[test]
fn progress_counts_one_step_per_layer_and_pass_across_plans() {
    let options = PlannerOptions {
        num_threads: 1,
        ..shape(7, 32, 40, 2, 8)
    };
    let control = PlanControl::new().unwrap();
    let mut planner = Planner::new(&options).unwrap();
    planner.set_control(Some(&control)).unwrap();
    let loads = skewed_loads(&options, 1);
    let placement = planner.plan(&loads).unwrap();
    let progress = control.progress();
    assert_eq!((progress.steps_done, progress.steps_total), (7, 7));
    assert!(!progress.cancelled);
    // Attaching a control does not change the plan.
    assert_eq!(
        placement.phy2log().unwrap(),
        phy2log_of_fresh_planner(&options, &loads)
    );

    // Three windows are one pass over the layers too.
    let windows = loads.repeat(3);
    planner.plan_windows(&windows, 3).unwrap();
    let progress = control.progress();
    assert_eq!((progress.steps_done, progress.steps_total), (14, 14));

    // A plan refused for its arguments announces nothing.
    let mut bad = loads.clone();
    bad[3] = -1.0;
    let error = planner.plan(&bad).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");
    let progress = control.progress();
    assert_eq!((progress.steps_done, progress.steps_total), (14, 14));

    // Detached, the planner counts nowhere.
    planner.set_control(None).unwrap();
    planner.plan(&loads).unwrap();
    assert_eq!(control.progress().steps_total, 14);
}

#[test]
fn affinity_plans_on_several_nodes_count_two_steps_per_layer() {
    let (layers, experts, top_k) = (3u32, 32u32, 4usize);
    let mut tracker = Tracker::with_options(&TrackerOptions {
        reservoir_capacity: 256,
        ..TrackerOptions::new(layers, experts, top_k as u32)
    })
    .unwrap();
    let mut state = 5u32;
    for layer in 0..layers {
        // Topics of 4 experts that tokens pick together.
        let ids: Vec<i32> = (0..512)
            .flat_map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let base = ((state >> 16) % 8) as i32 * 4;
                (0..top_k as i32).map(move |k| base + k)
            })
            .collect();
        tracker.record(layer, &ids).unwrap();
    }
    let control = PlanControl::new().unwrap();
    let mut planner = Planner::new(&PlannerOptions {
        affinity: true,
        num_threads: 2,
        ..shape(layers, experts, 40, 4, 8)
    })
    .unwrap();
    planner.set_control(Some(&control)).unwrap();
    planner.plan_tracked(&tracker, None).unwrap();
    let progress = control.progress();
    assert_eq!((progress.steps_done, progress.steps_total), (6, 6));

    // On one node there is no traffic to improve: one pass.
    let mut one_node = Planner::new(&PlannerOptions {
        affinity: true,
        ..shape(layers, experts, 40, 1, 8)
    })
    .unwrap();
    one_node.set_control(Some(&control)).unwrap();
    one_node.plan_tracked(&tracker, None).unwrap();
    let progress = control.progress();
    assert_eq!((progress.steps_done, progress.steps_total), (9, 9));

    // Cancelled, the affinity plan stops before it starts too.
    control.cancel();
    let error = planner.plan_tracked(&tracker, None).err().unwrap();
    assert_eq!(error.status, Status::Cancelled, "{error}");
    assert_eq!(control.progress().steps_total, 9);
}

#[test]
fn a_cancelled_control_stops_the_next_plan_before_it_starts() {
    let options = shape(4, 16, 16, 1, 4);
    let control = PlanControl::new().unwrap();
    let mut planner = Planner::new(&options).unwrap();
    planner.set_control(Some(&control)).unwrap();
    control.cancel();
    let loads = skewed_loads(&options, 2);
    let error = planner.plan(&loads).err().unwrap();
    assert_eq!(error.status, Status::Cancelled);
    assert_eq!(error.status.code(), eplb::sys::EPLB_ERR_CANCELLED);
    assert!(error.message.contains("cancelled"), "{error}");
    assert!(error.to_string().starts_with("cancelled: "), "{error}");
    let error = planner.plan_windows(&loads.repeat(2), 2).err().unwrap();
    assert_eq!(error.status, Status::Cancelled, "{error}");
    let progress = control.progress();
    assert!(progress.cancelled);
    assert_eq!((progress.steps_done, progress.steps_total), (0, 0));

    // Bad arguments are still reported as such.
    let error = planner.plan(&loads[1..]).err().unwrap();
    assert_eq!(error.status, Status::InvalidArgument, "{error}");

    // Detached, the planner plans again, exactly as a planner that never had a control.
    planner.set_control(None).unwrap();
    assert_eq!(
        planner.plan(&loads).unwrap().phy2log().unwrap(),
        phy2log_of_fresh_planner(&options, &loads)
    );
}

/// How many plans in a row may finish before their watcher cancels them before a mid-plan
/// cancel test fails. A watcher the scheduler starves until the plan has finished is no defect:
/// that attempt is repeated (its plan must be complete and exact), as in the C tests.
const ATTEMPTS: usize = 5;

/// Plans with `control` attached while a watcher thread, which shares it by reference, cancels
/// it once the first layer is done (or once the plan has returned).
fn plan_cancelled_by_a_watcher(
    planner: &mut Planner,
    control: &PlanControl,
    loads: &[f64],
) -> eplb::Result<Placement> {
    planner.set_control(Some(control)).unwrap();
    let planning_done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !planning_done.load(Ordering::Acquire) && control.progress().steps_done == 0 {
                std::thread::yield_now();
            }
            control.cancel();
        });
        let result = planner.plan(loads);
        planning_done.store(true, Ordering::Release);
        result
    })
}

/// Cancels from a watcher thread once the first layer is done; the plan (600 layers) is long
/// enough that it is normally still running then.
fn cancel_mid_plan(num_threads: u32) {
    let options = PlannerOptions {
        num_threads,
        ..shape(600, 256, 288, 4, 32)
    };
    let loads = skewed_loads(&options, 3);
    let fresh = phy2log_of_fresh_planner(&options, &loads);
    let mut planner = Planner::new(&options).unwrap();
    let mut attempt = 1;
    let (control, error) = loop {
        let control = PlanControl::new().unwrap();
        match plan_cancelled_by_a_watcher(&mut planner, &control, &loads) {
            Err(error) => break (control, error),
            Ok(placement) => {
                // Finished before the watcher cancelled it: complete and exact.
                let progress = control.progress();
                assert!(progress.cancelled);
                assert_eq!((progress.steps_done, progress.steps_total), (600, 600));
                assert_eq!(placement.phy2log().unwrap(), fresh);
                assert!(
                    attempt < ATTEMPTS,
                    "all {ATTEMPTS} plans finished before the watcher could cancel them"
                );
                attempt += 1;
            }
        }
    };
    assert_eq!(error.status, Status::Cancelled, "{error}");
    assert_eq!(error.status.to_string(), "cancelled");
    let progress = control.progress();
    assert!(progress.cancelled);
    assert_eq!(progress.steps_total, 600);
    assert!(
        progress.steps_done >= 1 && progress.steps_done < progress.steps_total,
        "{progress:?}"
    );

    // The planner survived: with a fresh control it plans as a fresh planner does.
    let next = PlanControl::new().unwrap();
    planner.set_control(Some(&next)).unwrap();
    assert_eq!(planner.plan(&loads).unwrap().phy2log().unwrap(), fresh);
    let progress = next.progress();
    assert_eq!((progress.steps_done, progress.steps_total), (600, 600));
    assert!(!progress.cancelled);
}

#[test]
fn a_thread_cancels_a_plan_in_progress() {
    cancel_mid_plan(1);
}

#[test]
fn a_thread_cancels_a_plan_in_progress_on_several_threads() {
    cancel_mid_plan(3);
}

#[test]
fn one_control_in_an_arc_stops_every_planner_it_is_attached_to() {
    let options = shape(4, 16, 16, 1, 4);
    let loads = Arc::new(skewed_loads(&options, 4));
    let control = Arc::new(PlanControl::new().unwrap());
    let mut first = Planner::new(&options).unwrap();
    let mut second = Planner::new(&PlannerOptions {
        algorithm: eplb::Algorithm::Deepseek,
        ..options.clone()
    })
    .unwrap();
    first.set_control(Some(&control)).unwrap();
    second.set_control(Some(&control)).unwrap();
    first.plan(&loads).unwrap();
    second.plan(&loads).unwrap();
    assert_eq!(control.progress().steps_done, 8);

    // Cancelled from another thread that owns a clone of the Arc; the planners move to their
    // own threads and stop there.
    let canceller = Arc::clone(&control);
    std::thread::spawn(move || canceller.cancel())
        .join()
        .unwrap();
    let planners: Vec<_> = [first, second]
        .into_iter()
        .map(|mut planner| {
            let loads = Arc::clone(&loads);
            std::thread::spawn(move || planner.plan(&loads).err().unwrap().status)
        })
        .collect();
    for planner in planners {
        assert_eq!(planner.join().unwrap(), Status::Cancelled);
    }
    assert_eq!(control.progress().steps_total, 8);
}

#[test]
fn a_control_dropped_while_attached_still_works() {
    let options = shape(4, 16, 16, 1, 4);
    let loads = skewed_loads(&options, 5);
    let expected = phy2log_of_fresh_planner(&options, &loads);

    // Not cancelled: the planner keeps the control alive and plans as before.
    let mut planner = Planner::new(&options).unwrap();
    let control = PlanControl::new().unwrap();
    planner.set_control(Some(&control)).unwrap();
    drop(control);
    assert_eq!(planner.plan(&loads).unwrap().phy2log().unwrap(), expected);
    assert_eq!(planner.plan(&loads).unwrap().phy2log().unwrap(), expected);
    planner.set_control(None).unwrap(); // releases the planner's reference

    // Cancelled, then dropped: the planner's reference still says cancelled.
    let mut planner = Planner::new(&options).unwrap();
    let control = PlanControl::new().unwrap();
    planner.set_control(Some(&control)).unwrap();
    control.cancel();
    drop(control);
    let error = planner.plan(&loads).err().unwrap();
    assert_eq!(error.status, Status::Cancelled, "{error}");
    // Replacing it with a new control releases the old one; the planner plans again.
    let fresh = PlanControl::new().unwrap();
    planner.set_control(Some(&fresh)).unwrap();
    assert_eq!(planner.plan(&loads).unwrap().phy2log().unwrap(), expected);
    assert_eq!(fresh.progress().steps_done, 4);
    // The planner may also go first: the control outlives it.
    drop(planner);
    assert_eq!(fresh.progress().steps_done, 4);
}
