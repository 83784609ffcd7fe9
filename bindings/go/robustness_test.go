package eplb

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"eplb/internal/capi"
)

// A layer past 2^32 used to reach C truncated to its low 32 bits and record into another layer.
func TestTrackerLayerRange(t *testing.T) {
	tracker, err := NewTracker(TrackerOptions{Layers: 4, LogicalExperts: 12, TopK: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tracker.Close()
	placement := readmePlacement(t) // 2 layers: only for RecordPhysical's shape, never reached
	defer placement.Close()
	ids := []int32{0, 1, 2, 3}
	for _, layer := range []int{1<<32 + 3, -1, 4, -1 << 40} {
		if err := tracker.Record(layer, ids); StatusOf(err) != StatusInvalidArgument || !strings.Contains(err.Error(), "layer") {
			t.Errorf("Record(%d): %v, want invalid argument naming layer", layer, err)
		}
		if err := tracker.RecordPhysical(placement, layer, ids); StatusOf(err) != StatusInvalidArgument ||
			!strings.Contains(err.Error(), "layer") {
			t.Errorf("RecordPhysical(%d): %v, want invalid argument naming layer", layer, err)
		}
		if out, err := tracker.Coactivation(layer); StatusOf(err) != StatusInvalidArgument || out != nil {
			t.Errorf("Coactivation(%d): %v %v, want nil and invalid argument", layer, out, err)
		}
	}
	loads, err := tracker.Loads()
	if err != nil {
		t.Fatal(err)
	}
	for i, load := range loads {
		if load != 0 {
			t.Fatalf("a refused record changed the loads: entry %d is %v", i, load)
		}
	}
	if err := tracker.Record(3, ids); err != nil {
		t.Fatal(err)
	}
}

// handleTypes are the types whose methods TestNoPanicOnNilOrZeroHandles calls.
var handleTypes = []reflect.Type{reflect.TypeOf(&Planner{}), reflect.TypeOf(&Placement{}),
	reflect.TypeOf(&Tracker{}), reflect.TypeOf(&Migration{}), reflect.TypeOf(&Snapshot{}),
	reflect.TypeOf(&SplitWorkspace{}), reflect.TypeOf(&Workload{}), reflect.TypeOf(&PlanControl{})}

// zeroArgs returns the zero value of each parameter of method (receiver excluded), with the
// handle parameters replaced by handle(type) and a context.Context by context.Background() (a
// nil one is checked in TestPlanContextArguments).
func zeroArgs(method reflect.Type, handle func(reflect.Type) reflect.Value) []reflect.Value {
	args := make([]reflect.Value, method.NumIn())
	for i := range args {
		args[i] = reflect.Zero(method.In(i))
		if method.In(i) == reflect.TypeOf((*context.Context)(nil)).Elem() {
			args[i] = reflect.ValueOf(context.Background())
		}
		for _, h := range handleTypes {
			if method.In(i) == h {
				args[i] = handle(h)
			}
		}
	}
	return args
}

// callMethod calls name on receiver and returns the panic, or its last result (an error).
func callMethod(receiver reflect.Value, name string, handle func(reflect.Type) reflect.Value) (panicked any, err error) {
	defer func() { panicked = recover() }()
	method := receiver.MethodByName(name)
	results := method.Call(zeroArgs(method.Type(), handle))
	if last := results[len(results)-1].Interface(); last != nil {
		return nil, last.(error)
	}
	return nil, nil
}

// Every exported method of every handle, on a nil and a zero-value receiver and with nil and
// zero-value handle arguments, returns an error instead of panicking: ErrClosed for a zero-value
// (never created) handle, an invalid argument for a nil one. Close returns nil (it is a no-op, as
// for a closed handle).
func TestNoPanicOnNilOrZeroHandles(t *testing.T) {
	nilHandle := func(h reflect.Type) reflect.Value { return reflect.Zero(h) }
	zeroHandle := func(h reflect.Type) reflect.Value { return reflect.New(h.Elem()) }
	check := func(what string, panicked any, err error, close bool) {
		t.Helper()
		switch {
		case panicked != nil:
			t.Errorf("%s panicked: %v", what, panicked)
		case close && err != nil:
			t.Errorf("%s: %v, want nil", what, err)
		case !close && err != ErrClosed && StatusOf(err) != StatusInvalidArgument:
			t.Errorf("%s: %v, want ErrClosed or invalid argument", what, err)
		}
	}
	for _, typ := range handleTypes {
		for i := 0; i < typ.NumMethod(); i++ {
			name := typ.Method(i).Name
			for receiverKind, receiver := range map[string]reflect.Value{"nil": nilHandle(typ), "zero": zeroHandle(typ)} {
				for argKind, handle := range map[string]func(reflect.Type) reflect.Value{"nil": nilHandle, "zero": zeroHandle} {
					what := fmt.Sprintf("%s %s.%s (%s handle arguments)", receiverKind, typ.Elem().Name(), name, argKind)
					panicked, err := callMethod(receiver, name, handle)
					check(what, panicked, err, name == "Close")
					if panicked != nil || name == "Close" {
						continue
					}
					// A zero value was never created: whatever the arguments, it is closed.
					if receiverKind == "zero" && err != ErrClosed && !(argKind == "nil" && StatusOf(err) == StatusInvalidArgument) {
						t.Errorf("%s: %v, want ErrClosed", what, err)
					}
					// A nil receiver is a nil argument (a nil *SplitWorkspace is valid).
					if receiverKind == "nil" && typ != reflect.TypeOf(&SplitWorkspace{}) &&
						(StatusOf(err) != StatusInvalidArgument || !strings.Contains(err.Error(), "is nil")) {
						t.Errorf("%s: %v, want invalid argument naming the nil receiver", what, err)
					}
				}
			}
		}
	}

	// Live receivers with nil and zero-value handle arguments.
	planner, _ := NewPlanner(readme("balanced"))
	defer planner.Close()
	placement := readmePlacement(t)
	defer placement.Close()
	tracker, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 2})
	defer tracker.Close()
	workspace, _ := NewSplitWorkspace()
	defer workspace.Close()
	zeroTracker, zeroPlacement := &Tracker{}, &Placement{}
	opts := DefaultMigrationOptions()
	for name, call := range map[string]func() error{
		"PlanTracked(nil)":    func() error { _, err := planner.PlanTracked(nil, nil); return err },
		"PlanTracked(zero)":   func() error { _, err := planner.PlanTracked(nil, zeroTracker); return err },
		"SetControl(zero)":    func() error { return planner.SetControl(&PlanControl{}) },
		"Merge(nil)":          func() error { return tracker.Merge(nil) },
		"Merge(zero)":         func() error { return tracker.Merge(zeroTracker) },
		"zero.Merge(zero)":    func() error { return zeroTracker.Merge(&Tracker{}) },
		"RecordPhysical(nil)": func() error { return tracker.RecordPhysical(nil, 0, []int32{0, 1}) },
		"RecordPhysical(zero)": func() error {
			return tracker.RecordPhysical(zeroPlacement, 0, []int32{0, 1})
		},
		"SaveWith(zero tracker)": func() error {
			return placement.SaveWith(filepath.Join(t.TempDir(), "z.eplb"), SnapshotOptions{Tracker: zeroTracker})
		},
		"SaveToBufferWith(zero tracker)": func() error {
			_, err := placement.SaveToBufferWith(SnapshotOptions{Tracker: zeroTracker})
			return err
		},
		"PlanMigration(nil, p)":     func() error { _, err := PlanMigration(nil, placement, nil, opts); return err },
		"PlanMigration(p, nil)":     func() error { _, err := PlanMigration(placement, nil, nil, opts); return err },
		"PlanMigration(zero, p)":    func() error { _, err := PlanMigration(zeroPlacement, placement, nil, opts); return err },
		"PlanMigration(p, zero)":    func() error { _, err := PlanMigration(placement, zeroPlacement, nil, opts); return err },
		"PlanMigration(zero, zero)": func() error { _, err := PlanMigration(zeroPlacement, &Placement{}, nil, opts); return err },
		"Solve(nil)":                func() error { _, _, err := workspace.Solve(nil, 0, nil, nil, nil); return err },
		"Solve(zero)":               func() error { _, _, err := workspace.Solve(zeroPlacement, 0, nil, nil, nil); return err },
		"SolveByNode(nil)":          func() error { _, _, _, err := workspace.SolveByNode(nil, 0, nil, nil, nil, 0); return err },
		"SolveByNode(zero)":         func() error { _, _, _, err := workspace.SolveByNode(zeroPlacement, 0, nil, nil, nil, 0); return err },
		"PlanNear(nil)": func() error {
			_, _, err := planner.PlanNear(weight, nil, DefaultNearOptions())
			return err
		},
		"PlanNear(zero)": func() error {
			_, _, err := planner.PlanNear(weight, zeroPlacement, DefaultNearOptions())
			return err
		},
	} {
		panicked, err := func() (panicked any, err error) {
			defer func() { panicked = recover() }()
			return nil, call()
		}()
		check(name, panicked, err, false)
		switch {
		case panicked != nil:
		case strings.Contains(name, "nil") && !strings.Contains(fmt.Sprint(err), "is nil"):
			t.Errorf("%s: %v, want an invalid argument naming the nil argument", name, err)
		case !strings.Contains(name, "nil") && err != ErrClosed:
			t.Errorf("%s: %v, want ErrClosed", name, err)
		}
	}
}

// A failed call returns a nil slice, not a zero-filled one that looks like data.
func TestFailedCallsReturnNilSlices(t *testing.T) {
	placement := readmePlacement(t)
	if out, err := placement.GPULoads(weight[:3]); err == nil || out != nil {
		t.Errorf("GPULoads(short loads): %v, %v", out, err)
	}
	tracker, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 2})
	if out, err := tracker.Coactivation(2); err == nil || out != nil {
		t.Errorf("Coactivation(2): %v, %v", out, err)
	}
	old := readmePlacement(t)
	m, err := PlanMigration(old, placement, nil, DefaultMigrationOptions())
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	placement.Close()
	tracker.Close()
	m.Close()
	for name, call := range map[string]func() (any, error){
		"Phy2Log":       func() (any, error) { return placement.Phy2Log() },
		"ReplicaCounts": func() (any, error) { return placement.ReplicaCounts() },
		"Log2Phy":       func() (any, error) { return placement.Log2Phy() },
		"GPULoads":      func() (any, error) { return placement.GPULoads(weight) },
		"Coactivation":  func() (any, error) { return tracker.Coactivation(0) },
		"Loads":         func() (any, error) { return tracker.Loads() },
		"Samples":       func() (any, error) { return tracker.Samples(0) },
		"GPUMap":        func() (any, error) { return m.GPUMap() },
		"Transfers":     func() (any, error) { return m.Transfers(AllSteps) },
	} {
		out, err := call()
		if err != ErrClosed || !reflect.ValueOf(out).IsNil() {
			t.Errorf("%s after Close: %v, %v; want nil, ErrClosed", name, out, err)
		}
	}
	if p, label, err := LoadSnapshot(filepath.Join(t.TempDir(), "none.eplb")); err == nil || p != nil || label != "" {
		t.Errorf("LoadSnapshot of nothing: %v %q %v", p, label, err)
	}
}

// C strings end at the first NUL: a string argument holding one is refused, naming the argument,
// instead of being cut there.
func TestStringsWithNUL(t *testing.T) {
	dir := t.TempDir()
	placement := readmePlacement(t)
	defer placement.Close()
	tracker, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 2})
	defer tracker.Close()
	good := filepath.Join(dir, "good.eplb")
	if err := placement.Save(good, weight, "good"); err != nil {
		t.Fatal(err)
	}
	withNUL := func(s string) string { return s + "\x00junk" }
	cut := filepath.Join(dir, "a.eplb")
	for _, c := range []struct {
		argument string
		call     func() error
	}{
		{"name", func() error { _, err := AlgorithmID(withNUL("balanced")); return err }},
		{"Algorithm", func() error { _, err := NewPlanner(readme(withNUL("balanced"))); return err }},
		{"path", func() error { return placement.Save(withNUL(cut), weight, "") }},
		{"label", func() error { return placement.Save(cut, weight, withNUL("x")) }},
		{"path", func() error { _, _, err := LoadSnapshot(withNUL(good)); return err }},
		{"path", func() error { _, err := InspectSnapshot(withNUL(good)); return err }},
		{"path", func() error { _, err := OpenSnapshot(withNUL(good)); return err }},
		{"path", func() error { return tracker.SaveStatistics(withNUL(cut), "") }},
		{"label", func() error { return tracker.SaveStatistics(cut, withNUL("x")) }},
		{"label", func() error { _, err := tracker.StatisticsToBuffer(withNUL("x")); return err }},
		{"label", func() error { _, err := placement.SaveToBuffer(nil, withNUL("x")); return err }},
		{"path", func() error { return placement.SaveWith(withNUL(cut), SnapshotOptions{Tracker: tracker}) }},
		{"label", func() error { return placement.SaveWith(cut, SnapshotOptions{Label: withNUL("x")}) }},
		{"label", func() error {
			_, err := placement.SaveToBufferWith(SnapshotOptions{Label: withNUL("x"), Tracker: tracker})
			return err
		}},
	} {
		if err := c.call(); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), c.argument+" ") ||
			!strings.Contains(err.Error(), "NUL") {
			t.Errorf("%s with a NUL: %v, want invalid argument naming %s", c.argument, err, c.argument)
		}
	}
	if _, err := os.Stat(cut); !os.IsNotExist(err) {
		t.Errorf("a path with a NUL wrote the file cut at the NUL: %v", err)
	}
	// JSON goes to C with its length, but the C parser stops at a NUL (never valid in JSON text).
	sglang, err := placement.SGLangJSON(0)
	if err != nil {
		t.Fatal(err)
	}
	vllm, err := placement.VLLMAscendJSON()
	if err != nil {
		t.Fatal(err)
	}
	loadsJSON := []byte(`{"logical_count": [[1, 2], [3, 4]]}`)
	if _, _, _, err := LoadsFromSGLangJSON(loadsJSON); err != nil {
		t.Fatal(err)
	}
	junk := func(text []byte) []byte { return append(append([]byte(nil), text...), 0, '{') }
	for name, call := range map[string]func() error{
		"PlacementFromSGLangJSON":     func() error { _, err := PlacementFromSGLangJSON(junk(sglang), 12, 2, 8, 0); return err },
		"PlacementFromVLLMAscendJSON": func() error { _, err := PlacementFromVLLMAscendJSON(junk(vllm), 12, 2); return err },
		"LoadsFromSGLangJSON":         func() error { _, _, _, err := LoadsFromSGLangJSON(junk(loadsJSON)); return err },
	} {
		if err := call(); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "json") {
			t.Errorf("%s of JSON with a NUL: %v, want invalid argument naming json", name, err)
		}
	}
}

// errors.Is matches an *Error against the sentinel of its status, wrapped or not; Status names
// the statuses as eplb_status_string does.
func TestErrorsIs(t *testing.T) {
	_, _, ioErr := LoadSnapshot(filepath.Join(t.TempDir(), "none.eplb"))
	_, argErr := AlgorithmID("nope")        // from C
	_, goErr := (*Placement)(nil).Phy2Log() // from the Go-side checks
	corrupt, corruptErr := SnapshotFromBuffer([]byte("EPLB garbage"))
	if corrupt != nil {
		t.Fatal("garbage accepted")
	}
	for _, c := range []struct {
		err, sentinel error
	}{{ioErr, ErrIO}, {argErr, ErrInvalidArgument}, {goErr, ErrInvalidArgument},
		{fmt.Errorf("wrapped: %w", argErr), ErrInvalidArgument}} {
		if !errors.Is(c.err, c.sentinel) {
			t.Errorf("errors.Is(%v, %v) is false", c.err, c.sentinel)
		}
		if errors.Is(c.err, ErrCorrupt) || errors.Is(c.err, ErrClosed) {
			t.Errorf("%v matches another status", c.err)
		}
		var e *Error
		if !errors.As(c.err, &e) || e.Message == "" {
			t.Errorf("%v is not an *Error with a message", c.err)
		}
	}
	if !errors.Is(corruptErr, ErrCorrupt) && !errors.Is(corruptErr, ErrTruncated) {
		t.Errorf("garbage: %v", corruptErr)
	}
	if errors.Is(ErrInvalidArgument, ErrIO) || !errors.Is(ErrIO, ErrIO) || StatusOf(ErrIO) != StatusIO {
		t.Error("sentinels")
	}
	if got := (&Error{Status: StatusIO}).Error(); got != "eplb: input/output error" {
		t.Errorf("Error() without a message = %q", got)
	}
	if got := (&Error{Status: StatusIO, Message: "x: no such file"}).Error(); got != "eplb: x: no such file" {
		t.Errorf("Error() with a message = %q", got)
	}
	for status, value := range map[int]int{StatusOK: capi.EPLB_OK, StatusInvalidArgument: capi.EPLB_ERR_INVALID_ARGUMENT,
		StatusOutOfMemory: capi.EPLB_ERR_OUT_OF_MEMORY, StatusBufferTooSmall: capi.EPLB_ERR_BUFFER_TOO_SMALL,
		StatusInternal: capi.EPLB_ERR_INTERNAL, StatusIO: capi.EPLB_ERR_IO, StatusCorrupt: capi.EPLB_ERR_CORRUPT,
		StatusTruncated: capi.EPLB_ERR_TRUNCATED, StatusUnsupportedVersion: capi.EPLB_ERR_UNSUPPORTED_VERSION,
		StatusNoDevice: capi.EPLB_ERR_NO_DEVICE, StatusDevice: capi.EPLB_ERR_DEVICE,
		StatusNoNccl: capi.EPLB_ERR_NO_NCCL, StatusNccl: capi.EPLB_ERR_NCCL, StatusCancelled: capi.EPLB_ERR_CANCELLED} {
		if status != value {
			t.Errorf("status constant %d != header value %d", status, value)
		}
	}
	if Status(StatusNccl).String() != "NCCL error" || Status(99).String() != "unknown status 99" ||
		Status(-1).String() != "unknown status -1" {
		t.Error("Status.String")
	}
	// The names are eplb_status_string's (capi/src/errors.cpp, when the source tree is here).
	source, err := os.ReadFile(filepath.Join("..", "..", "capi", "src", "errors.cpp"))
	if err != nil {
		t.Skip("no capi/src/errors.cpp:", err)
	}
	cases := regexp.MustCompile(`case EPLB_(OK|ERR_[A-Z_]+):\s*return "([^"]*)";`).FindAllStringSubmatch(string(source), -1)
	if len(cases) != len(statusNames) {
		t.Fatalf("errors.cpp names %d statuses, this package %d", len(cases), len(statusNames))
	}
	values := map[string]int{"OK": StatusOK, "ERR_INVALID_ARGUMENT": StatusInvalidArgument,
		"ERR_OUT_OF_MEMORY": StatusOutOfMemory, "ERR_BUFFER_TOO_SMALL": StatusBufferTooSmall,
		"ERR_INTERNAL": StatusInternal, "ERR_IO": StatusIO, "ERR_CORRUPT": StatusCorrupt,
		"ERR_TRUNCATED": StatusTruncated, "ERR_UNSUPPORTED_VERSION": StatusUnsupportedVersion,
		"ERR_NO_DEVICE": StatusNoDevice, "ERR_DEVICE": StatusDevice, "ERR_NO_NCCL": StatusNoNccl,
		"ERR_NCCL": StatusNccl, "ERR_CANCELLED": StatusCancelled}
	for _, c := range cases {
		value, ok := values[c[1]]
		if !ok || Status(value).String() != c[2] {
			t.Errorf("EPLB_%s is %q in C, %q here", c[1], c[2], Status(value))
		}
	}
}

// Every C call's error goes through check (so that it is an *Error of this package): each call
// of a function of the generated package that returns an error is check's argument.
func TestEveryCErrorIsChecked(t *testing.T) {
	fset := token.NewFileSet()
	generated, err := parser.ParseFile(fset, filepath.Join("internal", "capi", "capi.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	fallible := map[string]bool{}
	for _, decl := range generated.Decls {
		if f, ok := decl.(*ast.FuncDecl); ok && f.Recv == nil && f.Type.Results != nil {
			results := f.Type.Results.List
			if last, ok := results[len(results)-1].Type.(*ast.Ident); ok && last.Name == "error" {
				fallible[f.Name.Name] = true
			}
		}
	}
	if !fallible["Eplb_planner_plan"] {
		t.Fatal("no fallible function found in the generated package")
	}
	files, _ := filepath.Glob("*.go")
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked := map[ast.Expr]bool{}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if fun, ok := call.Fun.(*ast.Ident); ok && fun.Name == "check" && len(call.Args) == 1 {
				checked[call.Args[0]] = true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && fallible[sel.Sel.Name] {
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "capi" && !checked[call] {
					t.Errorf("%s: the error of capi.%s is not passed through check", fset.Position(call.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
}
