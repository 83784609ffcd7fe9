package eplb

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSnapshotObject(t *testing.T) {
	placement := readmePlacement(t)
	defer placement.Close()
	data, err := placement.SaveToBuffer(weight, "object")
	if err != nil {
		t.Fatal(err)
	}
	snapshot, err := SnapshotFromBuffer(data)
	if err != nil {
		t.Fatal(err)
	}
	defer snapshot.Close()
	info := snapshot.Info
	metrics, _ := placement.Metrics(weight)
	if info.Layers != 2 || info.LogicalExperts != 12 || info.PhysicalExperts != 16 || info.Nodes != 2 ||
		info.GPUs != 8 || !info.HasLoads || info.HasCoactivation || info.Label != "object" ||
		info.FileSize != uint64(len(data)) || info.FormatMajor != 1 || info.LibraryVersion != Version() ||
		math.Abs(info.Balancedness-metrics.Balancedness) > 1e-12 {
		t.Fatalf("info %+v", info)
	}
	if loads, err := snapshot.Loads(); err != nil || !reflect.DeepEqual(loads, weight) {
		t.Fatalf("loads %v %v", loads, err)
	}
	stored, err := snapshot.Placement()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := stored.Phy2Log(); !reflect.DeepEqual(got, wantPhy2Log) {
		t.Fatalf("placement %v", got)
	}
	stored.Close()
	if _, err := snapshot.Tracker(); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("tracker of a placement snapshot without one: %v", err)
	}
	// Without loads: no stored balancedness, Loads refuses.
	bare, _ := placement.SaveToBuffer(nil, "")
	noLoads, err := SnapshotFromBuffer(bare)
	if err != nil || noLoads.Info.HasLoads || noLoads.Info.Balancedness != -1 {
		t.Fatalf("no loads: %v %+v", err, noLoads.Info)
	}
	if _, err := noLoads.Loads(); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("loads of a snapshot without: %v", err)
	}
	noLoads.Close()

	// Damaged bytes: a flipped byte past the header, a cut, nothing.
	flipped := append([]byte(nil), data...)
	flipped[len(flipped)-3] ^= 0xff
	if _, err := SnapshotFromBuffer(flipped); StatusOf(err) != StatusCorrupt && StatusOf(err) != StatusTruncated {
		t.Fatalf("flipped byte: %v", err)
	}
	if _, err := SnapshotFromBuffer(data[:len(data)/2]); StatusOf(err) != StatusTruncated && StatusOf(err) != StatusCorrupt {
		t.Fatalf("cut: %v", err)
	}
	if _, err := SnapshotFromBuffer(nil); err == nil {
		t.Fatal("empty buffer accepted")
	}
	snapshot.Close()
	snapshot.Close()
	if _, err := snapshot.Placement(); err != ErrClosed {
		t.Fatalf("closed: %v", err)
	}
	if _, err := snapshot.Loads(); err != ErrClosed {
		t.Fatalf("closed: %v", err)
	}
}

func TestStatisticsSnapshotResumesExactly(t *testing.T) {
	o := DefaultWorkloadOptions()
	o.Layers, o.Experts, o.TopK, o.Seed = 2, 16, 4, 5
	workload, _ := NewWorkload(o)
	defer workload.Close()
	tracker, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 16, TopK: 4, Window: "sliding", WindowBatches: 3})
	defer tracker.Close()
	record := func(tr *Tracker, ids []int32) {
		t.Helper()
		for layer := 0; layer < 2; layer++ {
			if err := tr.Record(layer, ids[layer*50*4:(layer+1)*50*4]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for batch := 0; batch < 5; batch++ {
		ids, _ := workload.NextBatch(50)
		record(tracker, ids)
	}
	data, err := tracker.StatisticsToBuffer("stats")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "stats.eplb")
	if err := tracker.SaveStatistics(path, "stats"); err != nil {
		t.Fatal(err)
	}
	fromFile, err := OpenSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fromFile.Close()
	inspected, err := InspectSnapshot(path)
	if err != nil || inspected.Label != "stats" || !inspected.HasCoactivation {
		t.Fatalf("inspect %+v %v", inspected, err)
	}
	snapshot, err := SnapshotFromBuffer(data)
	if err != nil {
		t.Fatal(err)
	}
	defer snapshot.Close()
	if i := snapshot.Info; i.PhysicalExperts != 0 || i.Layers != 2 || i.LogicalExperts != 16 || !i.HasCoactivation || i.HasLoads {
		t.Fatalf("statistics info %+v", i)
	}
	if _, err := snapshot.Placement(); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("placement of a statistics snapshot: %v", err)
	}
	var restored []*Tracker
	for _, s := range []*Snapshot{snapshot, fromFile} {
		r, err := s.Tracker()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		restored = append(restored, r)
	}
	// Equal now, and after one more batch into each (the sliding window retires the same batch
	// in each).
	for round := 0; round < 2; round++ {
		for i, r := range restored {
			a, _ := tracker.Loads()
			b, _ := r.Loads()
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("round %d, snapshot %d: loads %v, restored %v", round, i, a, b)
			}
			for layer := 0; layer < 2; layer++ {
				x, _ := tracker.Coactivation(layer)
				y, _ := r.Coactivation(layer)
				p, _ := tracker.Samples(layer)
				q, _ := r.Samples(layer)
				if !reflect.DeepEqual(x, y) || !reflect.DeepEqual(p, q) || len(p) == 0 {
					t.Fatalf("round %d, snapshot %d, layer %d: co-activation or samples differ", round, i, layer)
				}
			}
		}
		next, _ := workload.NextBatch(50)
		record(tracker, next)
		for _, r := range restored {
			record(r, next)
		}
	}
	if err := tracker.SaveStatistics(filepath.Join(t.TempDir(), "missing", "x.eplb"), ""); StatusOf(err) != StatusIO {
		t.Fatalf("missing directory: %v", err)
	}
	if _, err := OpenSnapshot(filepath.Join(t.TempDir(), "none.eplb")); StatusOf(err) != StatusIO {
		t.Fatalf("missing file: %v", err)
	}
	tracker.Close()
	if _, err := tracker.StatisticsToBuffer(""); err != ErrClosed {
		t.Fatalf("closed tracker: %v", err)
	}
	_ = os.Remove(path)
}
