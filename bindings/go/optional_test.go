package eplb

import (
	"reflect"
	"testing"
)

// An optional slice that is empty but not nil means "not given", as nil does: PlanTracked and
// PlanMigration used to refuse an empty loads slice ("pass NULL ..."), and Solve, SolveByNode and
// SharedExpertWaterfill an empty per-GPU or per-token array, while Save took one as "no loads".
func TestEmptyOptionalSlicesAreAbsent(t *testing.T) {
	empty := []float64{}
	planner, err := NewPlanner(readme("balanced"))
	if err != nil {
		t.Fatal(err)
	}
	defer planner.Close()
	tracker, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 2})
	defer tracker.Close()
	for layer := 0; layer < 2; layer++ {
		if err := tracker.Record(layer, []int32{0, 1, 2, 3, 4, 5, 0, 7}); err != nil {
			t.Fatal(err)
		}
	}
	phy2log := func(p *Placement, err error) []int32 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		out, err := p.Phy2Log()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if a, b := phy2log(planner.PlanTracked(nil, tracker)), phy2log(planner.PlanTracked(empty, tracker)); !reflect.DeepEqual(a, b) {
		t.Errorf("PlanTracked(empty) = %v, PlanTracked(nil) = %v", b, a)
	}

	old, new, _ := planBoth(t)
	defer old.Close()
	defer new.Close()
	summary := func(loads []float64) MigrationSummary {
		t.Helper()
		m, err := PlanMigration(old, new, loads, DefaultMigrationOptions())
		if err != nil {
			t.Fatalf("PlanMigration(loads %v): %v", loads, err)
		}
		defer m.Close()
		s, err := m.Summary()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if a, b := summary(nil), summary(empty); a != b || b.HasLoads {
		t.Errorf("PlanMigration(empty loads) = %+v, with nil %+v", b, a)
	}

	placement := readmePlacement(t)
	defer placement.Close()
	workspace, _ := NewSplitWorkspace()
	defer workspace.Close()
	counts := []int32{5, 0, 3, 9, 1, 1, 2, 0, 4, 4, 7, 6}
	q1, m1, err1 := workspace.Solve(placement, 1, counts, nil, nil)
	q2, m2, err2 := workspace.Solve(placement, 1, counts, empty, []float64{})
	if err1 != nil || err2 != nil || !reflect.DeepEqual(q1, q2) || m1 != m2 {
		t.Errorf("Solve with empty per-GPU arrays: %v %v %v, with nil: %v %v %v", q2, m2, err2, q1, m1, err1)
	}
	byNode := make([]int32, 24)
	for e, c := range counts {
		byNode[2*e+e%2] = c
	}
	b1, l1, c1, err1 := workspace.SolveByNode(placement, 1, byNode, nil, nil, 0.1)
	b2, l2, c2, err2 := workspace.SolveByNode(placement, 1, byNode, empty, empty, 0.1)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(b1, b2) || l1 != l2 || c1 != c2 {
		t.Errorf("SolveByNode with empty per-GPU arrays: %v %v, with nil: %v %v", err2, b2, err1, b1)
	}
	slots := []int32{0, 5, 11, 14, 2, -1}
	w1, err1 := placement.SharedExpertWaterfill(slots, 2, WaterfillOptions{})
	w2, err2 := placement.SharedExpertWaterfill(slots, 2,
		WaterfillOptions{SourceGPU: []int32{}, GPUWeights: empty, GPULoads: []float64{}})
	if err1 != nil || err2 != nil || !reflect.DeepEqual(w1, w2) {
		t.Errorf("SharedExpertWaterfill with empty options: %v %v, with none: %v %v", w2, err2, w1, err1)
	}

	// Save and SaveToBuffer already stored no loads for an empty slice; they still do.
	data, err := placement.SaveToBuffer(empty, "")
	if err != nil {
		t.Fatal(err)
	}
	snapshot, err := SnapshotFromBuffer(data)
	if err != nil {
		t.Fatal(err)
	}
	defer snapshot.Close()
	if snapshot.Info.HasLoads {
		t.Error("SaveToBuffer(empty loads) stored loads")
	}
}
