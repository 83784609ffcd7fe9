package eplb

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every error reads "eplb: <message>", whether C or the Go-side checks refused the call; Message
// is the bare message. (Go-side messages used to carry the prefix and C's did not.)
func TestErrorStringsArePrefixedOnce(t *testing.T) {
	_, fromC := AlgorithmID("nope")
	_, fromGo := (*Placement)(nil).Phy2Log()
	tracker, err := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tracker.Close()
	fromCheck := tracker.Record(5, []int32{0, 1})
	for _, err := range []error{fromC, fromGo, fromCheck} {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%v is not an *Error", err)
		}
		if !strings.HasPrefix(err.Error(), "eplb: ") || strings.Count(err.Error(), "eplb: ") != 1 {
			t.Errorf("Error() = %q, want one \"eplb: \" prefix", err.Error())
		}
		if strings.HasPrefix(e.Message, "eplb:") || e.Message == "" {
			t.Errorf("Message = %q, want the bare message", e.Message)
		}
	}
}

// The C message reaches Go whole: it used to be cut at 1100 bytes, which dropped the reason that
// follows a long path.
func TestLongErrorMessagesAreWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("d", 200), strings.Repeat("x", 2000)+".eplb")
	_, _, err := LoadSnapshot(path)
	if !errors.Is(err, ErrIO) {
		t.Fatalf("LoadSnapshot(long absent path): %v, want an I/O error", err)
	}
	message := err.Error()
	i := strings.Index(message, path)
	if i < 0 {
		t.Fatalf("the message (%d bytes) does not hold the whole path (%d bytes): ...%s", len(message), len(path),
			message[len(message)-40:])
	}
	if rest := strings.TrimLeft(message[i+len(path):], "': "); len(rest) < 4 {
		t.Errorf("the message has no reason after the path: %q", message[i+len(path):])
	}
}

// CheckVersion's failure is an *Error of status StatusUnsupportedVersion like every other failure
// (it used to be a plain error: errors.Is(err, ErrUnsupportedVersion) and StatusOf did not see it).
func TestCheckVersionError(t *testing.T) {
	if err := CheckVersion(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		runtime, header int
		ok              bool
	}{{101, 101, true}, {102, 101, true}, {100, 101, false}, {200, 101, false}, {10203, 10000, true},
		{10000, 10203, false}, {20000, 10000, false}} {
		err := checkVersion(c.runtime, c.header)
		if c.ok != (err == nil) {
			t.Errorf("checkVersion(%d, %d) = %v, want ok %v", c.runtime, c.header, err, c.ok)
		}
		if err != nil && (!errors.Is(err, ErrUnsupportedVersion) || StatusOf(err) != StatusUnsupportedVersion ||
			!strings.Contains(err.Error(), "libeplb")) {
			t.Errorf("checkVersion(%d, %d) = %v, want an unsupported-version *Error", c.runtime, c.header, err)
		}
	}
}

// A snapshot file (or the directory to save one in) that does not exist satisfies
// errors.Is(err, fs.ErrNotExist) besides ErrIO, so that a server can tell "no snapshot yet" from a
// broken one; other failures do not.
func TestSnapshotPathNotExist(t *testing.T) {
	dir := t.TempDir()
	placement := readmePlacement(t)
	defer placement.Close()
	tracker, _ := NewTracker(TrackerOptions{Layers: 2, LogicalExperts: 12, TopK: 2})
	defer tracker.Close()
	absent := filepath.Join(dir, "absent.eplb")
	inAbsentDir := filepath.Join(dir, "no", "such", "dir", "p.eplb")
	corrupt := filepath.Join(dir, "corrupt.eplb")
	if err := os.WriteFile(corrupt, []byte("EPLB garbage, not a snapshot at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.eplb")
	if err := placement.Save(good, weight, ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		notExist bool
		call     func() error
	}{
		{"LoadSnapshot(absent)", true, func() error { _, _, err := LoadSnapshot(absent); return err }},
		{"OpenSnapshot(absent)", true, func() error { _, err := OpenSnapshot(absent); return err }},
		{"InspectSnapshot(absent)", true, func() error { _, err := InspectSnapshot(absent); return err }},
		{"LoadSnapshot(in absent dir)", true, func() error { _, _, err := LoadSnapshot(inAbsentDir); return err }},
		{"Save(in absent dir)", true, func() error { return placement.Save(inAbsentDir, nil, "") }},
		{"SaveStatistics(in absent dir)", true, func() error { return tracker.SaveStatistics(inAbsentDir, "") }},
		{"LoadSnapshot(dir)", false, func() error { _, _, err := LoadSnapshot(dir); return err }},
		{"InspectSnapshot(dir)", false, func() error { _, err := InspectSnapshot(dir); return err }},
		{"Save(dir)", false, func() error { return placement.Save(dir, nil, "") }},
		{"LoadSnapshot(corrupt)", false, func() error { _, _, err := LoadSnapshot(corrupt); return err }},
		{"OpenSnapshot(corrupt)", false, func() error { _, err := OpenSnapshot(corrupt); return err }},
	} {
		err := c.call()
		if err == nil {
			t.Errorf("%s succeeded", c.name)
			continue
		}
		if got := errors.Is(err, fs.ErrNotExist); got != c.notExist {
			t.Errorf("%s: %v: errors.Is(err, fs.ErrNotExist) = %v, want %v", c.name, err, got, c.notExist)
		}
		var pathErr *fs.PathError
		if c.notExist && (!errors.Is(err, ErrIO) || !errors.As(err, &pathErr)) {
			t.Errorf("%s: %v, want an I/O *Error wrapping an *fs.PathError", c.name, err)
		}
	}
	// The file is there once saved: no cause is attached to a success.
	if _, _, err := LoadSnapshot(good); err != nil {
		t.Fatal(err)
	}
}
