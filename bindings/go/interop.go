package eplb

import (
	"eplb/internal/capi"
)

// takeBytes copies a library-owned buffer of n bytes into Go memory and frees it.
func takeBytes(buffer uintptr, n int64) []byte {
	defer capi.Eplb_buffer_free(buffer)
	out := make([]byte, n)
	capi.Eplb_go_copy_bytes(buffer, out)
	return out
}

// SGLangJSON returns the placement as SGLang's placement file
// ({"physical_to_logical_map": [[...], ...]}, for --init-expert-location), with denseLayers
// all-trivial rows first so that rows equal the model's hidden layers.
func (p *Placement) SGLangJSON(denseLayers uint32) ([]byte, error) {
	var buffer uintptr
	var n int64
	if err := p.use(func(raw capi.Eplb_placement) error {
		return check(capi.Eplb_placement_to_sglang_json(raw, uint(denseLayers), &buffer, &n))
	}); err != nil {
		return nil, err
	}
	return takeBytes(buffer, n), nil
}

// PlacementFromSGLangJSON reads SGLang's placement file for nodes nodes and gpus GPUs, skipping
// the first denseLayers rows. logicalExperts 0 means one more than the largest id. JSON text
// with a NUL byte is refused.
func PlacementFromSGLangJSON(json []byte, logicalExperts, nodes, gpus, denseLayers uint32) (*Placement, error) {
	if err := checkJSON(json); err != nil {
		return nil, err
	}
	var out uintptr
	if err := check(capi.Eplb_placement_from_sglang_json(json, uint(logicalExperts), uint(nodes), uint(gpus),
		uint(denseLayers), &out)); err != nil {
		return nil, err
	}
	return newPlacement(out)
}

// VLLMAscendJSON returns the placement as vLLM-Ascend's expert map file.
func (p *Placement) VLLMAscendJSON() ([]byte, error) {
	var buffer uintptr
	var n int64
	if err := p.use(func(raw capi.Eplb_placement) error {
		return check(capi.Eplb_placement_to_vllm_ascend_json(raw, &buffer, &n))
	}); err != nil {
		return nil, err
	}
	return takeBytes(buffer, n), nil
}

// PlacementFromVLLMAscendJSON reads vLLM-Ascend's expert map file for nodes nodes (the GPUs are
// its devices). logicalExperts 0 means one more than the largest id. JSON text with a NUL byte
// is refused.
func PlacementFromVLLMAscendJSON(json []byte, logicalExperts, nodes uint32) (*Placement, error) {
	if err := checkJSON(json); err != nil {
		return nil, err
	}
	var out uintptr
	if err := check(capi.Eplb_placement_from_vllm_ascend_json(json, uint(logicalExperts), uint(nodes), &out)); err != nil {
		return nil, err
	}
	return newPlacement(out)
}

// LoadsFromSGLangJSON reads SGLang's expert load file ({"logical_count": [layers][experts]} or
// [steps][layers][experts], steps summed) and returns the loads, [layers][experts] row-major.
// JSON text with a NUL byte is refused.
func LoadsFromSGLangJSON(json []byte) (loads []float64, layers, experts int, err error) {
	if err := checkJSON(json); err != nil {
		return nil, 0, 0, err
	}
	var buffer uintptr
	var nl, ne uint32
	if err := check(capi.Eplb_loads_from_sglang_json(json, &buffer, &nl, &ne)); err != nil {
		return nil, 0, 0, err
	}
	defer capi.Eplb_buffer_free(buffer)
	loads = make([]float64, int(nl)*int(ne))
	capi.Eplb_go_copy_doubles(buffer, loads)
	return loads, int(nl), int(ne), nil
}
