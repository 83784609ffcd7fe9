package eplb

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readmePlacement(t *testing.T) *Placement {
	t.Helper()
	placement, err := PlacementFromPhy2Log(2, 12, 16, 2, 8, wantPhy2Log)
	if err != nil {
		t.Fatal(err)
	}
	return placement
}

func TestSGLangJSONRoundTrip(t *testing.T) {
	placement := readmePlacement(t)
	defer placement.Close()
	text, err := placement.SGLangJSON(3)
	if err != nil {
		t.Fatal(err)
	}
	// Parsed independently: 3 trivial dense rows (slot p holds p % E), then phy2log.
	var doc map[string][][]int32
	if err := json.Unmarshal(text, &doc); err != nil || len(doc) != 1 {
		t.Fatalf("not SGLang's document: %v %s", err, text)
	}
	rows := doc["physical_to_logical_map"]
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 3 dense + 2", len(rows))
	}
	for r := 0; r < 3; r++ {
		for p, e := range rows[r] {
			if int(e) != p%12 || len(rows[r]) != 16 {
				t.Fatalf("dense row %d: %v", r, rows[r])
			}
		}
	}
	var flat []int32
	for _, row := range rows[3:] {
		flat = append(flat, row...)
	}
	if !reflect.DeepEqual(flat, wantPhy2Log) {
		t.Fatalf("rows %v, want %v", flat, wantPhy2Log)
	}
	back, err := PlacementFromSGLangJSON(text, 12, 2, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	got, _ := back.Phy2Log()
	if !reflect.DeepEqual(got, wantPhy2Log) || back.Layers != 2 || back.GPUs != 8 || back.Nodes != 2 {
		t.Fatalf("round trip %v (%+v)", got, back)
	}
	// 0 logical experts: one more than the largest id.
	inferred, err := PlacementFromSGLangJSON(text, 0, 1, 4, 3)
	if err != nil || inferred.LogicalExperts != 12 || inferred.GPUs != 4 {
		t.Fatalf("inferred: %v %+v", err, inferred)
	}
	inferred.Close()

	for name, bad := range map[string]string{
		"not JSON":   `{"physical_to_logical_map": [[0, 1`,
		"extra key":  `{"physical_to_logical_map": [[0, 1]], "x": 1}`,
		"ragged":     `{"physical_to_logical_map": [[0, 1], [0]]}`,
		"missing id": `{"physical_to_logical_map": [[0, 0, 2, 2]]}`,
	} {
		if _, err := PlacementFromSGLangJSON([]byte(bad), 0, 1, 2, 0); StatusOf(err) != StatusCorrupt {
			t.Errorf("%s: %v, want corrupt", name, err)
		}
	}
	if _, err := PlacementFromSGLangJSON(text, 12, 2, 8, 5); StatusOf(err) != StatusInvalidArgument {
		t.Errorf("all rows dense: %v", err)
	}
	if _, err := PlacementFromSGLangJSON(text, 12, 3, 8, 3); StatusOf(err) != StatusInvalidArgument {
		t.Errorf("8 GPUs on 3 nodes: %v", err)
	}
	if _, err := PlacementFromSGLangJSON(nil, 12, 2, 8, 0); err == nil {
		t.Error("empty document accepted")
	}
	placement.Close()
	if _, err := placement.SGLangJSON(0); err != ErrClosed {
		t.Fatalf("closed: %v", err)
	}
}

func TestVLLMAscendJSONRoundTrip(t *testing.T) {
	placement := readmePlacement(t)
	defer placement.Close()
	text, err := placement.VLLMAscendJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		MoeLayerCount int `json:"moe_layer_count"`
		LayerList     []struct {
			LayerID     int `json:"layer_id"`
			DeviceCount int `json:"device_count"`
			DeviceList  []struct {
				DeviceID     int     `json:"device_id"`
				DeviceExpert []int32 `json:"device_expert"`
			} `json:"device_list"`
		} `json:"layer_list"`
	}
	if err := json.Unmarshal(text, &doc); err != nil {
		t.Fatalf("%v: %s", err, text)
	}
	if doc.MoeLayerCount != 2 || len(doc.LayerList) != 2 {
		t.Fatalf("document %+v", doc)
	}
	for l, layer := range doc.LayerList {
		if layer.LayerID != l || layer.DeviceCount != 8 || len(layer.DeviceList) != 8 {
			t.Fatalf("layer %d: %+v", l, layer)
		}
		for g, device := range layer.DeviceList {
			want := wantPhy2Log[l*16+g*2 : l*16+g*2+2]
			if device.DeviceID != g || !reflect.DeepEqual(device.DeviceExpert, want) {
				t.Fatalf("layer %d device %d: %+v, want %v", l, g, device, want)
			}
		}
	}
	back, err := PlacementFromVLLMAscendJSON(text, 12, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	got, _ := back.Phy2Log()
	if !reflect.DeepEqual(got, wantPhy2Log) || back.GPUs != 8 || back.Nodes != 2 {
		t.Fatalf("round trip %v", got)
	}
	// Ids and counts may be omitted; a wrong one is refused.
	minimal := `{"moe_layer_count": 1, "layer_list": [{"device_list": [{"device_expert": [0, 1]}, {"device_expert": [2, 0]}]}]}`
	small, err := PlacementFromVLLMAscendJSON([]byte(minimal), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := small.Phy2Log(); !reflect.DeepEqual(got, []int32{0, 1, 2, 0}) || small.LogicalExperts != 3 {
		t.Fatalf("minimal: %v", got)
	}
	small.Close()
	wrongID := strings.Replace(minimal, `{"device_expert": [2, 0]}`, `{"device_id": 5, "device_expert": [2, 0]}`, 1)
	if _, err := PlacementFromVLLMAscendJSON([]byte(wrongID), 0, 1); StatusOf(err) != StatusCorrupt {
		t.Errorf("wrong device_id: %v", err)
	}
}

func TestLoadsFromSGLangJSON(t *testing.T) {
	rows := [][]float64{weight[:12], weight[12:]}
	text, _ := json.Marshal(map[string]any{"logical_count": rows, "other": "ignored"})
	loads, layers, experts, err := LoadsFromSGLangJSON(text)
	if err != nil || layers != 2 || experts != 12 || !reflect.DeepEqual(loads, weight) {
		t.Fatalf("loads %v %d %d %v", loads, layers, experts, err)
	}
	// [steps][layers][experts] is summed over the steps.
	steps, _ := json.Marshal(map[string]any{"logical_count": [][][]float64{rows, rows, rows}})
	loads, layers, experts, err = LoadsFromSGLangJSON(steps)
	if err != nil || layers != 2 || experts != 12 {
		t.Fatalf("steps: %v", err)
	}
	for i, v := range loads {
		if v != 3*weight[i] {
			t.Fatalf("summed load %d = %v, want %v", i, v, 3*weight[i])
		}
	}
	for name, bad := range map[string]string{
		"negative": `{"logical_count": [[1, -2]]}`,
		"ragged":   `{"logical_count": [[1, 2], [3]]}`,
		"string":   `{"logical_count": [[1, "x"]]}`,
		"not JSON": `{"logical_count": [[1, 2]`,
	} {
		if _, _, _, err := LoadsFromSGLangJSON([]byte(bad)); StatusOf(err) != StatusCorrupt {
			t.Errorf("%s: %v, want corrupt", name, err)
		}
	}
}

func TestSnapshotBuffer(t *testing.T) {
	placement := readmePlacement(t)
	defer placement.Close()
	data, err := placement.SaveToBuffer(weight, "buffer")
	if err != nil {
		t.Fatal(err)
	}
	// The bytes are a snapshot file: written out, LoadSnapshot reads the same placement.
	path := filepath.Join(t.TempDir(), "b.eplb")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, label, err := LoadSnapshot(path)
	if err != nil || label != "buffer" {
		t.Fatalf("%v %q", err, label)
	}
	defer loaded.Close()
	if got, _ := loaded.Phy2Log(); !reflect.DeepEqual(got, wantPhy2Log) {
		t.Fatalf("phy2log %v", got)
	}
	if _, err := placement.SaveToBuffer(weight[:4], ""); StatusOf(err) != StatusInvalidArgument {
		t.Fatalf("short loads: %v", err)
	}
}
