"""Ctrl-C during a plan: a real SIGINT sent to this process while a plan runs on the main thread
stops the plan at its next layer and raises KeyboardInterrupt; the planner then plans as a new
one does. Oracles: the steps counted by the attached control (the user's, or the planner's
private one), and a new planner's plan of the same loads."""

import _thread
import os
import signal
import threading
import time
import types

import numpy as np
import pytest

import eplb
from eplb import capi

# As test_plan_control.py: 600 layers take a tenth of a second here, so the plan is normally still
# running when the watcher sees its first layer done; a run that finished first is repeated.
SHAPE = dict(num_layers=600, num_logical_experts=256, num_physical_experts=288, num_gpus=32,
             num_nodes=4)
ATTEMPTS = 5


def skewed_loads(layers, experts, seed):
    rng = np.random.default_rng(seed)
    return np.floor(1000.0 * rng.lognormal(0.0, 1.5, size=(layers, experts)))


LOADS = skewed_loads(600, 256, 11)


def attached_progress(planner, attached=None):
    """The progress of the control attached to `planner` (or of `attached`, a control it had):
    the user's, or the private one a planner without a user control keeps for Ctrl-C."""
    native = capi.eplb_plan_progress()
    capi.eplb_plan_control_get_progress(planner._attached if attached is None else attached,
                                        native)
    return eplb.PlanProgress(native.steps_done, native.steps_total, bool(native.cancelled))


def signal_once_started(run, started, signum=signal.SIGINT, handler=None):
    """Calls run() on this (the main) thread while a watcher thread sends this process `signum`
    once started() is true. `handler` (default: Python's Ctrl-C handler, which raises
    KeyboardInterrupt) runs only while run() has not returned, so a signal that comes after a
    plan too fast for the watcher is dropped. Returns run()'s exception, or None."""
    handler = handler or signal.default_int_handler
    armed = [True]  # a list item: clearing it runs no Python function (where a handler could run)

    def on_signal(number, frame):
        if armed[0]:
            handler(number, frame)

    previous = signal.signal(signum, on_signal)
    finished = threading.Event()

    def watch():  # runs while the plan has released the GIL
        while not finished.is_set() and not started():
            time.sleep(0)
        if not finished.is_set():
            os.kill(os.getpid(), signum)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run()
        raised = None
    except BaseException as error:  # KeyboardInterrupt is what the tests expect
        raised = error
    finally:
        armed[0] = False
        finished.set()
        watcher.join()
        time.sleep(0.01)  # a signal the watcher sent late is handled here, disarmed
        signal.signal(signum, previous)
    return raised


def interrupt_a_plan(planner, run, fresh, before_each=None, **kwargs):
    """Sends a signal during run() (after before_each()) until one stops the plan early; a plan
    the signal came too late for must be complete and exact. Returns the exception and the
    progress of the control attached meanwhile."""
    for _ in range(ATTEMPTS):
        if before_each is not None:
            before_each()
        attached = planner._attached
        before = attached_progress(planner)

        def steps_done():  # by this attempt's plan
            # A private control that an interrupt cancelled is replaced when the next plan starts.
            now = planner._attached
            return attached_progress(planner, now).steps_done - (
                before.steps_done if now is attached else 0)

        placement = []
        raised = signal_once_started(lambda: placement.append(run()),
                                     lambda: steps_done() > 0, **kwargs)
        after = attached_progress(planner)
        if planner._attached is not attached:
            before = eplb.PlanProgress(0, 0, False)
        done = after.steps_done - before.steps_done
        total = after.steps_total - before.steps_total
        assert total == 600
        if raised is not None and done < total:
            assert 1 <= done and after.cancelled
            assert not planner._lock.locked()  # the plan returned before the exception came
            return raised, after
        if raised is None:
            assert placement == [fresh]
        assert done == total  # the signal came once the plan was complete
    pytest.fail(f"all {ATTEMPTS} plans finished before the signal could stop them")


@pytest.mark.parametrize("method", ["plan", "plan_windows", "plan_tracked"])
def test_sigint_stops_a_plan_and_the_planner_plans_on(method):
    planner = eplb.Planner(**SHAPE)
    tracker = eplb.Tracker(600, 256, top_k=8)
    run = {"plan": lambda: planner.plan(LOADS),
           "plan_windows": lambda: planner.plan_windows(LOADS[None]),
           "plan_tracked": lambda: planner.plan_tracked(tracker, LOADS)}[method]
    fresh = eplb.Planner(**SHAPE).plan(LOADS)

    raised, _ = interrupt_a_plan(planner, run, fresh)
    assert type(raised) is KeyboardInterrupt  # not CancelledError: the caller pressed Ctrl-C
    assert raised.__context__ is None  # nor chained to the cancelled plan's error
    # The cancelled private control was replaced: the planner plans as a new one does, and the
    # user still sees no control.
    assert planner.control is None
    assert run() == fresh
    assert attached_progress(planner) == (600, 600, False)
    assert not tracker._lock.locked()


def test_sigint_cancels_the_attached_control():
    planner = eplb.Planner(**SHAPE)
    fresh = eplb.Planner(**SHAPE).plan(LOADS)

    def attach_a_new_control():  # each attempt its own: a late signal may have cancelled one
        planner.control = eplb.PlanControl()

    raised, _ = interrupt_a_plan(planner, lambda: planner.plan(LOADS), fresh,
                                 before_each=attach_a_new_control)
    control = planner.control
    assert type(raised) is KeyboardInterrupt
    done, total, cancelled = control.progress
    assert cancelled and 1 <= done < total == 600  # cancelled as control.cancel() would
    # Sticky: the next plan with that control stops before it starts, as after control.cancel().
    with pytest.raises(eplb.CancelledError):
        planner.plan(LOADS)
    assert planner.control is control
    planner.control = None
    assert planner.plan(LOADS) == fresh


class Deadline(Exception):
    pass


def test_an_exception_from_any_signal_handler_stops_the_plan():
    def on_deadline(signum, frame):
        raise Deadline(signum)

    planner = eplb.Planner(**SHAPE)
    fresh = eplb.Planner(**SHAPE).plan(LOADS)
    raised, _ = interrupt_a_plan(planner, lambda: planner.plan(LOADS), fresh,
                                 signum=signal.SIGUSR1, handler=on_deadline)
    assert type(raised) is Deadline and raised.args == (signal.SIGUSR1,)
    assert planner.plan(LOADS) == fresh


def test_a_second_sigint_while_the_plan_stops_keeps_waiting():
    planner = eplb.Planner(**SHAPE)
    fresh = eplb.Planner(**SHAPE).plan(LOADS)
    interrupts = []

    def on_sigint(signum, frame):
        interrupts.append(len(interrupts) + 1)
        raise KeyboardInterrupt(len(interrupts))

    cancel = planner._cancel

    def cancel_and_press_again():  # the second Ctrl-C comes while the plan is being stopped
        cancel()
        if len(interrupts) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    planner._cancel = cancel_and_press_again
    raised, _ = interrupt_a_plan(planner, lambda: planner.plan(LOADS), fresh,
                                 before_each=interrupts.clear, handler=on_sigint)
    assert interrupts == [1, 2]
    # The first interrupt is the one raised, after the plan returned (interrupt_a_plan checked
    # that the lock was free): the second did not cut the wait short.
    assert type(raised) is KeyboardInterrupt and raised.args == (1,)
    stopped = attached_progress(planner)
    time.sleep(0.01)
    assert attached_progress(planner) == stopped  # no plan runs on in the background
    del planner._cancel
    assert planner.plan(LOADS) == fresh


def test_plans_on_the_main_thread_return_what_the_c_planner_returns():
    assert threading.current_thread() is threading.main_thread()
    planner = eplb.Planner(4, 16, 20, 4, num_nodes=2, algorithm="balanced")
    loads = skewed_loads(4, 16, 12)
    direct = eplb.Placement(capi.eplb_planner_plan(planner._h, loads))
    assert planner.plan(loads) == direct
    assert planner.plan_windows(np.stack([loads, loads])) == eplb.Placement(
        capi.eplb_planner_plan_windows(planner._h, np.stack([loads, loads])))
    tracker = eplb.Tracker(4, 16, top_k=2)
    tracker.record(0, [[1, 2], [3, 1]])
    assert planner.plan_tracked(tracker) == eplb.Placement(
        capi.eplb_planner_plan_tracked(planner._h, None, tracker._h))
    tiny = eplb.Planner(1, 16, 16, 4)
    assert tiny.plan(loads[:1]) == eplb.Placement(capi.eplb_planner_plan(tiny._h, loads[:1]))

    # The library's errors reach the caller unchanged, with the worker's traceback.
    affinity = eplb.Planner(4, 16, 20, 4, num_nodes=2, affinity=True)
    with pytest.raises(eplb.InvalidArgumentError) as info:
        affinity.plan(loads)
    with pytest.raises(eplb.InvalidArgumentError) as direct_info:
        capi.eplb_planner_plan(affinity._h, loads)
    assert (info.value.status, info.value.message) == (direct_info.value.status,
                                                       direct_info.value.message)
    assert any(entry.name == "_work" for entry in info.traceback)
    control = eplb.PlanControl()
    control.cancel()
    planner.control = control
    with pytest.raises(eplb.CancelledError):
        planner.plan(loads)
    planner.close()
    with pytest.raises(ValueError, match="closed"):
        planner.plan(loads)


def test_plans_from_other_threads_run_directly(monkeypatch):
    planner = eplb.Planner(4, 16, 20, 4, num_nodes=2)
    loads = skewed_loads(4, 16, 13)
    fresh = eplb.Planner(4, 16, 20, 4, num_nodes=2).plan(loads)
    started = []

    def start(*args):
        started.append(args)
        return _thread.start_new_thread(*args)

    monkeypatch.setattr(eplb, "_thread", types.SimpleNamespace(
        allocate_lock=_thread.allocate_lock, start_new_thread=start))
    results = []
    worker = threading.Thread(target=lambda: results.append(planner.plan(loads)))
    worker.start()
    worker.join()
    assert results == [fresh] and started == []  # no thread of its own
    assert planner.plan(loads) == fresh and len(started) == 1  # the main thread's plan has one


def test_a_plan_runs_on_the_main_thread_when_no_thread_can_start(monkeypatch):
    def refuse(*args):  # what Python 3.12 does in an atexit handler
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(eplb, "_thread", types.SimpleNamespace(
        allocate_lock=_thread.allocate_lock, start_new_thread=refuse))
    planner = eplb.Planner(4, 16, 20, 4, num_nodes=2)
    loads = skewed_loads(4, 16, 14)
    assert planner.plan(loads) == eplb.Planner(4, 16, 20, 4, num_nodes=2).plan(loads)
    with pytest.raises(eplb.InvalidArgumentError):
        planner.plan(np.full((4, 16), -1.0))
