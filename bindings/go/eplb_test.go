package eplb

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"eplb/internal/capi"
)

// deepseek-ai/EPLB README example and the reference's output.
var (
	weight = []float64{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86,
		20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27}
	wantPhy2Log = []int32{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1,
		7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1}
)

func readme(algorithm string) PlannerOptions {
	return PlannerOptions{Algorithm: algorithm, Layers: 2, LogicalExperts: 12, PhysicalExperts: 16,
		Groups: 4, Nodes: 2, GPUs: 8}
}

func TestDeepseekReadmeExample(t *testing.T) {
	if err := CheckVersion(); err != nil {
		t.Fatal(err)
	}
	planner, err := NewPlanner(readme("deepseek"))
	if err != nil {
		t.Fatal(err)
	}
	defer planner.Close()
	placement, err := planner.Plan(weight)
	if err != nil {
		t.Fatal(err)
	}
	defer placement.Close()
	got, err := placement.Phy2Log()
	if err != nil || !reflect.DeepEqual(got, wantPhy2Log) {
		t.Fatalf("phy2log = %v, %v; want %v", got, err, wantPhy2Log)
	}
	counts, _ := placement.ReplicaCounts()
	for layer := 0; layer < 2; layer++ { // counts recomputed from phy2log
		for expert := 0; expert < 12; expert++ {
			n := 0
			for _, e := range wantPhy2Log[layer*16 : (layer+1)*16] {
				if int(e) == expert {
					n++
				}
			}
			if int(counts[layer*12+expert]) != n {
				t.Fatalf("count of layer %d expert %d = %d, want %d", layer, expert, counts[layer*12+expert], n)
			}
		}
	}
}

func TestErrorsCarryStatusAndMessage(t *testing.T) {
	for status, value := range map[int]int{StatusInvalidArgument: capi.EPLB_ERR_INVALID_ARGUMENT,
		StatusIO: capi.EPLB_ERR_IO, StatusCorrupt: capi.EPLB_ERR_CORRUPT,
		StatusUnsupportedVersion: capi.EPLB_ERR_UNSUPPORTED_VERSION} {
		if status != value {
			t.Fatalf("status constant %d != header value %d", status, value)
		}
	}
	options := readme("balanced")
	options.PhysicalExperts = 15
	_, err := NewPlanner(options)
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusInvalidArgument || !strings.Contains(e.Message, "num_physical_experts (15)") {
		t.Fatalf("err = %#v", err)
	}
	planner, _ := NewPlanner(readme("balanced"))
	defer planner.Close()
	bad := append([]float64(nil), weight...)
	bad[5] = -1
	if _, err := planner.Plan(bad); StatusOf(err) != StatusInvalidArgument || !strings.Contains(err.Error(), "-1") {
		t.Fatalf("negative load: %v", err)
	}
	if _, err := planner.Plan(weight[:3]); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("short loads: %v", err)
	}
	if _, _, err := LoadSnapshot("/nonexistent/x.eplb"); StatusOf(err) != StatusIO || !strings.Contains(err.Error(), "/nonexistent/x.eplb") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := AlgorithmID("nope"); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("unknown algorithm: %v", err)
	}
	tracker, _ := NewTracker(TrackerOptions{Layers: 1, LogicalExperts: 4, TopK: 2})
	defer tracker.Close()
	if err := tracker.Record(0, []int32{0, 7}); StatusOf(err) != StatusInvalidArgument || !strings.Contains(err.Error(), "7") {
		t.Fatalf("bad id: %v", err)
	}
	planner.Close()
	if _, err := planner.Plan(weight); err != ErrClosed {
		t.Fatalf("closed planner: %v", err)
	}
}

func TestAlgorithmsAreListedDescribedAndDefaultResolves(t *testing.T) {
	ids := Algorithms()
	names := map[string]bool{}
	for _, id := range ids {
		name, err := AlgorithmName(id)
		if err != nil || name == "default" {
			t.Fatalf("algorithm %d: %q %v", id, name, err)
		}
		names[name] = true
		if text, err := AlgorithmDescription(id); err != nil || text == "" {
			t.Fatalf("algorithm %d (%s): description %q %v", id, name, text, err)
		}
	}
	if !names["deepseek"] || !names["balanced-relaxed"] {
		t.Fatalf("algorithms: %v", names)
	}
	if name, _ := AlgorithmName(DefaultAlgorithm()); name != "balanced" {
		t.Fatalf("default is %q", name)
	}
	if text, _ := AlgorithmDescription(1); !strings.Contains(text, "DeepSeek") {
		t.Fatalf("deepseek's description: %q", text)
	}
	if _, err := AlgorithmDescription(1 << 20); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	planner, _ := NewPlanner(readme("balanced"))
	defer planner.Close()
	placement, err := planner.Plan(weight)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plan.eplb")
	if err := placement.Save(path, weight, "go test"); err != nil {
		t.Fatal(err)
	}
	loaded, label, err := LoadSnapshot(path)
	if err != nil || label != "go test" {
		t.Fatalf("load: %v %q", err, label)
	}
	a, _ := placement.Phy2Log()
	b, _ := loaded.Phy2Log()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("loaded placement differs")
	}
	if err := os.WriteFile(path, []byte("EPLB garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSnapshot(path); StatusOf(err) != StatusCorrupt && StatusOf(err) != StatusTruncated {
		t.Fatalf("damaged file: %v", err)
	}
}

func TestTrackerMatchesBruteForce(t *testing.T) {
	tracker, err := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 5, TopK: 2, Window: "sliding", WindowBatches: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer tracker.Close()
	want := make([]float64, 10)
	state := uint64(1)
	for batch := 0; batch < 20; batch++ {
		ids := make([]int32, 40)
		for i := range ids {
			state = state*6364136223846793005 + 1442695040888963407
			ids[i] = int32(state>>33%6) - 1
			if ids[i] >= 0 {
				want[5+int(ids[i])]++
			}
		}
		if err := tracker.Record(1, ids); err != nil {
			t.Fatal(err)
		}
	}
	got, err := tracker.Loads()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("loads = %v %v, want %v", got, err, want)
	}
}

// trackerState is what a tracker's getters return: loads, then each layer's co-activation and
// samples.
func trackerState(t *testing.T, tracker *Tracker, layers int) []any {
	t.Helper()
	loads, err := tracker.Loads()
	if err != nil {
		t.Fatal(err)
	}
	state := []any{loads}
	for layer := 0; layer < layers; layer++ {
		pairs, err := tracker.Coactivation(layer)
		if err != nil {
			t.Fatal(err)
		}
		samples, err := tracker.Samples(layer)
		if err != nil {
			t.Fatal(err)
		}
		state = append(state, pairs, samples)
	}
	return state
}

// A clone has the whole state, RNG included: the same further batches into the clone and into a
// tracker that recorded all the original did give equal statistics, in every window. Recording
// into the clone leaves the original as it was, and closing the original leaves the clone usable.
func TestTrackerCloneHasTheWholeStateAndIsIndependent(t *testing.T) {
	state := uint64(3)
	batch := func() []int32 {
		ids := make([]int32, 48*4)
		for i := range ids {
			state = state*6364136223846793005 + 1442695040888963407
			ids[i] = int32(state>>33%17) - 1
		}
		return ids
	}
	for _, o := range []TrackerOptions{
		{Window: "cumulative"}, {Window: "sliding", WindowBatches: 3}, {Window: "decay", Decay: 0.5},
	} {
		o.Layers, o.LogicalExperts, o.TopK, o.ReservoirCapacity, o.Seed = 2, 16, 4, 8, 5
		original, err := NewTracker(o)
		if err != nil {
			t.Fatal(err)
		}
		twin, _ := NewTracker(o)
		defer twin.Close()
		for i := 0; i < 6; i++ {
			ids := batch()
			if original.Record(i%2, ids) != nil || twin.Record(i%2, ids) != nil {
				t.Fatal("record failed")
			}
		}
		clone, err := original.Clone()
		if err != nil {
			t.Fatal(err)
		}
		defer clone.Close()
		before := trackerState(t, original, 2)
		if got := trackerState(t, clone, 2); !reflect.DeepEqual(got, before) || len(before[2].([]int32)) != 8*4 {
			t.Fatalf("%s: clone %v, original %v", o.Window, got, before)
		}
		for i := 0; i < 6; i++ {
			ids := batch()
			if clone.Record(i%2, ids) != nil || twin.Record(i%2, ids) != nil {
				t.Fatal("record failed")
			}
		}
		if got, want := trackerState(t, clone, 2), trackerState(t, twin, 2); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: clone after more batches %v, want %v", o.Window, got, want)
		}
		if got := trackerState(t, original, 2); !reflect.DeepEqual(got, before) {
			t.Fatalf("%s: original changed by recording into the clone: %v, was %v", o.Window, got, before)
		}
		original.Close()
		if _, err := original.Clone(); err != ErrClosed {
			t.Fatalf("Clone of a closed tracker: %v, want ErrClosed", err)
		}
		ids := batch()
		if clone.Record(0, ids) != nil || twin.Record(0, ids) != nil {
			t.Fatal("record failed")
		}
		if got, want := trackerState(t, clone, 2), trackerState(t, twin, 2); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: clone after closing the original %v, want %v", o.Window, got, want)
		}
	}
}

// Many goroutines: one shared placement read concurrently, one shared planner and tracker
// (serialised by their mutex), and per-goroutine planners; errors stay with their goroutine.
func TestConcurrentUse(t *testing.T) {
	shared, _ := NewPlanner(readme("deepseek"))
	defer shared.Close()
	placement, _ := shared.Plan(weight)
	tracker, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 1})
	defer tracker.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			own, err := NewPlanner(readme("deepseek"))
			if err != nil {
				errs <- err
				return
			}
			defer own.Close()
			for i := 0; i < 20; i++ {
				p, err := own.Plan(weight)
				if err != nil {
					errs <- err
					return
				}
				got, _ := p.Phy2Log()
				p.Close()
				if !reflect.DeepEqual(got, wantPhy2Log) {
					errs <- errors.New("own planner: wrong phy2log")
				}
				if q, err := shared.Plan(weight); err != nil {
					errs <- err
				} else {
					q.Close()
				}
				if b, err := placement.Balancedness(weight); err != nil || b <= 0 {
					errs <- err
				}
				if _, err := placement.Balancedness(weight[:g%3]); StatusOf(err) != StatusInvalidArgument ||
					!strings.Contains(err.Error(), "loads") {
					errs <- errors.New("bad loads: wrong error: " + err.Error())
				}
				if err := tracker.Record(g%2, []int32{int32(g % 12)}); err != nil {
					errs <- err
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	loads, _ := tracker.Loads()
	total := 0.0
	for _, v := range loads {
		total += v
	}
	if total != 32*20 {
		t.Fatalf("tracker recorded %v tokens, want %d", total, 32*20)
	}
	placement.Close()
}

// A placement closed while other goroutines read it (a serving loop swapping in a new plan):
// the readers finish their call or get ErrClosed, never freed memory (go test -race runs this).
func TestCloseWhileInUse(t *testing.T) {
	planner, err := NewPlanner(readme("deepseek"))
	if err != nil {
		t.Fatal(err)
	}
	defer planner.Close()
	for round := 0; round < 20; round++ {
		placement, err := planner.Plan(weight)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100; i++ {
					got, err := placement.Phy2Log()
					if err == ErrClosed {
						return
					}
					if err != nil || !reflect.DeepEqual(got, wantPhy2Log) {
						errs <- errors.New("reader: wrong phy2log or error")
						return
					}
				}
			}()
		}
		placement.Close()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if _, err := placement.GPULoads(weight); err != ErrClosed {
			t.Fatalf("GPULoads after Close: %v, want ErrClosed", err)
		}
		if err := placement.Save(filepath.Join(t.TempDir(), "p.eplb"), nil, ""); err != ErrClosed {
			t.Fatalf("Save after Close: %v, want ErrClosed", err)
		}
	}
}

func TestMetricsAndTrackerOperations(t *testing.T) {
	planner, _ := NewPlanner(readme("deepseek"))
	defer planner.Close()
	placement, err := planner.Plan(weight)
	if err != nil {
		t.Fatal(err)
	}
	defer placement.Close()
	// An idle first layer is left out of the means (LoadedLayers 1).
	idle := append(make([]float64, 12), weight[12:]...)
	metrics, err := placement.Metrics(idle)
	if err != nil || metrics.Layers != 2 || metrics.LoadedLayers != 1 {
		t.Fatalf("metrics = %+v, %v", metrics, err)
	}
	gpu, _ := placement.GPULoads(idle)
	mean, max := 0.0, 0.0
	for _, v := range gpu[8:] {
		mean += v / 8
		if v > max {
			max = v
		}
	}
	if d := metrics.Balancedness - mean/max; d > 1e-12 || d < -1e-12 {
		t.Fatalf("balancedness %v, want %v (layer 1 alone)", metrics.Balancedness, mean/max)
	}

	// Coactivation against a brute force; Merge and Reset; RecordPhysical folds slots to experts.
	a, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 2})
	b, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 2})
	defer a.Close()
	defer b.Close()
	ids := []int32{0, 5, 5, 11, 3, -1, 0, 5}
	if err := a.Record(0, ids); err != nil {
		t.Fatal(err)
	}
	pairs, _ := a.Coactivation(0)
	at := func(x, y int) int { return x*(2*12-x-1)/2 + y - x - 1 }
	for i, v := range pairs {
		want := 0.0
		switch i {
		case at(0, 5):
			want = 2
		case at(5, 11):
			want = 1
		}
		if v != want {
			t.Fatalf("pair index %d = %v, want %v", i, v, want)
		}
	}
	slots := []int32{12, 0} // physical slots: the experts wantPhy2Log puts there
	if err := b.RecordPhysical(placement, 1, slots); err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	loads, _ := a.Loads()
	if loads[12+int(wantPhy2Log[16+12])] != 1 || loads[12+int(wantPhy2Log[16+0])] != 1 || loads[5] != 3 {
		t.Fatalf("merged loads %v", loads)
	}
	if err := a.Reset(); err != nil {
		t.Fatal(err)
	}
	if loads, _ := a.Loads(); loads[5] != 0 {
		t.Fatalf("loads after Reset %v", loads)
	}
}
