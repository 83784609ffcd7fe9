/* SWIG interface of the Go binding's low-level package (generated code committed; regenerate
 * with scripts/regen-bindings.sh). The whole public header is wrapped; the idiomatic API is the
 * parent package `eplb`.
 * - An eplb_status result becomes a Go `error` (nil or *Error with the status and the message):
 *   the message is read in the C wrapper, inside the same cgo call as the failing function, since
 *   Go may move a goroutine to another OS thread between two cgo calls.
 * - (pointer, length) pairs of double, int32_t, uint32_t and bytes (JSON text, snapshot data) are
 *   Go slices, in and out; C never keeps them. Arrays whose length the C function takes from
 *   other arguments (topk ids, per-GPU arrays) are slices too: the idiomatic layer checks them.
 * - `T** out_x` handles are written through a *uintptr; so are library-owned buffers (char**,
 *   double**, void**), which the idiomatic layer copies with eplb_go_copy_* and frees with
 *   eplb_buffer_free.
 * - Options structs holding pointers (snapshot options) are built in C by eplb_go_* helpers. */
%module capi

%{
#include <stdio.h>
#include <string.h>
#include "eplb/eplb.h"
%}

/* int64_t is `long` on the LP64 targets libeplb supports: SWIG must agree, or int64_t* arguments
 * are passed as `long long*` (a C warning; the same 64 bits). */
#define SWIGWORDSIZE64
%include <stdint.i>

%insert(go_header) %{
// Error is a failed libeplb call: the C status and the library's message.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func statusError(status int, message string) error {
	if status == 0 {
		return nil
	}
	return &Error{Status: status, Message: message}
}
%}

/* Status results: the C wrapper returns "" or "<status>:<message>", the whole message (a path in
 * it may be PATH_MAX long, and the reason comes after the path); only the status when the copy
 * cannot be allocated. */
%typemap(gotype) eplb_status "error"
%typemap(imtype) eplb_status "string"
%typemap(out) eplb_status %{
  if ($1 == EPLB_OK) {
    $result = Swig_AllocateString("", 0);
  } else {
    const char* message = eplb_last_error_message();
    size_t message_length = strlen(message);
    char prefix[16];
    int prefix_length = snprintf(prefix, sizeof prefix, "%d:", (int)$1);
    if (prefix_length < 0 || (size_t)prefix_length >= sizeof prefix) prefix_length = 0;
    char* text = (char*)malloc((size_t)prefix_length + message_length + 1);
    if (text == NULL) {
      $result = Swig_AllocateString(prefix, (size_t)prefix_length);
    } else {
      memcpy(text, prefix, (size_t)prefix_length);
      memcpy(text + prefix_length, message, message_length);
      $result.p = text;
      $result.n = (intgo)((size_t)prefix_length + message_length);
    }
  }
%}
%typemap(goout) eplb_status %{
	{
		text := swigCopyString($1)
		if text == "" {
			$result = nil
		} else {
			status := 0
			i := 0
			for ; i < len(text) && text[i] != ':'; i++ {
				status = status*10 + int(text[i]-'0')
			}
			$result = statusError(status, text[i+1:])
		}
	}
%}
/* eplb_status_string takes a status: it is left to the idiomatic layer (Error has the text). */
%ignore eplb_status_string;

/* Slices in and out. */
%define EPLB_GO_SLICE(CTYPE, GOTYPE)
%typemap(gotype) (const CTYPE* IN_SLICE, size_t IN_LEN), (CTYPE* OUT_SLICE, size_t OUT_LEN) "[]GOTYPE"
%typemap(imtype) (const CTYPE* IN_SLICE, size_t IN_LEN), (CTYPE* OUT_SLICE, size_t OUT_LEN) "[]GOTYPE"
%typemap(in) (const CTYPE* IN_SLICE, size_t IN_LEN), (CTYPE* OUT_SLICE, size_t OUT_LEN) %{
  $1 = ($1_ltype)$input.array;
  $2 = (size_t)$input.len;
%}
%enddef
EPLB_GO_SLICE(double, float64)
EPLB_GO_SLICE(int32_t, int32)
EPLB_GO_SLICE(uint32_t, uint32)
EPLB_GO_SLICE(char, byte)
EPLB_GO_SLICE(void, byte)
%apply (const double* IN_SLICE, size_t IN_LEN) {
  (const double* loads, size_t loads_len), (const double* layer_loads, size_t layer_loads_len)
};
%apply (const int32_t* IN_SLICE, size_t IN_LEN) {
  (const int32_t* phy2log, size_t phy2log_len), (const int32_t* counts, size_t counts_len),
  (const int32_t* counts_by_node, size_t counts_len), (const int32_t* quotas, size_t quotas_len),
  (const int32_t* rank_counts, size_t rank_counts_len)
};
%apply (const char* IN_SLICE, size_t IN_LEN) { (const char* json, size_t json_len) };
%apply (const void* IN_SLICE, size_t IN_LEN) { (const void* data, size_t size) };
%apply (double* OUT_SLICE, size_t OUT_LEN) { (double* out, size_t out_len) };
%apply (int32_t* OUT_SLICE, size_t OUT_LEN) {
  (int32_t* out, size_t out_len), (int32_t* out_quotas, size_t out_quotas_len),
  (int32_t* out_topk, size_t out_topk_len)
};
%apply (uint32_t* OUT_SLICE, size_t OUT_LEN) { (uint32_t* out, size_t out_len) };
%apply (char* OUT_SLICE, size_t OUT_LEN) { (char* out_bytes, size_t out_bytes_len) };

/* Migration transfers into a []uint32 of 8 words per transfer (the struct's fixed layout: eight
 * uint32_t, no padding); a nil slice is the size query. */
%typemap(gotype) (eplb_migration_transfer* out, size_t out_len) "[]uint32"
%typemap(imtype) (eplb_migration_transfer* out, size_t out_len) "[]uint32"
%typemap(in) (eplb_migration_transfer* out, size_t out_len) %{
  $1 = ($1_ltype)$input.array;
  $2 = (size_t)$input.len / (sizeof(eplb_migration_transfer) / sizeof(uint32_t));
%}

/* Per-GPU and per-token arrays whose length the caller passes separately (gpu_len, num_tokens):
 * the idiomatic layer checks their lengths; a nil slice is NULL. */
%typemap(gotype) const double* gpu_weights, const double* gpu_extra_load, double* gpu_loads "[]float64"
%typemap(imtype) const double* gpu_weights, const double* gpu_extra_load, double* gpu_loads "[]float64"
%typemap(in) const double* gpu_weights, const double* gpu_extra_load, double* gpu_loads %{
  $1 = ($1_ltype)$input.array;
%}

/* uint32_t scalar outputs through a *uint32 (SWIG's default, *uint, is 8 bytes in Go). */
%typemap(gotype) uint32_t* out_algorithm, uint32_t* out_num_layers, uint32_t* out_num_experts "*uint32"
%typemap(imtype) uint32_t* out_algorithm, uint32_t* out_num_layers, uint32_t* out_num_experts "*uint32"
%typemap(in) uint32_t* out_algorithm, uint32_t* out_num_layers, uint32_t* out_num_experts %{
  $1 = ($1_ltype)$input;
%}

/* Library-owned buffers (released with eplb_buffer_free) come back as a uintptr: the idiomatic
 * layer copies them with eplb_go_copy_bytes / eplb_go_copy_doubles, then frees them. */
%typemap(gotype) char** out_json, double** out_loads, void** out_buffer "*uintptr"
%typemap(imtype) char** out_json, double** out_loads, void** out_buffer "*uintptr"
%typemap(in) char** out_json, double** out_loads, void** out_buffer %{ $1 = ($1_ltype)$input; %}

/* Handles written through T**: a *uintptr to a Go variable holding no Go pointer. */
%define EPLB_GO_OUT_HANDLE(T)
%typemap(gotype) T** "*uintptr"
%typemap(imtype) T** "*uintptr"
%typemap(in) T** %{ $1 = ($1_ltype)$input; %}
%enddef
EPLB_GO_OUT_HANDLE(eplb_planner)
EPLB_GO_OUT_HANDLE(eplb_placement)
EPLB_GO_OUT_HANDLE(eplb_snapshot)
EPLB_GO_OUT_HANDLE(eplb_tracker)
EPLB_GO_OUT_HANDLE(struct eplb_tracker)
EPLB_GO_OUT_HANDLE(eplb_migration)
EPLB_GO_OUT_HANDLE(eplb_split_workspace)
EPLB_GO_OUT_HANDLE(eplb_workload)
EPLB_GO_OUT_HANDLE(eplb_plan_control)

/* Single int32 arrays whose length is given by other parameters (rows x top_k). */
%typemap(gotype) const int32_t* topk_ids, const int32_t* rows, const int32_t* topk_slots,
                 const int32_t* source_gpu "[]int32"
%typemap(imtype) const int32_t* topk_ids, const int32_t* rows, const int32_t* topk_slots,
                 const int32_t* source_gpu "[]int32"
%typemap(in) const int32_t* topk_ids, const int32_t* rows, const int32_t* topk_slots,
             const int32_t* source_gpu %{ $1 = ($1_ltype)$input.array; %}

/* Info structs: the constructor sets struct_size (Go cannot take sizeof of a C struct). */
%define EPLB_SIZED_STRUCT(T)
%extend T {
  T() {
    T* value = (T*)calloc(1, sizeof(T));
    if (value != NULL) value->struct_size = (uint32_t)sizeof(T);
    return value;
  }
}
%enddef
EPLB_SIZED_STRUCT(eplb_placement_info)
EPLB_SIZED_STRUCT(eplb_snapshot_info)
EPLB_SIZED_STRUCT(eplb_metrics)
EPLB_SIZED_STRUCT(eplb_layer_metrics)
EPLB_SIZED_STRUCT(eplb_migration_summary)
EPLB_SIZED_STRUCT(eplb_plan_progress)
EPLB_SIZED_STRUCT(eplb_plan_near_report)

/* eplb_snapshot_options holds pointers, which cgo forbids filling with Go memory: these helpers
 * take the loads slice, the label, the tracker handle and the compression level as call
 * arguments and build the options in C. */
%ignore eplb_snapshot_options::loads;
%ignore eplb_snapshot_options::label;
%{
/* The options of eplb_go_snapshot_save(_to_buffer): empty loads, a NULL or "" label and a NULL
 * tracker are none, a compression level of 0 is the library default. */
static eplb_snapshot_options eplb_go_snapshot_options(const double* loads, size_t loads_len,
                                                      const char* label,
                                                      const eplb_tracker* tracker,
                                                      uint32_t compression_level) {
  eplb_snapshot_options options;
  eplb_snapshot_options_init(&options);
  if (loads_len > 0) {
    options.loads = loads;
    options.loads_len = loads_len;
  }
  if (label != NULL && label[0] != '\0') options.label = label;
  options.tracker = tracker;
  if (compression_level != 0) options.compression_level = compression_level;
  return options;
}
%}
%inline %{
eplb_status eplb_go_snapshot_save(const eplb_placement* placement, const double* loads,
                                  size_t loads_len, const char* label, const eplb_tracker* tracker,
                                  uint32_t compression_level, const char* path) {
  eplb_snapshot_options options =
      eplb_go_snapshot_options(loads, loads_len, label, tracker, compression_level);
  return eplb_snapshot_save(placement, &options, path);
}

/* As eplb_snapshot_save, into a library-owned buffer (eplb_buffer_free). */
eplb_status eplb_go_snapshot_save_to_buffer(const eplb_placement* placement, const double* loads,
                                            size_t loads_len, const char* label,
                                            const eplb_tracker* tracker,
                                            uint32_t compression_level, void** out_buffer,
                                            size_t* out_size) {
  eplb_snapshot_options options =
      eplb_go_snapshot_options(loads, loads_len, label, tracker, compression_level);
  return eplb_snapshot_save_to_buffer(placement, &options, out_buffer, out_size);
}

/* eplb_snapshot_save_statistics(_to_buffer) with the label (NULL or "": none) and the
 * compression level (0: the library default) as arguments. */
eplb_status eplb_go_snapshot_save_statistics(const eplb_tracker* tracker, const char* label,
                                             uint32_t compression_level, const char* path) {
  eplb_snapshot_options options =
      eplb_go_snapshot_options(NULL, 0, label, NULL, compression_level);
  return eplb_snapshot_save_statistics(tracker, &options, path);
}
eplb_status eplb_go_snapshot_save_statistics_to_buffer(const eplb_tracker* tracker,
                                                       const char* label,
                                                       uint32_t compression_level,
                                                       void** out_buffer, size_t* out_size) {
  eplb_snapshot_options options =
      eplb_go_snapshot_options(NULL, 0, label, NULL, compression_level);
  return eplb_snapshot_save_statistics_to_buffer(tracker, &options, out_buffer, out_size);
}

/* eplb_planner_plan_windows with its loads and their length side by side (the slice typemap). */
eplb_status eplb_go_planner_plan_windows(eplb_planner* planner, const double* loads,
                                         size_t loads_len, size_t num_windows,
                                         eplb_placement** out_placement) {
  return eplb_planner_plan_windows(planner, loads, num_windows, loads_len, out_placement);
}

/* Copy a library-owned buffer into Go memory (the caller knows its size). */
void eplb_go_copy_bytes(const void* source, char* out_bytes, size_t out_bytes_len) {
  if (source != NULL && out_bytes_len > 0) memcpy(out_bytes, source, out_bytes_len);
}
void eplb_go_copy_doubles(const void* source, double* out, size_t out_len) {
  if (source != NULL && out_len > 0) memcpy(out, source, out_len * sizeof(double));
}
%}

/* The GPU entry points (kernels, device tables, the NCCL communicator, the token exchange and
 * the migration executor) take device pointers and int32_t arrays that SWIG would map to Go's
 * 8-byte int. No Go wrapper uses them, so they are not generated: a Go program that drives GPUs
 * calls them through cgo itself. */
%rename("$ignore", regexmatch$name="^eplb_(kernel|device|comm|nccl|token)_") "";
%ignore eplb_migration_execute_step;

#define EPLB_API
%include "eplb/eplb.h"
