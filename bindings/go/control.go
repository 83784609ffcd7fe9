package eplb

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"eplb/internal/capi"
)

// PlanProgress is how far the plans that use a PlanControl are, in steps: one per layer and pass
// (PlanNear and an affinity PlanTracked on more than one node make two passes, every other plan
// one). A plan announces its steps when it starts, so the steps of every plan that used the
// control add up; StepsDone <= StepsTotal, equal when every plan finished (a failed or cancelled
// plan leaves a gap).
type PlanProgress struct {
	StepsDone, StepsTotal uint64
	Cancelled             bool // Cancel was called
}

// PlanControl cancels the plans of the planners it is attached to (Planner.SetControl) and
// reports their progress, from any goroutine: a progress bar, an operator's "stop", one deadline
// for several planners. Cancelling is sticky: plans in progress stop at their next layer boundary
// (a layer takes milliseconds; an affinity layer, or a near layer where experts have dozens of
// replicas, up to about a second on one core) and later plans stop before they start, all with an error satisfying errors.Is(err, ErrCancelled);
// the planners stay usable, and new work needs a new control. One control may serve several
// planners, which then stop together. The context variants of the plan methods (PlanContext,
// ...) on a planner it is attached to count their steps in it and stop when it is cancelled too.
// Close releases the caller's handle (its methods then return ErrClosed); the planners it is
// attached to keep using it until they are closed or attached to another. Safe for concurrent
// use.
type PlanControl struct {
	mu        sync.Mutex
	handle    uintptr // the C control; 0 once destroyed
	closed    bool    // Close was called
	planners  int     // planners it is attached to: they re-attach it after a context plan
	cancelled bool
	// calls are the controls of the context plans in progress on those planners: Cancel cancels
	// them and Progress adds their steps, and callsDone and callsTotal the finished ones'.
	calls                 map[*PlanControl]struct{}
	callsDone, callsTotal uint64
}

// NewPlanControl creates a plan control: not cancelled, no steps.
func NewPlanControl() (*PlanControl, error) {
	var handle uintptr
	if err := check(capi.Eplb_plan_control_create(&handle)); err != nil {
		return nil, err
	}
	c := &PlanControl{handle: handle}
	runtime.SetFinalizer(c, (*PlanControl).Close)
	return c, nil
}

// lock locks c for one of its methods; an invalid argument for a nil control, ErrClosed for a
// closed or zero-value one.
func (c *PlanControl) lock() error {
	if c == nil {
		return invalidArgument("plan control is nil")
	}
	c.mu.Lock()
	if c.closed || c.handle == 0 {
		c.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Cancel stops every plan using the control at its next layer boundary, and every later one
// before it starts. Idempotent.
func (c *PlanControl) Cancel() error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if err := check(capi.Eplb_plan_control_cancel(capi.SwigcptrEplb_plan_control(c.handle))); err != nil {
		return err
	}
	runtime.KeepAlive(c)
	c.cancelled = true
	for call := range c.calls {
		if err := call.Cancel(); err != nil {
			return err
		}
	}
	return nil
}

// Progress returns the steps of the plans that used the control, and whether it is cancelled.
// Cheap enough to poll.
func (c *PlanControl) Progress() (PlanProgress, error) {
	if err := c.lock(); err != nil {
		return PlanProgress{}, err
	}
	defer c.mu.Unlock()
	native := capi.NewEplb_plan_progress()
	defer capi.DeleteEplb_plan_progress(native)
	if err := check(capi.Eplb_plan_control_get_progress(capi.SwigcptrEplb_plan_control(c.handle), native)); err != nil {
		return PlanProgress{}, err
	}
	runtime.KeepAlive(c)
	progress := PlanProgress{StepsDone: native.GetSteps_done() + c.callsDone,
		StepsTotal: native.GetSteps_total() + c.callsTotal, Cancelled: native.GetCancelled() != 0}
	for call := range c.calls {
		steps, err := call.Progress()
		if err != nil {
			return PlanProgress{}, err
		}
		progress.StepsDone += steps.StepsDone
		progress.StepsTotal += steps.StepsTotal
	}
	return progress, nil
}

// Close releases the caller's handle: later calls of its methods return ErrClosed, while the
// planners it is attached to keep using it (cancelled or not) until they are closed or attached
// to another control. Safe to call twice, from any goroutine, and on a nil control (it does
// nothing).
func (c *PlanControl) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handle != 0 && !c.closed {
		c.closed = true
		runtime.SetFinalizer(c, nil)
		c.destroyIfUnused()
	}
	return nil
}

// destroyIfUnused destroys the C control once neither the caller nor a planner uses it. c.mu is
// held.
func (c *PlanControl) destroyIfUnused() {
	if c.closed && c.planners == 0 && c.handle != 0 {
		capi.Eplb_plan_control_destroy(capi.SwigcptrEplb_plan_control(c.handle))
		c.handle = 0
	}
}

// attach counts a planner that c is being attached to and returns the C control, which stays
// valid until that planner detaches it.
func (c *PlanControl) attach() (uintptr, error) {
	if err := c.lock(); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	c.planners++
	return c.handle, nil
}

// detach undoes attach.
func (c *PlanControl) detach() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.planners--
	c.destroyIfUnused()
}

// adopt registers call, the control of a context plan on a planner c is attached to, so that
// c.Cancel stops the plan and c.Progress counts it (call is cancelled at once if c is). Returns
// c's C control, for the planner to re-attach after the plan.
func (c *PlanControl) adopt(call *PlanControl) (uintptr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelled {
		if err := call.Cancel(); err != nil {
			return 0, err
		}
	}
	if c.calls == nil {
		c.calls = map[*PlanControl]struct{}{}
	}
	c.calls[call] = struct{}{}
	return c.handle, nil
}

// release undoes adopt once call's plan returned, keeping its steps in c's progress.
func (c *PlanControl) release(call *PlanControl) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.calls, call)
	// call is open (its plan's caller closes it after this), so only an allocation failure of
	// the progress struct could fail here; the steps are then left out.
	if steps, err := call.Progress(); err == nil {
		c.callsDone += steps.StepsDone
		c.callsTotal += steps.StepsTotal
	}
}

// SetControl attaches control to the planner: from now on its plans count their steps in it and
// stop when it is cancelled. A nil control detaches the planner's control. Waits for a plan in
// progress on the planner.
func (p *Planner) SetControl(control *PlanControl) error {
	return p.use(func(raw capi.Eplb_planner) error {
		var handle uintptr
		if control != nil {
			var err error
			if handle, err = control.attach(); err != nil {
				return err
			}
		}
		if err := check(capi.Eplb_planner_set_control(raw, capi.SwigcptrEplb_plan_control(handle))); err != nil {
			if control != nil {
				control.detach()
			}
			return err
		}
		if p.control != nil {
			p.control.detach()
		}
		p.control = control
		return nil
	})
}

// PlanContext is Plan, stopped by ctx: once ctx is done the plan stops at its next layer
// boundary (a layer takes milliseconds; an affinity layer, or a near layer where experts have
// dozens of replicas, up to about a second on one core) and returns an *Error of status StatusCancelled that satisfies both errors.Is(err,
// ErrCancelled) and errors.Is(err, ctx.Err()) (context.Canceled or context.DeadlineExceeded).
// It returns at once, without planning, when ctx is already done or becomes done while the call
// waits for another plan on the planner. A plan that finishes before it notices returns its
// placement. The planner stays usable and plans as before. For the call's duration the planner's
// own PlanControl (SetControl), if any, is replaced by one of the call's and re-attached
// afterwards; it still counts the plan's steps, and its Cancel still stops the plan. A ctx that
// is never done (context.Background()) costs nothing over Plan; with any other the call starts a
// goroutine that watches ctx and ends before the call returns (and, when the call gives up
// waiting for another plan on the planner, one that ends when that plan does).
func (p *Planner) PlanContext(ctx context.Context, loads []float64) (*Placement, error) {
	return p.planContext(ctx, func(raw capi.Eplb_planner) (uintptr, error) {
		var out uintptr
		err := check(capi.Eplb_planner_plan(raw, loads, &out))
		return out, err
	})
}

// PlanWindowsContext is PlanWindows, stopped by ctx as PlanContext is.
func (p *Planner) PlanWindowsContext(ctx context.Context, loads []float64, windows int) (*Placement, error) {
	return p.planContext(ctx, func(raw capi.Eplb_planner) (uintptr, error) {
		if windows <= 0 {
			return 0, invalidArgument("windows (%d) must be positive", windows)
		}
		var out uintptr
		err := check(capi.Eplb_go_planner_plan_windows(raw, loads, int64(windows), &out))
		return out, err
	})
}

// PlanTrackedContext is PlanTracked, stopped by ctx as PlanContext is (an affinity plan on more
// than one node makes two passes over the layers: its steps are two per layer). Once it holds the
// planner it waits for the tracker (which another goroutine's Tracker call may hold) with a plain
// lock: unlike the wait for the planner, that wait does not end when ctx is done; the plan then
// stops once it has the tracker, before its first layer.
func (p *Planner) PlanTrackedContext(ctx context.Context, loads []float64, tracker *Tracker) (*Placement, error) {
	if tracker == nil {
		return nil, invalidArgument("tracker is nil")
	}
	return p.planContext(ctx, func(raw capi.Eplb_planner) (uintptr, error) {
		var out uintptr
		err := tracker.use(func(rawTracker capi.Eplb_tracker) error {
			return check(capi.Eplb_planner_plan_tracked(raw, optional(loads), rawTracker, &out))
		})
		return out, err
	})
}

// PlanNearContext is PlanNear, stopped by ctx as PlanContext is (its steps are two per layer).
// Once it holds the planner it waits for current's read lock (held against Close only) with a
// plain lock, as PlanTrackedContext waits for its tracker.
func (p *Planner) PlanNearContext(ctx context.Context, loads []float64, current *Placement,
	options NearOptions) (*Placement, NearReport, error) {
	if current == nil {
		return nil, NearReport{}, invalidArgument("current is nil")
	}
	var report NearReport
	placement, err := p.planContext(ctx, func(raw capi.Eplb_planner) (uintptr, error) {
		nativeOptions := capi.NewEplb_plan_near_options()
		defer capi.DeleteEplb_plan_near_options(nativeOptions)
		capi.Eplb_plan_near_options_init(nativeOptions)
		nativeOptions.SetMin_balance(options.MinBalance)
		nativeReport := capi.NewEplb_plan_near_report()
		defer capi.DeleteEplb_plan_near_report(nativeReport)
		var out uintptr
		err := current.use(func(rawCurrent capi.Eplb_placement) error {
			return check(capi.Eplb_planner_plan_near(raw, loads, rawCurrent, nativeOptions, &out, nativeReport))
		})
		if err == nil {
			report = NearReport{LayersKept: int(nativeReport.GetLayers_kept()),
				LayersRebalanced:      int(nativeReport.GetLayers_rebalanced()),
				LayersReplanned:       int(nativeReport.GetLayers_replanned()),
				LayersPartlyReplanned: int(nativeReport.GetLayers_partly_replanned())}
		}
		return out, err
	})
	if err != nil {
		return nil, NearReport{}, err
	}
	return placement, report, nil
}

// planContext runs plan (a C plan call returning the new placement's handle) on the planner
// under its mutex, stopped by ctx (see PlanContext).
func (p *Planner) planContext(ctx context.Context, plan func(capi.Eplb_planner) (uintptr, error)) (*Placement, error) {
	if p == nil {
		return nil, invalidArgument("planner is nil")
	}
	if ctx == nil {
		return nil, invalidArgument("ctx is nil")
	}
	if err := ctx.Err(); err != nil {
		return nil, notStarted(err)
	}
	out, err := func() (uintptr, error) {
		if err := p.lockContext(ctx); err != nil {
			return 0, err
		}
		defer p.mu.Unlock()
		if p.handle == 0 {
			return 0, ErrClosed
		}
		raw := capi.SwigcptrEplb_planner(p.handle)
		defer runtime.KeepAlive(p)
		if ctx.Done() == nil { // never cancelled: the planner's own control, if any, sees the plan
			return plan(raw)
		}
		return p.planWatched(ctx, raw, plan)
	}()
	if err != nil {
		return nil, err
	}
	return newPlacement(out)
}

// lockContext locks the planner's mutex, or gives up when ctx is done first (another
// goroutine's plan may hold it for seconds).
func (p *Planner) lockContext(ctx context.Context) error {
	if p.mu.TryLock() {
		return nil
	}
	if ctx.Done() == nil {
		p.mu.Lock()
		return nil
	}
	handoff := make(chan struct{})
	abandon := make(chan struct{})
	go func() {
		p.mu.Lock()
		select {
		case handoff <- struct{}{}: // the caller holds the mutex now
		case <-abandon:
			p.mu.Unlock()
		}
	}()
	select {
	case <-handoff:
		return nil
	case <-ctx.Done():
		close(abandon)
		return notStarted(ctx.Err())
	}
}

// planWatched runs plan with a control of the call's own attached to the planner, which a
// goroutine cancels once ctx is done; the planner's control, if any, adopts it for the call and is
// re-attached afterwards, also when plan panics. p.mu is held.
func (p *Planner) planWatched(ctx context.Context, raw capi.Eplb_planner,
	plan func(capi.Eplb_planner) (uintptr, error)) (out uintptr, err error) {
	if err := ctx.Err(); err != nil {
		return 0, notStarted(err)
	}
	call, err := NewPlanControl()
	if err != nil {
		return 0, err
	}
	defer call.Close()
	var restore uintptr // the planner's own control, or 0 for none
	if p.control != nil {
		if restore, err = p.control.adopt(call); err != nil {
			return 0, err
		}
		defer p.control.release(call)
	}
	if err := check(capi.Eplb_planner_set_control(raw, capi.SwigcptrEplb_plan_control(call.handle))); err != nil {
		return 0, err
	}
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			_ = call.Cancel() // cannot fail: call stays open until this goroutine has returned
		case <-stop:
		}
	}()
	// Deferred, so that however plan ends (a panic included) the watcher is gone before call is
	// closed, and the planner has its own control back instead of call's.
	defer func() {
		close(stop)
		<-stopped
		restoreErr := check(capi.Eplb_planner_set_control(raw, capi.SwigcptrEplb_plan_control(restore)))
		if restoreErr != nil && err == nil {
			capi.Eplb_placement_destroy(capi.SwigcptrEplb_placement(out))
			out, err = 0, restoreErr
		}
	}()
	out, err = plan(raw)
	var e *Error
	if errors.As(err, &e) && e.Status == StatusCancelled {
		if ctxErr := ctx.Err(); ctxErr != nil {
			e.Message += ": " + ctxErr.Error()
			e.cause = ctxErr
		}
	}
	return out, err
}

// notStarted is the error of a plan whose context was done before it started.
func notStarted(ctxErr error) error {
	return &Error{Status: StatusCancelled, Message: "the plan was not started: " + ctxErr.Error(), cause: ctxErr}
}
