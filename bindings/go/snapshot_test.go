package eplb

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
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

// recordedTracker is a [2][12] tracker (readmePlacement's shape) with a few batches in each layer.
func recordedTracker(t *testing.T) *Tracker {
	t.Helper()
	tracker, err := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 2, ReservoirCapacity: 16, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	for batch := int32(0); batch < 4; batch++ {
		for layer := 0; layer < 2; layer++ {
			ids := []int32{0, 1, 2, 3, (4 + batch) % 12, 5, 1, (7 * batch) % 12, 11, -1}
			if err := tracker.Record(layer, ids); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tracker
}

// requireEqualTrackers compares what the getters of two [layers][...] trackers return: loads,
// each layer's co-activation and counts.
func requireEqualTrackers(t *testing.T, want, got *Tracker, layers int) {
	t.Helper()
	a, errA := want.Loads()
	b, errB := got.Loads()
	if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
		t.Fatalf("loads %v (%v), want %v (%v)", b, errB, a, errA)
	}
	for layer := 0; layer < layers; layer++ {
		x, errX := want.Coactivation(layer)
		y, errY := got.Coactivation(layer)
		if errX != nil || errY != nil || !reflect.DeepEqual(x, y) {
			t.Fatalf("layer %d: co-activation %v (%v), want %v (%v)", layer, y, errY, x, errX)
		}
		wb, wt, errW := want.LayerCounts(layer)
		gb, gt, errG := got.LayerCounts(layer)
		if errW != nil || errG != nil || wb != gb || wt != gt {
			t.Fatalf("layer %d: counts %d %d (%v), want %d %d (%v)", layer, gb, gt, errG, wb, wt, errW)
		}
	}
}

// SaveWith stores a tracker's statistics beside the placement (file and bytes alike), and the
// loads and label as Save does; Snapshot.Tracker gives back an equal tracker.
func TestSnapshotWithTracker(t *testing.T) {
	placement := readmePlacement(t)
	defer placement.Close()
	tracker := recordedTracker(t)
	defer tracker.Close()
	o := SnapshotOptions{Loads: weight, Label: "tracked", Tracker: tracker}
	path := filepath.Join(t.TempDir(), "tracked.eplb")
	if err := placement.SaveWith(path, o); err != nil {
		t.Fatal(err)
	}
	data, err := placement.SaveToBufferWith(o)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := OpenSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fromFile.Close()
	fromBytes, err := SnapshotFromBuffer(data)
	if err != nil {
		t.Fatal(err)
	}
	defer fromBytes.Close()
	for name, s := range map[string]*Snapshot{"file": fromFile, "bytes": fromBytes} {
		if i := s.Info; !i.HasCoactivation || !i.HasLoads || i.Label != "tracked" || i.PhysicalExperts != 16 ||
			i.FormatMinor < 2 {
			t.Fatalf("%s: info %+v", name, i)
		}
		stored, err := s.Placement()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := stored.Phy2Log(); !reflect.DeepEqual(got, wantPhy2Log) {
			t.Fatalf("%s: placement %v", name, got)
		}
		stored.Close()
		if loads, err := s.Loads(); err != nil || !reflect.DeepEqual(loads, weight) {
			t.Fatalf("%s: loads %v %v", name, loads, err)
		}
		restored, err := s.Tracker()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		requireEqualTrackers(t, tracker, restored, 2)
		restored.Close()
	}

	// The tracker's loads are not the snapshot's: a tracker alone stores no loads and no metrics.
	bare, err := placement.SaveToBufferWith(SnapshotOptions{Tracker: tracker})
	if err != nil {
		t.Fatal(err)
	}
	alone, err := SnapshotFromBuffer(bare)
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	if i := alone.Info; !i.HasCoactivation || i.HasLoads || i.Balancedness != -1 {
		t.Fatalf("tracker alone: info %+v", i)
	}

	// A tracker of another shape is refused by the library.
	other, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 8, TopK: 2})
	defer other.Close()
	if _, err := placement.SaveToBufferWith(SnapshotOptions{Tracker: other}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("tracker of another shape: %v", err)
	}

	// A closed (or never created) tracker is ErrClosed, and nothing is written.
	closed := recordedTracker(t)
	closed.Close()
	unwritten := filepath.Join(t.TempDir(), "closed.eplb")
	for name, tr := range map[string]*Tracker{"closed": closed, "zero": {}} {
		if err := placement.SaveWith(unwritten, SnapshotOptions{Tracker: tr}); err != ErrClosed {
			t.Fatalf("SaveWith(%s tracker): %v, want ErrClosed", name, err)
		}
		if out, err := placement.SaveToBufferWith(SnapshotOptions{Tracker: tr}); err != ErrClosed || out != nil {
			t.Fatalf("SaveToBufferWith(%s tracker): %v %v, want nil, ErrClosed", name, out, err)
		}
	}
	if _, err := os.Stat(unwritten); !os.IsNotExist(err) {
		t.Fatalf("SaveWith with a closed tracker wrote a file: %v", err)
	}
	if _, err := (*Placement)(nil).SaveToBufferWith(SnapshotOptions{Tracker: tracker}); !errors.Is(err, ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "placement is nil") {
		t.Fatalf("nil placement: %v", err)
	}
}

// CompressionLevel is the zstd level: 1 and 19 store the same placement (19 no larger), 0 is the
// default (3), anything else outside 1..19 is an invalid argument naming compression_level.
func TestSnapshotCompressionLevel(t *testing.T) {
	placement := readmePlacement(t)
	defer placement.Close()
	tracker := recordedTracker(t)
	defer tracker.Close()
	sizes := map[int]int{}
	for _, level := range []int{0, 1, 3, 19} {
		o := SnapshotOptions{Loads: weight, Tracker: tracker, CompressionLevel: level}
		data, err := placement.SaveToBufferWith(o)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		path := filepath.Join(t.TempDir(), "level.eplb")
		if err := placement.SaveWith(path, o); err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		fromFile, err := OpenSnapshot(path)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		fromBytes, err := SnapshotFromBuffer(data)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		for _, s := range []*Snapshot{fromFile, fromBytes} {
			stored, err := s.Placement()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := stored.Phy2Log()
			counts, _ := stored.ReplicaCounts()
			wantCounts, _ := placement.ReplicaCounts()
			if !reflect.DeepEqual(got, wantPhy2Log) || !reflect.DeepEqual(counts, wantCounts) {
				t.Fatalf("level %d: placement %v %v", level, got, counts)
			}
			stored.Close()
			restored, err := s.Tracker()
			if err != nil {
				t.Fatal(err)
			}
			requireEqualTrackers(t, tracker, restored, 2)
			restored.Close()
			s.Close()
		}
		sizes[level] = len(data)
	}
	// Small sections: level 19 may gain nothing over level 1, but should not lose more than a few bytes.
	if sizes[19] > sizes[1]+8 {
		t.Errorf("level 19 (%d bytes) is larger than level 1 (%d bytes)", sizes[19], sizes[1])
	}
	for _, level := range []int{-1, 20, 1000, math.MaxUint32 + 1} {
		o := SnapshotOptions{CompressionLevel: level}
		_, err := placement.SaveToBufferWith(o)
		path := filepath.Join(t.TempDir(), "bad.eplb")
		errFile := placement.SaveWith(path, o)
		for _, err := range []error{err, errFile} {
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "compression_level") {
				t.Errorf("level %d: %v, want an invalid argument naming compression_level", level, err)
			}
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("level %d wrote a file: %v", level, err)
		}
	}
}

// SaveToBufferWith and RecordPhysical lock the same tracker and placement while Close waits on the
// placement: with one lock order neither deadlocks (locking the placement first here deadlocked
// within these rounds in every try), and go test -race checks the rest.
func TestSaveWithTrackerWhileRecording(t *testing.T) {
	tracker := recordedTracker(t) // not closed on failure: a deadlock holds its mutex
	for round := 0; round < 2000; round++ {
		placement := readmePlacement(t)
		done := make(chan error, 3)
		saving := make(chan struct{}) // closed once a few saves are done (or the saves failed)
		go func() {
			signalled := false
			signal := func() {
				if !signalled {
					signalled = true
					close(saving)
				}
			}
			defer signal()
			for i := 0; i < 50; i++ {
				if i == 5 {
					signal()
				}
				if _, err := placement.SaveToBufferWith(SnapshotOptions{Tracker: tracker, CompressionLevel: 1}); err != nil && err != ErrClosed {
					done <- err
					return
				}
			}
			done <- nil
		}()
		go func() {
			for i := 0; i < 50; i++ {
				if err := tracker.RecordPhysical(placement, i%2, []int32{0, 15, 3, 8}); err != nil && err != ErrClosed {
					done <- err
					return
				}
			}
			done <- nil
		}()
		go func() {
			<-saving
			done <- placement.Close()
		}()
		for i := 0; i < 3; i++ {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(time.Minute):
				t.Fatalf("round %d: deadlock between SaveToBufferWith, RecordPhysical and Close", round)
			}
		}
	}
	tracker.Close()
}

func TestStatisticsCompressionLevel(t *testing.T) {
	tracker := recordedTracker(t)
	defer tracker.Close()
	for _, level := range []int{0, 1, 19} {
		o := StatisticsOptions{Label: "stats", CompressionLevel: level}
		data, err := tracker.StatisticsToBufferWith(o)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		path := filepath.Join(t.TempDir(), "stats.eplb")
		if err := tracker.SaveStatisticsWith(path, o); err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		fromFile, err := OpenSnapshot(path)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		fromBytes, err := SnapshotFromBuffer(data)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		for _, s := range []*Snapshot{fromFile, fromBytes} {
			if s.Info.Label != "stats" {
				t.Errorf("level %d: label %q", level, s.Info.Label)
			}
			restored, err := s.Tracker()
			if err != nil {
				t.Fatal(err)
			}
			requireEqualTrackers(t, tracker, restored, 2)
			restored.Close()
			s.Close()
		}
	}
	for _, level := range []int{-1, 20, math.MaxUint32 + 1} {
		o := StatisticsOptions{CompressionLevel: level}
		_, err := tracker.StatisticsToBufferWith(o)
		path := filepath.Join(t.TempDir(), "bad.eplb")
		errFile := tracker.SaveStatisticsWith(path, o)
		for _, err := range []error{err, errFile} {
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "compression_level") {
				t.Errorf("level %d: %v, want an invalid argument naming compression_level", level, err)
			}
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("level %d: %s was written", level, path)
		}
	}
}
