package eplb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"eplb/internal/capi"
)

// longShape plans in about a tenth of a second (600 layers, one thread): long enough to be
// cancelled after its first layer, as the C tests do.
var longShape = PlannerOptions{Layers: 600, LogicalExperts: 256, PhysicalExperts: 288, Nodes: 4, GPUs: 32}

// skewedLoads are lognormal loads, [layers][experts], as the C tests use.
func skewedLoads(o PlannerOptions, seed int64) []float64 {
	rng := rand.New(rand.NewSource(seed))
	loads := make([]float64, int(o.Layers)*int(o.LogicalExperts))
	for i := range loads {
		loads[i] = math.Floor(1000 * math.Exp(1.5*rng.NormFloat64()))
	}
	return loads
}

func newTestPlanner(t *testing.T, o PlannerOptions) *Planner {
	t.Helper()
	planner, err := NewPlanner(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { planner.Close() })
	return planner
}

func newTestControl(t *testing.T) *PlanControl {
	t.Helper()
	control, err := NewPlanControl()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { control.Close() })
	return control
}

func progressOf(t *testing.T, control *PlanControl) PlanProgress {
	t.Helper()
	progress, err := control.Progress()
	if err != nil {
		t.Fatal(err)
	}
	return progress
}

// phy2logOf(t)(planner.Plan(...)) returns the plan's phy2log and closes it.
func phy2logOf(t *testing.T) func(*Placement, error) []int32 {
	return func(placement *Placement, err error) []int32 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer placement.Close()
		out, err := placement.Phy2Log()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// isCancelledBy reports whether err is the cancelled *Error of a plan stopped by a context whose
// Err() is ctxErr: errors.Is holds for both ErrCancelled and ctxErr.
func isCancelledBy(err, ctxErr error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == StatusCancelled && errors.Is(err, ErrCancelled) &&
		errors.Is(err, ctxErr) && StatusOf(err) == StatusCancelled
}

// cancelOnFirstStep calls cancel once control shows a finished step, or once done is closed.
func cancelOnFirstStep(t *testing.T, control *PlanControl, cancel func(), done <-chan struct{}) {
	for {
		select {
		case <-done:
			cancel()
			return
		default:
		}
		progress, err := control.Progress()
		if err != nil {
			t.Error(err)
			cancel()
			return
		}
		if progress.StepsDone >= 1 {
			cancel()
			return
		}
		runtime.Gosched()
	}
}

// attempts is how many plans in a row may finish before their watcher cancels them before a
// mid-plan cancel test fails. A watcher the scheduler starves until the plan has finished is no
// defect: such an attempt is repeated (its plans must be complete and exact), as in the C tests.
const attempts = 5

// settleGoroutines waits until the number of goroutines is back to at most n.
func settleGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNewPlanControlIsNotCancelledAndHasNoSteps(t *testing.T) {
	control := newTestControl(t)
	if got := progressOf(t, control); got != (PlanProgress{}) {
		t.Fatalf("progress of a new control = %+v", got)
	}
	if err := control.Cancel(); err != nil {
		t.Fatal(err)
	}
	if err := control.Cancel(); err != nil { // idempotent
		t.Fatal(err)
	}
	if got := progressOf(t, control); got != (PlanProgress{Cancelled: true}) {
		t.Fatalf("progress of a cancelled control = %+v", got)
	}
	control.Close()
	control.Close()
	if _, err := control.Progress(); err != ErrClosed {
		t.Fatalf("Progress after Close: %v", err)
	}
	if err := control.Cancel(); err != ErrClosed {
		t.Fatalf("Cancel after Close: %v", err)
	}
}

// One step per layer and plan, whether the plan runs with a context or not; an affinity
// PlanTracked on more than one node makes two per layer. A plan refused for its arguments
// announces nothing.
func TestPlanControlCountsOneStepPerLayer(t *testing.T) {
	shape := PlannerOptions{Layers: 7, LogicalExperts: 32, PhysicalExperts: 40, Nodes: 2, GPUs: 8}
	planner := newTestPlanner(t, shape)
	control := newTestControl(t)
	if err := planner.SetControl(control); err != nil {
		t.Fatal(err)
	}
	loads := skewedLoads(shape, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	windows := append(append(append([]float64(nil), loads...), loads...), loads...)
	want := uint64(0)
	for name, plan := range map[string]func() (*Placement, error){
		"Plan":               func() (*Placement, error) { return planner.Plan(loads) },
		"PlanContext":        func() (*Placement, error) { return planner.PlanContext(ctx, loads) },
		"PlanWindows":        func() (*Placement, error) { return planner.PlanWindows(windows, 3) },
		"PlanWindowsContext": func() (*Placement, error) { return planner.PlanWindowsContext(ctx, windows, 3) },
	} {
		phy2logOf(t)(plan())
		want += 7
		if got := progressOf(t, control); got != (PlanProgress{StepsDone: want, StepsTotal: want}) {
			t.Fatalf("after %s: progress %+v, want %d steps", name, got, want)
		}
	}
	bad := append([]float64(nil), loads...)
	bad[3] = -1
	if _, err := planner.PlanContext(ctx, bad); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative load: %v", err)
	}
	if _, err := planner.PlanWindowsContext(ctx, windows, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("zero windows: %v", err)
	}
	if got := progressOf(t, control); got != (PlanProgress{StepsDone: want, StepsTotal: want}) {
		t.Fatalf("after refused plans: progress %+v, want %d steps", got, want)
	}

	// Affinity on four nodes: two passes.
	affinityShape := PlannerOptions{Layers: 3, LogicalExperts: 32, PhysicalExperts: 40, Nodes: 4, GPUs: 8,
		Threads: 2, Affinity: true}
	tracker, err := NewTracker(TrackerOptions{Layers: 3, LogicalExperts: 32, TopK: 4, ReservoirCapacity: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer tracker.Close()
	rng := rand.New(rand.NewSource(5))
	ids := make([]int32, 512*4)
	for layer := 0; layer < 3; layer++ {
		for token := 0; token < 512; token++ {
			base := int32(rng.Intn(8)) * 4 // topics of 4 experts
			for k := int32(0); k < 4; k++ {
				ids[token*4+int(k)] = base + k
			}
		}
		if err := tracker.Record(layer, ids); err != nil {
			t.Fatal(err)
		}
	}
	affine := newTestPlanner(t, affinityShape)
	affinityControl := newTestControl(t)
	if err := affine.SetControl(affinityControl); err != nil {
		t.Fatal(err)
	}
	withoutContext := phy2logOf(t)(affine.PlanTracked(nil, tracker))
	if got := progressOf(t, affinityControl); got != (PlanProgress{StepsDone: 6, StepsTotal: 6}) {
		t.Fatalf("affinity PlanTracked: progress %+v, want 6 steps", got)
	}
	withContext := phy2logOf(t)(affine.PlanTrackedContext(ctx, nil, tracker))
	if got := progressOf(t, affinityControl); got != (PlanProgress{StepsDone: 12, StepsTotal: 12}) {
		t.Fatalf("affinity PlanTrackedContext: progress %+v, want 12 steps", got)
	}
	if !reflect.DeepEqual(withContext, withoutContext) {
		t.Fatal("PlanTrackedContext plans differently from PlanTracked")
	}
}

// A context cancelled mid-plan stops the plan at a layer boundary: the error satisfies both
// errors.Is(err, context.Canceled) and errors.Is(err, ErrCancelled), and the planner then plans
// exactly as a fresh one. The planner's own control counts the cancelled plan's steps but is not
// cancelled itself.
func TestPlanContextCancelsALongPlan(t *testing.T) {
	planner := newTestPlanner(t, longShape)
	loads := skewedLoads(longShape, 3)
	fresh := phy2logOf(t)(newTestPlanner(t, longShape).Plan(loads))
	before := runtime.NumGoroutine()
	var control *PlanControl
	var err error
	for attempt := 1; ; attempt++ {
		control = newTestControl(t)
		if err := planner.SetControl(control); err != nil {
			t.Fatal(err)
		}
		var placement *Placement
		placement, err = planContextCancelledOnFirstStep(t, planner, control, loads)
		if err != nil {
			if placement != nil {
				t.Fatalf("PlanContext returned both a placement and %v", err)
			}
			break
		}
		// Finished before the watcher cancelled it: complete and exact.
		if got := progressOf(t, control); got != (PlanProgress{StepsDone: 600, StepsTotal: 600}) {
			t.Fatalf("progress after a plan that finished: %+v, want 600 of 600 steps", got)
		}
		if !reflect.DeepEqual(phy2logOf(t)(placement, nil), fresh) {
			t.Fatal("a plan that finished before its cancel differs from a fresh planner's")
		}
		if attempt == attempts {
			t.Fatalf("all %d plans finished before the watcher could cancel them", attempts)
		}
	}
	if !isCancelledBy(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PlanContext cancelled mid-plan: %v; want a cancelled error wrapping context.Canceled", err)
	}
	if !strings.HasSuffix(err.Error(), ": context canceled") {
		t.Errorf("message %q does not end with the context's error", err)
	}
	progress := progressOf(t, control)
	if progress.Cancelled || progress.StepsTotal != 600 || progress.StepsDone < 1 || progress.StepsDone >= 600 {
		t.Fatalf("progress after a cancelled plan = %+v, want 1..599 of 600 steps, not cancelled", progress)
	}
	settleGoroutines(t, before)

	// Usable afterwards, with its control still attached, and planning as a fresh planner does.
	if again := phy2logOf(t)(planner.Plan(loads)); !reflect.DeepEqual(again, fresh) {
		t.Fatal("after a cancelled plan the planner plans differently from a fresh one")
	}
	if got := progressOf(t, control); got.StepsTotal != 1200 || got.StepsDone != progress.StepsDone+600 {
		t.Fatalf("the planner's control after the next plan: %+v, want 600 more steps", got)
	}
	settleGoroutines(t, before)
}

// planContextCancelledOnFirstStep runs planner.PlanContext with a context that a watcher
// goroutine cancels once control shows a finished step (or once the plan has returned).
func planContextCancelledOnFirstStep(t *testing.T, planner *Planner, control *PlanControl,
	loads []float64) (*Placement, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		cancelOnFirstStep(t, control, cancel, done)
	}()
	placement, err := planner.PlanContext(ctx, loads)
	close(done)
	watcher.Wait()
	return placement, err
}

// A deadline stops a plan as a cancel does, with context.DeadlineExceeded.
func TestPlanContextDeadline(t *testing.T) {
	shape := longShape
	shape.Layers = 2400 // about half a second: the deadline passes mid-plan
	planner := newTestPlanner(t, shape)
	control := newTestControl(t)
	if err := planner.SetControl(control); err != nil {
		t.Fatal(err)
	}
	loads := skewedLoads(shape, 4)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	placement, err := planner.PlanContext(ctx, loads)
	if placement != nil || !isCancelledBy(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Fatalf("PlanContext past its deadline: %v, %v; want a cancelled error wrapping context.DeadlineExceeded",
			placement, err)
	}
	// Started (all steps announced) or not at all; never finished.
	if progress := progressOf(t, control); progress.StepsDone >= progress.StepsTotal && progress.StepsTotal != 0 {
		t.Fatalf("progress = %+v, want a stopped plan", progress)
	}
	settleGoroutines(t, before)
	small := readme("balanced")
	phy2logOf(t)(newTestPlanner(t, small).PlanContext(context.Background(), weight))
}

// A context already done returns at once, without planning (no steps announced), whatever the
// arguments; the planner stays usable.
func TestPlanContextAlreadyDone(t *testing.T) {
	planner := newTestPlanner(t, readme("balanced"))
	control := newTestControl(t)
	if err := planner.SetControl(control); err != nil {
		t.Fatal(err)
	}
	tracker, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 2})
	defer tracker.Close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, ctx := range []context.Context{cancelled, expired} {
		for name, plan := range map[string]func() (*Placement, error){
			"PlanContext":        func() (*Placement, error) { return planner.PlanContext(ctx, weight) },
			"PlanWindowsContext": func() (*Placement, error) { return planner.PlanWindowsContext(ctx, weight, 1) },
			"PlanTrackedContext": func() (*Placement, error) { return planner.PlanTrackedContext(ctx, nil, tracker) },
			"PlanContext(bad)":   func() (*Placement, error) { return planner.PlanContext(ctx, weight[:3]) },
		} {
			placement, err := plan()
			if placement != nil || !isCancelledBy(err, ctx.Err()) || !strings.Contains(err.Error(), "not started") {
				t.Errorf("%s with a done context (%v): %v, %v", name, ctx.Err(), placement, err)
			}
		}
	}
	if got := progressOf(t, control); got != (PlanProgress{}) {
		t.Fatalf("plans with a done context announced steps: %+v", got)
	}
	phy2logOf(t)(planner.Plan(weight))
}

// A nil context is an invalid argument; a nil or closed planner is reported as for Plan.
func TestPlanContextArguments(t *testing.T) {
	planner := newTestPlanner(t, readme("balanced"))
	if _, err := planner.PlanContext(nil, weight); !errors.Is(err, ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "ctx is nil") {
		t.Fatalf("nil ctx: %v", err)
	}
	if _, err := (*Planner)(nil).PlanContext(context.Background(), weight); !strings.Contains(fmt.Sprint(err), "planner is nil") {
		t.Fatalf("nil planner: %v", err)
	}
	planner.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := planner.PlanContext(ctx, weight); err != ErrClosed {
		t.Fatalf("closed planner: %v", err)
	}
	if err := planner.SetControl(nil); err != ErrClosed {
		t.Fatalf("SetControl on a closed planner: %v", err)
	}
}

// A context plan that panics (none does; a later bug might) leaves the planner as a returning one
// does: the watcher gone, the planner unlocked and its own control attached again, counting the
// next plans and stopping them once cancelled.
func TestPlanContextRestoresTheControlWhenThePlanPanics(t *testing.T) {
	planner := newTestPlanner(t, readme("balanced"))
	control := newTestControl(t)
	if err := planner.SetControl(control); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	func() {
		defer func() {
			if r := recover(); r != "plan panicked" {
				t.Fatalf("recovered %v, want the plan's panic", r)
			}
		}()
		_, _ = planner.planContext(ctx, func(capi.Eplb_planner) (uintptr, error) { panic("plan panicked") })
	}()
	settleGoroutines(t, before)
	phy2logOf(t)(planner.Plan(weight))
	if got := progressOf(t, control); got != (PlanProgress{StepsDone: 2, StepsTotal: 2}) {
		t.Fatalf("the planner's control after a context plan panicked: %+v, want the next plan's 2 steps", got)
	}
	if err := control.Cancel(); err != nil {
		t.Fatal(err)
	}
	if _, err := planner.Plan(weight); !errors.Is(err, ErrCancelled) {
		t.Fatalf("Plan after the planner's control was cancelled: %v", err)
	}
}

// A PlanContext waiting for another goroutine's plan on the same planner gives up when its
// context is done, without waiting for that plan.
func TestPlanContextGivesUpWaitingForThePlanner(t *testing.T) {
	shape := longShape
	shape.Layers = 2400 // about half a second
	planner := newTestPlanner(t, shape)
	control := newTestControl(t)
	if err := planner.SetControl(control); err != nil {
		t.Fatal(err)
	}
	loads := skewedLoads(shape, 5)
	before := runtime.NumGoroutine()
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	firstErr := make(chan error, 1)
	go func() {
		_, err := planner.PlanContext(first, loads)
		firstErr <- err
	}()
	for progressOf(t, control).StepsDone == 0 { // the first plan holds the planner
		runtime.Gosched()
	}
	second, cancelSecond := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelSecond()
	if _, err := planner.PlanContext(second, loads); !isCancelledBy(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "not started") {
		t.Fatalf("PlanContext behind another plan, past its deadline: %v", err)
	}
	select {
	case err := <-firstErr:
		t.Logf("the first plan ended first (%v): the machine is slow", err)
	default:
		cancelFirst()
		if err := <-firstErr; !isCancelledBy(err, context.Canceled) {
			t.Fatalf("first plan: %v", err)
		}
	}
	if got := progressOf(t, control); got.StepsTotal != 2400 {
		t.Fatalf("progress %+v: the second plan announced steps", got)
	}
	settleGoroutines(t, before)
}

// SetControl(nil) detaches: the control sees no more plans, and cancelling it stops none.
func TestSetControlNilDetaches(t *testing.T) {
	planner := newTestPlanner(t, readme("balanced"))
	control := newTestControl(t)
	if err := planner.SetControl(control); err != nil {
		t.Fatal(err)
	}
	phy2logOf(t)(planner.Plan(weight))
	if err := planner.SetControl(nil); err != nil {
		t.Fatal(err)
	}
	if err := planner.SetControl(nil); err != nil { // nothing attached: still fine
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	phy2logOf(t)(planner.Plan(weight))
	phy2logOf(t)(planner.PlanContext(ctx, weight))
	if err := control.Cancel(); err != nil {
		t.Fatal(err)
	}
	phy2logOf(t)(planner.Plan(weight))
	phy2logOf(t)(planner.PlanContext(ctx, weight))
	if got := progressOf(t, control); got != (PlanProgress{StepsDone: 2, StepsTotal: 2, Cancelled: true}) {
		t.Fatalf("a detached control's progress: %+v, want the 2 steps of the plan before", got)
	}
	// Attached again, the cancelled control stops every plan, with or without a context (which
	// is not done, so the error does not wrap one).
	if err := planner.SetControl(control); err != nil {
		t.Fatal(err)
	}
	for name, plan := range map[string]func() (*Placement, error){
		"Plan":        func() (*Placement, error) { return planner.Plan(weight) },
		"PlanContext": func() (*Placement, error) { return planner.PlanContext(ctx, weight) },
	} {
		if placement, err := plan(); placement != nil || !errors.Is(err, ErrCancelled) || errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled control: %v, %v", name, placement, err)
		}
	}
}

// One control shared by two planners: it counts both planners' plans, and Cancel stops the plans
// in progress on both (with or without a context) and every later one.
func TestPlanControlSharedByTwoPlanners(t *testing.T) {
	shape := longShape
	planners := []*Planner{newTestPlanner(t, shape), newTestPlanner(t, shape)}
	loads := skewedLoads(shape, 6)
	fresh := phy2logOf(t)(newTestPlanner(t, shape).Plan(loads))
	before := runtime.NumGoroutine()
	var control *PlanControl
	for attempt := 1; ; attempt++ {
		control = newTestControl(t)
		for _, planner := range planners {
			if err := planner.SetControl(control); err != nil {
				t.Fatal(err)
			}
		}
		phy2logs, errs := planBothCancelledOnFirstStep(t, planners, control, loads)
		finished := 0
		for i, err := range errs {
			if err == nil { // finished before the watcher cancelled it: exact
				finished++
				if !reflect.DeepEqual(phy2logs[i], fresh) {
					t.Fatalf("plan %d finished before the cancel but differs from a fresh planner's", i)
				}
			} else if !errors.Is(err, ErrCancelled) || errors.Is(err, context.Canceled) {
				t.Fatalf("plan %d on a cancelled shared control: %v", i, err)
			}
		}
		if finished == 0 {
			break
		}
		if progress := progressOf(t, control); finished == 2 &&
			progress != (PlanProgress{StepsDone: 1200, StepsTotal: 1200, Cancelled: true}) {
			t.Fatalf("progress after two plans that finished: %+v, want 1200 of 1200 steps", progress)
		}
		if attempt == attempts {
			t.Fatalf("in all %d attempts a plan finished before the watcher could cancel it", attempts)
		}
	}
	progress := progressOf(t, control)
	if !progress.Cancelled || progress.StepsDone < 1 || progress.StepsDone >= progress.StepsTotal ||
		progress.StepsTotal > 1200 {
		t.Fatalf("shared control's progress: %+v", progress)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, planner := range planners {
		if _, err := planner.PlanContext(ctx, loads); !errors.Is(err, ErrCancelled) {
			t.Errorf("a later plan on a cancelled shared control: %v", err)
		}
	}
	if got := progressOf(t, control); got != progress {
		t.Errorf("plans refused before they started changed the progress: %+v, then %+v", progress, got)
	}
	settleGoroutines(t, before)
}

// planBothCancelledOnFirstStep plans loads on both planners at once, the first with Plan and the
// second with PlanContext (its context is never done), while the test goroutine cancels control
// once it shows a finished step (or once both plans have returned). Returns each plan's phy2log
// and error.
func planBothCancelledOnFirstStep(t *testing.T, planners []*Planner, control *PlanControl,
	loads []float64) (phy2logs [][]int32, errs []error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	phy2logs = make([][]int32, len(planners))
	errs = make([]error, len(planners))
	var plans sync.WaitGroup
	for i, planner := range planners {
		plans.Add(1)
		go func(i int, planner *Planner) {
			defer plans.Done()
			var placement *Placement
			if i == 0 {
				placement, errs[i] = planner.Plan(loads)
			} else {
				placement, errs[i] = planner.PlanContext(ctx, loads)
			}
			if errs[i] == nil {
				defer placement.Close()
				phy2logs[i], errs[i] = placement.Phy2Log()
			}
		}(i, planner)
	}
	done := make(chan struct{})
	go func() { plans.Wait(); close(done) }()
	cancelOnFirstStep(t, control, func() {
		if err := control.Cancel(); err != nil {
			t.Error(err)
		}
	}, done)
	<-done
	return phy2logs, errs
}

// Closing a control releases only the caller's handle: the planners it is attached to keep it,
// cancelled or not, also across context plans, until they are closed or attached to another.
func TestPlanControlClosedWhileAttached(t *testing.T) {
	planner := newTestPlanner(t, readme("balanced"))
	other := newTestPlanner(t, readme("deepseek"))
	control, err := NewPlanControl()
	if err != nil {
		t.Fatal(err)
	}
	if err := planner.SetControl(control); err != nil {
		t.Fatal(err)
	}
	if err := other.SetControl(control); err != nil {
		t.Fatal(err)
	}
	if err := control.Cancel(); err != nil {
		t.Fatal(err)
	}
	control.Close()
	if err := planner.SetControl(control); err != ErrClosed {
		t.Fatalf("SetControl(closed control): %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < 2; i++ { // the context plan re-attaches the closed control
		if _, err := planner.PlanContext(ctx, weight); !errors.Is(err, ErrCancelled) {
			t.Fatalf("PlanContext on a planner with a closed, cancelled control: %v", err)
		}
		if _, err := planner.Plan(weight); !errors.Is(err, ErrCancelled) {
			t.Fatalf("Plan on a planner with a closed, cancelled control: %v", err)
		}
	}
	other.Close() // the control is now the first planner's alone
	if _, err := planner.Plan(weight); !errors.Is(err, ErrCancelled) {
		t.Fatalf("Plan after the other planner closed: %v", err)
	}
	fresh := newTestControl(t)
	if err := planner.SetControl(fresh); err != nil { // releases the closed control
		t.Fatal(err)
	}
	phy2logOf(t)(planner.PlanContext(ctx, weight))
	if got := progressOf(t, fresh); got != (PlanProgress{StepsDone: 2, StepsTotal: 2}) {
		t.Fatalf("the new control's progress: %+v", got)
	}
}

// Progress and Cancel race with plans and with each other (run with -race).
func TestPlanControlConcurrentUse(t *testing.T) {
	shape := PlannerOptions{Layers: 60, LogicalExperts: 64, PhysicalExperts: 80, Nodes: 2, GPUs: 8}
	control := newTestControl(t)
	loads := skewedLoads(shape, 7)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			planner, err := NewPlanner(shape)
			if err != nil {
				t.Error(err)
				return
			}
			defer planner.Close()
			if err := planner.SetControl(control); err != nil {
				t.Error(err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i)*time.Millisecond)
			defer cancel()
			for j := 0; j < 5; j++ {
				placement, err := planner.PlanContext(ctx, loads)
				if err != nil && !errors.Is(err, ErrCancelled) {
					t.Error(err)
				}
				placement.Close()
			}
		}(i)
	}
	for i := 0; i < 50; i++ {
		progress := progressOf(t, control)
		if progress.StepsDone > progress.StepsTotal {
			t.Fatalf("progress %+v", progress)
		}
		if i == 25 {
			if err := control.Cancel(); err != nil {
				t.Fatal(err)
			}
		}
		runtime.Gosched()
	}
	wg.Wait()
	if progress := progressOf(t, control); !progress.Cancelled || progress.StepsDone > progress.StepsTotal {
		t.Fatalf("progress %+v", progress)
	}
}
