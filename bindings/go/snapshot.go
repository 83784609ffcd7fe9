package eplb

import (
	"math"
	"path/filepath"
	"runtime"
	"sync"

	"eplb/internal/capi"
)

// SnapshotInfo is what a snapshot holds (eplb_snapshot_info). A statistics snapshot (no
// placement) has PhysicalExperts = Nodes = GPUs = Groups = 0 and HasCoactivation.
type SnapshotInfo struct {
	FormatMajor, FormatMinor                int
	Layers, LogicalExperts, PhysicalExperts int
	Nodes, GPUs, Groups                     int
	Algorithm                               uint32 // 0 if imported
	HasLoads, HasCoactivation               bool
	CreatedUnixSeconds, FileSize            uint64
	PlanSeconds                             float64
	Balancedness                            float64 // under the stored loads; -1 if none stored
	LibraryVersion, Label                   string
}

func snapshotInfo(n capi.Eplb_snapshot_info) SnapshotInfo {
	return SnapshotInfo{
		FormatMajor: int(n.GetFormat_major()), FormatMinor: int(n.GetFormat_minor()),
		Layers: int(n.GetNum_layers()), LogicalExperts: int(n.GetNum_logical_experts()),
		PhysicalExperts: int(n.GetNum_physical_experts()), Nodes: int(n.GetNum_nodes()),
		GPUs: int(n.GetNum_gpus()), Groups: int(n.GetNum_groups()), Algorithm: uint32(n.GetAlgorithm()),
		HasLoads: n.GetHas_loads() != 0, HasCoactivation: n.GetHas_coactivation() != 0,
		CreatedUnixSeconds: uint64(n.GetCreated_unix_seconds()), FileSize: uint64(n.GetFile_size()),
		PlanSeconds: n.GetPlan_seconds(), Balancedness: n.GetBalancedness(),
		LibraryVersion: n.GetLibrary_version(), Label: n.GetLabel(),
	}
}

// InspectSnapshot reads what a snapshot file holds from its header and small sections, without
// decoding the placement or statistics. When the file does not exist, errors.Is(err,
// fs.ErrNotExist) holds.
func InspectSnapshot(path string) (SnapshotInfo, error) {
	if err := checkString("path", path); err != nil {
		return SnapshotInfo{}, err
	}
	native := capi.NewEplb_snapshot_info()
	defer capi.DeleteEplb_snapshot_info(native)
	if err := check(capi.Eplb_snapshot_inspect(path, native)); err != nil {
		return SnapshotInfo{}, withPathCause(err, path)
	}
	return snapshotInfo(native), nil
}

// Snapshot is a loaded and validated snapshot: a placement, its loads and co-activation
// statistics, or statistics alone. Immutable; calls may run concurrently, Close waits for them.
type Snapshot struct {
	mu     sync.RWMutex
	handle uintptr
	Info   SnapshotInfo
	loads  int // the length of Loads (Info may be changed by a caller)
}

func newSnapshot(handle uintptr) (*Snapshot, error) {
	s := &Snapshot{handle: handle}
	runtime.SetFinalizer(s, (*Snapshot).Close)
	native := capi.NewEplb_snapshot_info()
	defer capi.DeleteEplb_snapshot_info(native)
	if err := check(capi.Eplb_snapshot_get_info(capi.SwigcptrEplb_snapshot(handle), native)); err != nil {
		s.Close()
		return nil, err
	}
	s.Info = snapshotInfo(native)
	s.loads = s.Info.Layers * s.Info.LogicalExperts
	return s, nil
}

// OpenSnapshot reads and validates a whole snapshot file. When the file does not exist,
// errors.Is(err, fs.ErrNotExist) holds.
func OpenSnapshot(path string) (*Snapshot, error) {
	if err := checkString("path", path); err != nil {
		return nil, err
	}
	var handle uintptr
	if err := check(capi.Eplb_snapshot_load(path, &handle)); err != nil {
		return nil, withPathCause(err, path)
	}
	return newSnapshot(handle)
}

// SnapshotFromBuffer reads and validates snapshot bytes (e.g. Placement.SaveToBuffer's).
func SnapshotFromBuffer(data []byte) (*Snapshot, error) {
	var handle uintptr
	if err := check(capi.Eplb_snapshot_load_from_buffer(data, &handle)); err != nil {
		return nil, err
	}
	return newSnapshot(handle)
}

// use calls f with the C snapshot under the read lock; an invalid argument for a nil snapshot,
// ErrClosed for a closed or zero-value one.
func (s *Snapshot) use(f func(capi.Eplb_snapshot) error) error {
	if s == nil {
		return invalidArgument("snapshot is nil")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.handle == 0 {
		return ErrClosed
	}
	err := f(capi.SwigcptrEplb_snapshot(s.handle))
	runtime.KeepAlive(s)
	return err
}

// Placement returns a new placement equal to the stored one (an error for a statistics
// snapshot).
func (s *Snapshot) Placement() (*Placement, error) {
	var out uintptr
	if err := s.use(func(raw capi.Eplb_snapshot) error {
		return check(capi.Eplb_snapshot_get_placement(raw, &out))
	}); err != nil {
		return nil, err
	}
	return newPlacement(out)
}

// Loads returns the stored load statistics, [layers][logical experts] (an error when
// Info.HasLoads is false).
func (s *Snapshot) Loads() ([]float64, error) {
	var out []float64
	if err := s.use(func(raw capi.Eplb_snapshot) error {
		out = make([]float64, s.loads)
		return check(capi.Eplb_snapshot_get_loads(raw, out))
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// Tracker returns a new tracker equal to the stored statistics (recording into it continues
// exactly as the saved tracker would); an error when Info.HasCoactivation is false.
func (s *Snapshot) Tracker() (*Tracker, error) {
	var handle uintptr
	if err := s.use(func(raw capi.Eplb_snapshot) error {
		return check(capi.Eplb_snapshot_get_tracker(raw, &handle))
	}); err != nil {
		return nil, err
	}
	t := &Tracker{handle: handle, order: trackersCreated.Add(1)}
	runtime.SetFinalizer(t, (*Tracker).Close)
	options := capi.NewEplb_tracker_options()
	defer capi.DeleteEplb_tracker_options(options)
	capi.Eplb_tracker_options_init(options)
	if err := check(capi.Eplb_tracker_get_options(capi.SwigcptrEplb_tracker(handle), options)); err != nil {
		t.Close()
		return nil, err
	}
	t.layers, t.experts = int(options.GetNum_layers()), int(options.GetNum_logical_experts())
	t.topK = int(options.GetTop_k())
	return t, nil
}

// Close releases the snapshot once the calls in progress return; later calls return ErrClosed.
// Safe to call twice, from any goroutine, and on a nil snapshot (it does nothing).
func (s *Snapshot) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handle != 0 {
		capi.Eplb_snapshot_destroy(capi.SwigcptrEplb_snapshot(s.handle))
		s.handle = 0
		runtime.SetFinalizer(s, nil)
	}
	return nil
}

// StatisticsOptions is how a statistics snapshot is labelled and compressed. The zero value has
// no label and the library's default level.
type StatisticsOptions struct {
	// Label is a user label of at most 255 bytes without a NUL byte ("" for none).
	Label string
	// CompressionLevel is the zstd level, 1..19; 0 means the library default (3).
	CompressionLevel int
}

// SaveStatistics writes the tracker's whole state (enough to resume recording exactly) to a
// statistics snapshot at path, atomically; label may be "". Neither may contain a NUL byte. When
// the directory does not exist, errors.Is(err, fs.ErrNotExist) holds.
func (t *Tracker) SaveStatistics(path, label string) error {
	return t.SaveStatisticsWith(path, StatisticsOptions{Label: label})
}

// SaveStatisticsWith is SaveStatistics with o's label and compression level.
func (t *Tracker) SaveStatisticsWith(path string, o StatisticsOptions) error {
	return t.useForStatistics(o, func(raw capi.Eplb_tracker) error {
		if err := checkString("path", path); err != nil {
			return err
		}
		err := check(capi.Eplb_go_snapshot_save_statistics(raw, o.Label,
			uint(o.CompressionLevel), path))
		return withPathCause(err, filepath.Dir(path))
	})
}

// StatisticsToBuffer is SaveStatistics into bytes (read back with SnapshotFromBuffer).
func (t *Tracker) StatisticsToBuffer(label string) ([]byte, error) {
	return t.StatisticsToBufferWith(StatisticsOptions{Label: label})
}

// StatisticsToBufferWith is SaveStatisticsWith into bytes.
func (t *Tracker) StatisticsToBufferWith(o StatisticsOptions) ([]byte, error) {
	var buffer uintptr
	var n int64
	if err := t.useForStatistics(o, func(raw capi.Eplb_tracker) error {
		return check(capi.Eplb_go_snapshot_save_statistics_to_buffer(raw, o.Label,
			uint(o.CompressionLevel), &buffer, &n))
	}); err != nil {
		return nil, err
	}
	return takeBytes(buffer, n), nil
}

// checkLabelAndLevel makes the checks of a snapshot's options that C cannot: a NUL in the label,
// a compression level that would not fit C's uint32_t (C checks 1..19 itself).
func checkLabelAndLevel(label string, level int) error {
	if err := checkString("label", label); err != nil {
		return err
	}
	if level < 0 || level > math.MaxUint32 {
		return invalidArgument("compression_level (%d) must be in 1..19, or 0 for the default", level)
	}
	return nil
}

// useForStatistics calls f with the C tracker under its lock once o passes the checks C cannot
// make (a NUL in the label, a level that would not fit C's uint32_t).
func (t *Tracker) useForStatistics(o StatisticsOptions, f func(capi.Eplb_tracker) error) error {
	return t.use(func(raw capi.Eplb_tracker) error {
		if err := checkLabelAndLevel(o.Label, o.CompressionLevel); err != nil {
			return err
		}
		return f(raw)
	})
}

// SnapshotOptions is what a placement snapshot stores besides the placement
// (eplb_snapshot_options) and how it is compressed. The zero value stores the placement alone at
// the library's default level.
type SnapshotOptions struct {
	// Loads, [layers][logical experts] (nil or empty: none), are stored with the placement and
	// give the snapshot's metrics.
	Loads []float64
	// Label is a user label of at most 255 bytes without a NUL byte ("" for none).
	Label string
	// Tracker's co-activation statistics (its shape must match the placement's) are stored too
	// and read back with Snapshot.Tracker; nil for none. Its loads are not Loads: without Loads the
	// snapshot stores no metrics (pass Tracker.Loads for those of the tracked load). The tracker
	// is locked (not recorded into) during the call.
	Tracker *Tracker
	// CompressionLevel is the zstd level, 1..19; 0 means the library default (3).
	CompressionLevel int
}

// useForSnapshot calls f with the C placement and o's C tracker (NULL when o.Tracker is nil)
// under their locks, once the options pass the checks C cannot make (a NUL in the label, a level
// that would not fit C's uint32_t). The tracker is locked before the placement, as in
// Tracker.RecordPhysical: with one order, a save and a RecordPhysical on the same pair cannot
// deadlock while a Close waits on the placement (a waiting writer blocks new readers).
func (p *Placement) useForSnapshot(o SnapshotOptions, f func(capi.Eplb_placement, capi.Eplb_tracker) error) error {
	if p == nil {
		return invalidArgument("placement is nil")
	}
	withPlacement := func(tracker capi.Eplb_tracker) error {
		return p.use(func(raw capi.Eplb_placement) error {
			if err := checkLabelAndLevel(o.Label, o.CompressionLevel); err != nil {
				return err
			}
			return f(raw, tracker)
		})
	}
	if o.Tracker == nil {
		return withPlacement(capi.SwigcptrEplb_tracker(0))
	}
	return o.Tracker.use(withPlacement)
}

// SaveWith writes the placement and what o holds (loads, label, a tracker's statistics) to an
// .eplb snapshot at path, atomically, at o's compression level. path may not contain a NUL byte.
// When the directory does not exist, errors.Is(err, fs.ErrNotExist) holds; a closed tracker in o
// gives ErrClosed.
func (p *Placement) SaveWith(path string, o SnapshotOptions) error {
	return p.useForSnapshot(o, func(raw capi.Eplb_placement, tracker capi.Eplb_tracker) error {
		if err := checkString("path", path); err != nil {
			return err
		}
		err := check(capi.Eplb_go_snapshot_save(raw, optional(o.Loads), o.Label, tracker,
			uint(o.CompressionLevel), path))
		return withPathCause(err, filepath.Dir(path))
	})
}

// SaveToBufferWith is SaveWith into bytes (read back with SnapshotFromBuffer).
func (p *Placement) SaveToBufferWith(o SnapshotOptions) ([]byte, error) {
	var buffer uintptr
	var n int64
	if err := p.useForSnapshot(o, func(raw capi.Eplb_placement, tracker capi.Eplb_tracker) error {
		return check(capi.Eplb_go_snapshot_save_to_buffer(raw, optional(o.Loads), o.Label, tracker,
			uint(o.CompressionLevel), &buffer, &n))
	}); err != nil {
		return nil, err
	}
	return takeBytes(buffer, n), nil
}

// SaveToBuffer returns the placement as .eplb snapshot bytes (what Save writes to a file);
// loads (may be nil or empty) are stored with it, label may be "" (and may not contain a NUL byte).
// SaveToBufferWith also stores a tracker's statistics or sets the compression level.
func (p *Placement) SaveToBuffer(loads []float64, label string) ([]byte, error) {
	return p.SaveToBufferWith(SnapshotOptions{Loads: loads, Label: label})
}
