/* SWIG interface of the Go binding's low-level package (generated code committed; regenerate
 * with scripts/regen-bindings.sh). The whole public header is wrapped; the idiomatic API is the
 * parent package `eplb`.
 * - An eplb_status result becomes a Go `error` (nil or *Error with the status and the message):
 *   the message is read in the C wrapper, inside the same cgo call as the failing function, since
 *   Go may move a goroutine to another OS thread between two cgo calls.
 * - (const double*, size_t) / (const int32_t*, size_t) inputs and (double*, size_t) /
 *   (int32_t*, size_t) outputs are Go slices; C never keeps them.
 * - `T** out_x` handles are written through a *uintptr. */
%module capi

%{
#include <stdio.h>
#include <string.h>
#include "eplb/eplb.h"
%}

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

/* Status results: the C wrapper returns "" or "<status>:<message>". */
%typemap(gotype) eplb_status "error"
%typemap(imtype) eplb_status "string"
%typemap(out) eplb_status %{
  if ($1 == EPLB_OK) {
    $result = Swig_AllocateString("", 0);
  } else {
    char text[1100];
    int length = snprintf(text, sizeof text, "%d:%s", (int)$1, eplb_last_error_message());
    if (length < 0) length = 0;
    if ((size_t)length >= sizeof text) length = (int)sizeof text - 1;
    $result = Swig_AllocateString(text, (size_t)length);
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
%apply (const double* IN_SLICE, size_t IN_LEN) {
  (const double* loads, size_t loads_len), (const double* layer_loads, size_t layer_loads_len)
};
%apply (const int32_t* IN_SLICE, size_t IN_LEN) { (const int32_t* phy2log, size_t phy2log_len) };
%apply (double* OUT_SLICE, size_t OUT_LEN) { (double* out, size_t out_len) };
%apply (int32_t* OUT_SLICE, size_t OUT_LEN) { (int32_t* out, size_t out_len) };

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

/* Single int32 arrays whose length is given by other parameters (rows x top_k). */
%typemap(gotype) const int32_t* topk_ids, const int32_t* rows "[]int32"
%typemap(imtype) const int32_t* topk_ids, const int32_t* rows "[]int32"
%typemap(in) const int32_t* topk_ids, const int32_t* rows %{ $1 = ($1_ltype)$input.array; %}

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

/* eplb_snapshot_options holds pointers, which cgo forbids filling with Go memory: this helper
 * takes the loads slice and the label as call arguments and builds the options in C. */
%ignore eplb_snapshot_options::loads;
%ignore eplb_snapshot_options::label;
%inline %{
eplb_status eplb_go_snapshot_save(const eplb_placement* placement, const double* loads,
                                  size_t loads_len, const char* label, const char* path) {
  eplb_snapshot_options options;
  eplb_snapshot_options_init(&options);
  if (loads_len > 0) {
    options.loads = loads;
    options.loads_len = loads_len;
  }
  if (label != NULL && label[0] != '\0') options.label = label;
  return eplb_snapshot_save(placement, &options, path);
}
%}

#define EPLB_API
%include "eplb/eplb.h"
