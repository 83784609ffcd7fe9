/* SWIG interface of the Python binding: the whole public header, wrapped for CPython.
 *
 * The module is `eplb.capi` (low level, one function per C entry point); the pythonic API lives
 * in the `eplb` package. Every declaration of eplb.h is picked up by the %include at the end, so
 * functions added to the header appear here without editing this file, as long as their
 * parameters follow the header's conventions:
 *   - (const double*|const int32_t*|const char*|const void*, size_t) pairs take any C-contiguous
 *     buffer of the right item type (numpy arrays, bytes) without a copy;
 *   - (double*|int32_t*, size_t) pairs are caller buffers, written in place (None: NULL, 0);
 *   - `const char* path` takes str, bytes or os.PathLike (os.fsencode; a NUL is refused);
 *   - `T** out_x` handles are returned; `uint32_t*|size_t*|double* out_x` scalars are returned;
 *   - an eplb_status other than EPLB_OK raises eplb.Error (a subclass per status) carrying the
 *     status and eplb_last_error_message(), read inside the same native call;
 *   - the GIL is released around every C call (`-threads`) except trivial getters.
 * Options and info structs get a constructor that sets struct_size (see EPLB_SIZED_STRUCT).
 * Functions whose arrays carry no length in C (the shared-expert waterfill, the dispatch kernels'
 * CPU references) are replaced by eplb_py_* wrappers under the same names that take every array
 * with its length and check it before the library reads anything; the routing and split kernels'
 * CPU references are left out (see the %ignore list).
 */
%module(package="eplb", threads="1") capi

%{
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eplb/eplb.h"

/* Raises eplb.Error for `status` with `message` (copied: the caller's pointer is the library's
 * thread-local buffer). The exception classes live in eplb/_errors.py. */
static void eplb_py_raise(eplb_status status, const char* message) {
  PyObject* module = PyImport_ImportModule("eplb._errors");
  if (module == NULL) return; /* ImportError is already set */
  /* Messages quote paths and documents byte for byte, which need not be UTF-8: such bytes read
   * as \xff rather than raising UnicodeDecodeError in place of the library's error. */
  PyObject* text = PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "backslashreplace");
  if (text == NULL) {
    Py_DECREF(module);
    return;
  }
  PyObject* error = PyObject_CallMethod(module, "_make_error", "iO", (int)status, text);
  Py_DECREF(text);
  Py_DECREF(module);
  if (error == NULL) return;
  PyErr_SetObject((PyObject*)Py_TYPE(error), error);
  Py_DECREF(error);
}

/* A refusal by the binding's own wrappers (a length the C function does not take, checked before
 * the call): the message the status typemap raises instead of eplb_last_error_message(). Set and
 * read by one thread within one wrapper call; empty otherwise. */
static _Thread_local char eplb_py_message[256];

static eplb_status eplb_py_refuse(const char* what, size_t got, size_t want, const char* unit) {
  snprintf(eplb_py_message, sizeof eplb_py_message, "%s has %zu %s, expected %zu", what, got,
           unit, want);
  return EPLB_ERR_INVALID_ARGUMENT;
}

/* a * b, or SIZE_MAX when it overflows (no buffer has that size, so a length check fails). */
static size_t eplb_py_mul(size_t a, size_t b) {
  return (b != 0 && a > SIZE_MAX / b) ? SIZE_MAX : a * b;
}

/* Fills `view` from a C-contiguous buffer of `itemsize`-byte items of one of `formats`
 * (struct-module codes, e.g. "d", "i"). `writable` asks for a writable buffer. */
static int eplb_py_get_buffer(PyObject* object, Py_buffer* view, Py_ssize_t itemsize,
                              const char* formats, int writable, const char* what) {
  int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(object, view, flags) != 0) {
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError,
                 "%s must be a C-contiguous%s buffer (e.g. a numpy array), got %s", what,
                 writable ? " writable" : "", Py_TYPE(object)->tp_name);
    return -1;
  }
  const char* format = view->format != NULL ? view->format : "B";
  if (*format == '@' || *format == '=' || *format == '<') ++format;
  if (view->itemsize != itemsize || strlen(format) != 1 || strchr(formats, *format) == NULL) {
    PyErr_Format(PyExc_TypeError, "%s has item format '%s' (%zd bytes); expected one of '%s' "
                 "with %zd bytes", what, view->format ? view->format : "B", view->itemsize,
                 formats, itemsize);
    PyBuffer_Release(view);
    return -1;
  }
  return 0;
}
%}

/* int64_t is `long` on the LP64 targets libeplb supports (x86-64 and aarch64 Linux): SWIG must
 * agree, or int64_t* arguments are passed as `long long*` (a C warning; the same 64 bits). */
#define SWIGWORDSIZE64
%include <stdint.i>
%include <typemaps.i>

/* ---- statuses ------------------------------------------------------------------------------ */
%typemap(out) eplb_status {
  if ($1 != EPLB_OK) {
    eplb_py_raise($1, eplb_py_message[0] != 0 ? eplb_py_message : eplb_last_error_message());
    eplb_py_message[0] = 0;
    SWIG_fail;
  }
  $result = SWIG_Py_Void();
}
/* eplb_status as a parameter (eplb_status_string) is a plain int. */
%typemap(in) eplb_status status {
  long value = PyLong_AsLong($input);
  if (value == -1 && PyErr_Occurred()) SWIG_fail;
  $1 = (eplb_status)value;
}

/* ---- input arrays: any C-contiguous buffer, no copy; None passes (NULL, 0), which the C API
 * accepts where the header says so (e.g. eplb_planner_plan_tracked's loads) and refuses with a
 * message elsewhere ---------------------------------------------------------------------------- */
%define EPLB_IN_BUFFER(CTYPE, ITEMSIZE, FORMATS)
%typemap(in) (const CTYPE* INPUT_BUFFER, size_t INPUT_LEN) (Py_buffer view, int have_view = 0),
             (const CTYPE*, size_t) (Py_buffer view, int have_view = 0) {
  if ($input == Py_None) {
    $1 = NULL;
    $2 = 0;
  } else {
    if (eplb_py_get_buffer($input, &view, ITEMSIZE, FORMATS, 0, "$1_name") != 0) SWIG_fail;
    have_view = 1;
    $1 = ($1_ltype)view.buf;
    $2 = (size_t)(view.len / ITEMSIZE);
  }
}
%typemap(freearg) (const CTYPE* INPUT_BUFFER, size_t INPUT_LEN), (const CTYPE*, size_t) {
  if (have_view$argnum) PyBuffer_Release(&view$argnum);
}
%enddef
EPLB_IN_BUFFER(double, 8, "d")
EPLB_IN_BUFFER(int32_t, 4, "il")
EPLB_IN_BUFFER(void, 1, "Bbc")
EPLB_IN_BUFFER(char, 1, "Bbc")
/* SWIG matches multi-argument typemaps by name: the header's names for (array, length) pairs. */
%apply (const double* INPUT_BUFFER, size_t INPUT_LEN) {
  (const double* loads, size_t loads_len), (const double* layer_loads, size_t layer_loads_len),
  (const double* weights, size_t weights_len), (const double* costs, size_t costs_len)
};
%apply (const int32_t* INPUT_BUFFER, size_t INPUT_LEN) {
  (const int32_t* phy2log, size_t phy2log_len), (const int32_t* ids, size_t ids_len),
  (const int32_t* counts, size_t counts_len), (const int32_t* counts_by_node, size_t counts_len),
  (const int32_t* quotas, size_t quotas_len), (const int32_t* rank_counts, size_t rank_counts_len)
};
%apply (const double* INPUT_BUFFER, size_t INPUT_LEN) {
  (const double* gpu_weights, size_t gpu_weights_len),
  (const double* gpu_extra_load, size_t gpu_extra_load_len)
};
%apply (const void* INPUT_BUFFER, size_t INPUT_LEN) { (const void* data, size_t size) };
%apply (const char* INPUT_BUFFER, size_t INPUT_LEN) { (const char* json, size_t json_len) };

/* File paths: str, bytes or os.PathLike, encoded as os.fsencode does (so any path the OS can
 * name, non-UTF-8 ones included); an embedded NUL is a ValueError, not a path cut short there
 * (SWIG's own char* conversion cut "a.eplb\0x" to "a.eplb" and refused bytes). */
%typemap(in) const char* path (PyObject* encoded = NULL) {
  if (!PyUnicode_FSConverter($input, &encoded)) SWIG_fail;
  $1 = PyBytes_AS_STRING(encoded);
}
%typemap(freearg) const char* path "Py_XDECREF(encoded$argnum);"

/* [rows][top_k] int32 matrices: the row count and width come from the array's shape. */
%typemap(in) (const int32_t* MATRIX, size_t ROWS, uint32_t WIDTH) (Py_buffer view, int have_view = 0) {
  if (eplb_py_get_buffer($input, &view, 4, "il", 0, "$1_name") != 0) SWIG_fail;
  have_view = 1;
  if (view.ndim != 2) {
    PyErr_Format(PyExc_ValueError, "$1_name must be 2-D [tokens][top_k], got %d dimensions",
                 view.ndim);
    SWIG_fail;
  }
  if ((unsigned long long)view.shape[1] > UINT32_MAX) {
    char message[160];
    snprintf(message, sizeof message, "$1_name has rows of %lld ids: top_k must fit a uint32",
             (long long)view.shape[1]);
    eplb_py_raise(EPLB_ERR_INVALID_ARGUMENT, message);
    SWIG_fail;
  }
  $1 = (int32_t*)view.buf;
  $2 = (size_t)view.shape[0];
  $3 = (uint32_t)view.shape[1];
}
%typemap(freearg) (const int32_t* MATRIX, size_t ROWS, uint32_t WIDTH) {
  if (have_view$argnum) PyBuffer_Release(&view$argnum);
}
%apply (const int32_t* MATRIX, size_t ROWS, uint32_t WIDTH) {
  (const int32_t* topk_ids, size_t num_tokens, uint32_t top_k),
  (const int32_t* rows, size_t num_rows, uint32_t top_k)
};

/* [windows][layers][experts] loads: the window count is the array's first dimension. */
%typemap(in) (const double* loads, size_t num_windows, size_t loads_len) (Py_buffer view, int have_view = 0) {
  if (eplb_py_get_buffer($input, &view, 8, "d", 0, "loads") != 0) SWIG_fail;
  have_view = 1;
  if (view.ndim < 1) {
    PyErr_SetString(PyExc_ValueError, "loads must be [windows][layers][experts]");
    SWIG_fail;
  }
  $1 = (double*)view.buf;
  $2 = (size_t)view.shape[0];
  $3 = (size_t)(view.len / 8);
}
%typemap(freearg) (const double* loads, size_t num_windows, size_t loads_len) {
  if (have_view$argnum) PyBuffer_Release(&view$argnum);
}

/* ---- output arrays: caller buffers written in place (None passes NULL, 0) ------------------- */
%define EPLB_OUT_BUFFER(CTYPE, ITEMSIZE, FORMATS)
%typemap(in) (CTYPE* OUTPUT_BUFFER, size_t OUTPUT_LEN) (Py_buffer view, int have_view = 0) {
  if ($input == Py_None) {
    $1 = NULL;
    $2 = 0;
  } else {
    if (eplb_py_get_buffer($input, &view, ITEMSIZE, FORMATS, 1, "$1_name") != 0) SWIG_fail;
    have_view = 1;
    $1 = ($1_ltype)view.buf;
    $2 = (size_t)(view.len / ITEMSIZE);
  }
}
%typemap(freearg) (CTYPE* OUTPUT_BUFFER, size_t OUTPUT_LEN) {
  if (have_view$argnum) PyBuffer_Release(&view$argnum);
}
%apply (CTYPE* OUTPUT_BUFFER, size_t OUTPUT_LEN) {
  (CTYPE* out, size_t out_len), (CTYPE* out_quotas, size_t out_quotas_len)
};
%enddef
EPLB_OUT_BUFFER(double, 8, "d")
EPLB_OUT_BUFFER(int32_t, 4, "il")
EPLB_OUT_BUFFER(uint32_t, 4, "I")
/* The binding's own wrappers (below) name their buffers py_*: the GPU functions with the C
 * names take device memory, which no Python buffer is. */
%apply (const int32_t* INPUT_BUFFER, size_t INPUT_LEN) {
  (const int32_t* py_source_gpu, size_t py_source_gpu_len)
};
%apply (double* OUTPUT_BUFFER, size_t OUTPUT_LEN) {
  (double* py_gpu_loads, size_t py_gpu_loads_len)
};
%apply (int32_t* OUTPUT_BUFFER, size_t OUTPUT_LEN) {
  (int32_t* py_out_topk, size_t py_out_topk_len)
};
%apply (const int32_t* MATRIX, size_t ROWS, uint32_t WIDTH) {
  (const int32_t* py_topk_slots, size_t py_num_tokens, uint32_t py_top_k)
};

EPLB_OUT_BUFFER(uint8_t, 1, "B?")
%apply (int32_t* OUTPUT_BUFFER, size_t OUTPUT_LEN) {
  (int32_t* py_tokens_per_expert, size_t py_tokens_per_expert_len),
  (int32_t* py_tokens_per_rank, size_t py_tokens_per_rank_len),
  (int32_t* py_tokens_per_node, size_t py_tokens_per_node_len),
  (int32_t* py_send_offsets, size_t py_send_offsets_len),
  (int32_t* py_sorted_ids, size_t py_sorted_ids_len),
  (int32_t* py_block_experts, size_t py_block_experts_len),
  (int32_t* py_expert_offsets, size_t py_expert_offsets_len),
  (int32_t* py_inverse, size_t py_inverse_len),
  (int32_t* py_total_padded, size_t py_total_padded_len)
};
%apply (uint8_t* OUTPUT_BUFFER, size_t OUTPUT_LEN) {
  (uint8_t* py_is_token_in_rank, size_t py_is_token_in_rank_len)
};
%apply (const int32_t* MATRIX, size_t ROWS, uint32_t WIDTH) {
  (const int32_t* py_topk_ids, size_t py_num_tokens, uint32_t py_top_k),
  (const int32_t* py_inverse_rows, size_t py_num_tokens, uint32_t py_top_k)
};
/* float32 weights (named: the header's (const float*, size_t) pairs are device memory). */
%typemap(in) (const float* py_weights, size_t py_weights_len) (Py_buffer view, int have_view = 0) {
  if (eplb_py_get_buffer($input, &view, 4, "f", 0, "weights") != 0) SWIG_fail;
  have_view = 1;
  $1 = (float*)view.buf;
  $2 = (size_t)(view.len / 4);
}
%typemap(freearg) (const float* py_weights, size_t py_weights_len) {
  if (have_view$argnum) PyBuffer_Release(&view$argnum);
}
/* Token rows of any element type (the row dtype is a separate argument): C-contiguous bytes. */
%typemap(in) (const void* py_rows, size_t py_rows_bytes) (Py_buffer view, int have_view = 0),
             (void* py_out_rows, size_t py_out_rows_bytes) (Py_buffer view, int have_view = 0) {
  int writable = strcmp("$1_name", "py_out_rows") == 0;
  int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer($input, &view, flags) != 0) {
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s buffer (e.g. a numpy array), "
                 "got %s", writable ? "output" : "rows", writable ? " writable" : "",
                 Py_TYPE($input)->tp_name);
    SWIG_fail;
  }
  have_view = 1;
  $1 = view.buf;
  $2 = (size_t)view.len;
}
%typemap(freearg) (const void* py_rows, size_t py_rows_bytes),
                  (void* py_out_rows, size_t py_out_rows_bytes) {
  if (have_view$argnum) PyBuffer_Release(&view$argnum);
}

/* Migration transfers (eight uint32 fields, no padding) into a caller's uint32 buffer of
 * [count][8] (numpy: view it with eplb.TRANSFER_DTYPE); None is the size query (NULL, 0). */
%typemap(in) (eplb_migration_transfer* out, size_t out_len) (Py_buffer view, int have_view = 0) {
  if ($input == Py_None) {
    $1 = NULL;
    $2 = 0;
  } else {
    if (eplb_py_get_buffer($input, &view, 4, "I", 1, "out") != 0) SWIG_fail;
    have_view = 1;
    if (view.len % (Py_ssize_t)sizeof(eplb_migration_transfer) != 0) {
      PyErr_Format(PyExc_ValueError, "out holds %zd uint32, not a whole number of transfers "
                   "(%zu each)", view.len / 4, sizeof(eplb_migration_transfer) / 4);
      SWIG_fail;
    }
    $1 = (eplb_migration_transfer*)view.buf;
    $2 = (size_t)view.len / sizeof(eplb_migration_transfer);
  }
}
%typemap(freearg) (eplb_migration_transfer* out, size_t out_len) {
  if (have_view$argnum) PyBuffer_Release(&view$argnum);
}
/* The library-owned copy comes back as bytes (the same layout) and is freed at once. */
%typemap(in, numinputs=0) (eplb_migration_transfer** out_transfers, size_t* out_count)
    (eplb_migration_transfer* transfers = NULL, size_t count = 0) {
  $1 = &transfers;
  $2 = &count;
}
%typemap(argout) (eplb_migration_transfer** out_transfers, size_t* out_count) {
  $result = SWIG_Python_AppendOutput($result, PyBytes_FromStringAndSize(
      (const char*)*$1, (Py_ssize_t)(*$2 * sizeof(eplb_migration_transfer))));
}
%typemap(freearg) (eplb_migration_transfer** out_transfers, size_t* out_count)
    "eplb_buffer_free(transfers$argnum);"

/* ---- outputs returned to Python -------------------------------------------------------------- */
/* Any handle written through `T**` comes back as a SWIG pointer owned by the caller. */
%typemap(in, numinputs=0) SWIGTYPE** ($*1_ltype handle = NULL) "$1 = &handle;"
%typemap(argout) SWIGTYPE** {
  $result = SWIG_Python_AppendOutput($result, SWIG_NewPointerObj(*$1, $*1_descriptor, 0));
}
/* Library-owned buffers become bytes (copied once) and are freed at once. */
%typemap(in, numinputs=0) (void** out_buffer, size_t* out_size) (void* buffer = NULL, size_t size = 0) {
  $1 = &buffer;
  $2 = &size;
}
%typemap(argout) (void** out_buffer, size_t* out_size) {
  $result = SWIG_Python_AppendOutput($result, PyBytes_FromStringAndSize((const char*)*$1, (Py_ssize_t)*$2));
}
%typemap(freearg) (void** out_buffer, size_t* out_size) "eplb_buffer_free(buffer$argnum);"
%typemap(in, numinputs=0) (char** out_json, size_t* out_len) (char* text = NULL, size_t size = 0) {
  $1 = &text;
  $2 = &size;
}
%typemap(argout) (char** out_json, size_t* out_len) {
  $result = SWIG_Python_AppendOutput($result, PyUnicode_DecodeUTF8(*$1, (Py_ssize_t)*$2, "strict"));
}
%typemap(freearg) (char** out_json, size_t* out_len) "eplb_buffer_free(text$argnum);"
%typemap(in, numinputs=0) double** out_loads (double* loads = NULL) "$1 = &loads;"
%typemap(argout) double** out_loads {
  /* The element count is only known with the shape outputs; returned as raw bytes here and
   * shaped by the caller (eplb.loads_from_sglang_json). */
  $result = SWIG_Python_AppendOutput($result, PyLong_FromVoidPtr(*$1));
}
%apply uint32_t* OUTPUT { uint32_t* out_algorithm, uint32_t* out_num_layers, uint32_t* out_num_experts };
%apply size_t* OUTPUT {
  size_t* out_rows, size_t* out_count, size_t* out_capacity, size_t* out_bytes
};
%apply double* OUTPUT { double* out_mean, double* out_optimum, double* out_bound };
%apply uint64_t* OUTPUT { uint64_t* out_batches, uint64_t* out_tokens };
%apply int32_t* OUTPUT { int32_t* out_count, int32_t* out_version };
/* Only the Python wrappers' names below: the GPU split kernels' out_max_load is device memory. */
%apply double* OUTPUT { double* py_out_max_load };
%apply int64_t* OUTPUT { int64_t* py_out_cross_node_tokens };

/* Trivial getters keep the GIL (releasing it costs more than the call). */
%nothread eplb_status_string;
%nothread eplb_last_error_message;
%nothread eplb_version_number;
%nothread eplb_version_string;
%nothread eplb_algorithm_count;
%nothread eplb_algorithm_name;
%nothread eplb_algorithm_description;
%nothread eplb_algorithm_from_name;
%nothread eplb_planner_options_init;
%nothread eplb_tracker_options_init;
%nothread eplb_snapshot_options_init;
%nothread eplb_migration_options_init;
%nothread eplb_workload_options_init;
%nothread eplb_plan_near_options_init;
%nothread eplb_buffer_free;
/* Lock-free and called from other threads while a plan runs (which has released the GIL). */
%nothread eplb_plan_control_cancel;
%nothread eplb_plan_control_get_progress;

/* Options and info structs: the constructor sets struct_size (and defaults, where the header has
 * an _init function). */
%define EPLB_SIZED_STRUCT(T)
%extend T {
  T() {
    T* value = (T*)calloc(1, sizeof(T));
    if (value != NULL) value->struct_size = (uint32_t)sizeof(T);
    return value;
  }
}
%enddef
%define EPLB_OPTIONS_STRUCT(T)
%extend T {
  T() {
    T* value = (T*)calloc(1, sizeof(T));
    if (value != NULL) T ## _init(value);
    return value;
  }
}
%enddef
EPLB_SIZED_STRUCT(eplb_placement_info)
EPLB_SIZED_STRUCT(eplb_snapshot_info)
EPLB_SIZED_STRUCT(eplb_metrics)
EPLB_SIZED_STRUCT(eplb_layer_metrics)
EPLB_OPTIONS_STRUCT(eplb_planner_options)
EPLB_OPTIONS_STRUCT(eplb_tracker_options)
EPLB_OPTIONS_STRUCT(eplb_snapshot_options)
EPLB_OPTIONS_STRUCT(eplb_workload_options)
EPLB_OPTIONS_STRUCT(eplb_migration_options)
EPLB_OPTIONS_STRUCT(eplb_token_exchange_options)
EPLB_SIZED_STRUCT(eplb_migration_summary)
EPLB_SIZED_STRUCT(eplb_device_tables_info)
EPLB_SIZED_STRUCT(eplb_plan_progress)
EPLB_OPTIONS_STRUCT(eplb_plan_near_options)
EPLB_SIZED_STRUCT(eplb_plan_near_report)

/* Pointer fields of eplb_snapshot_options are set from Python buffers that the caller keeps
 * alive until the save returns (eplb.save_snapshot does). */
%ignore eplb_snapshot_options::loads;
%ignore eplb_snapshot_options::label;
%extend eplb_snapshot_options {
  void set_loads(const double* INPUT_BUFFER, size_t INPUT_LEN) {
    $self->loads = INPUT_BUFFER;
    $self->loads_len = INPUT_LEN;
  }
  void set_label(const char* INPUT_BUFFER, size_t INPUT_LEN) {
    (void)INPUT_LEN;
    $self->label = INPUT_BUFFER;
  }
}

%pythoncode %{
def _loads_from_address(address, num_layers, num_experts):
    """Copies a library-owned double array into numpy and frees it."""
    import ctypes
    import numpy
    count = int(num_layers) * int(num_experts)
    try:
        array = numpy.ctypeslib.as_array((ctypes.c_double * count).from_address(address)).copy()
    finally:
        _buffer_free_address(address)
    return array.reshape(int(num_layers), int(num_experts))
%}
%inline %{
/* Frees a buffer given by address (see _loads_from_address). */
void _buffer_free_address(uintptr_t address) { eplb_buffer_free((void*)address); }
%}

/* The split solvers: Python sees eplb_py_split_solve* (below) under their names. */
%ignore eplb_split_solve;
%ignore eplb_split_solve_by_node;
%rename(eplb_split_solve) eplb_py_split_solve;
%rename(eplb_split_solve_by_node) eplb_py_split_solve_by_node;
%ignore eplb_py_gpu_len;
%ignore eplb_shared_expert_waterfill;
%rename(eplb_shared_expert_waterfill) eplb_py_shared_expert_waterfill;
/* The kernels' CPU references take output arrays without lengths: Python sees wrappers that take
 * each array with its length, check them, and bring their own scratch workspace. */
%ignore eplb_kernel_dispatch_layout_cpu;
%ignore eplb_kernel_expert_sort_cpu;
%ignore eplb_kernel_permute_cpu;
%ignore eplb_kernel_unpermute_cpu;
%rename(eplb_kernel_dispatch_layout_cpu) eplb_py_kernel_dispatch_layout_cpu;
%rename(eplb_kernel_expert_sort_cpu) eplb_py_kernel_expert_sort_cpu;
%rename(eplb_kernel_permute_cpu) eplb_py_kernel_permute_cpu;
%rename(eplb_kernel_unpermute_cpu) eplb_py_kernel_unpermute_cpu;
/* The other CPU references (record, map and record, fold, co-activation, split, waterfill) take
 * arrays whose lengths follow from their other arguments, unchecked: left out rather than let a
 * Python caller over-read; eplb.Tracker, eplb.split_solve and eplb.shared_expert_waterfill are
 * their checked equivalents. (The GPU entry points take device pointers, as in C.) */
%ignore eplb_kernel_record_load_cpu;
%ignore eplb_kernel_map_record_cpu;
%ignore eplb_kernel_fold_counts_cpu;
%ignore eplb_kernel_coactivation_cpu;
%ignore eplb_kernel_split_solve_cpu;
%ignore eplb_kernel_shared_waterfill_cpu;
%ignore eplb_py_mul;
%ignore eplb_py_row_bytes;

#define EPLB_API
%include "eplb/eplb.h"

/* The split solvers take two per-GPU arrays with one length; from Python each comes with its own
 * (None for NULL). Lengths that differ pass SIZE_MAX, which the library refuses (gpu_len must be
 * num_gpus), so no array is read past its end or silently cut short. */
%inline %{
static size_t eplb_py_gpu_len(const double* a, size_t a_len, const double* b, size_t b_len) {
  if (a == NULL) return b_len;
  if (b == NULL) return a_len;
  return a_len == b_len ? a_len : SIZE_MAX;
}
eplb_status eplb_py_split_solve(eplb_split_workspace* workspace, const eplb_placement* placement,
                                uint32_t layer, const int32_t* counts, size_t counts_len,
                                const double* gpu_weights, size_t gpu_weights_len,
                                const double* gpu_extra_load, size_t gpu_extra_load_len,
                                int32_t* out_quotas, size_t out_quotas_len,
                                double* py_out_max_load) {
  return eplb_split_solve(workspace, placement, layer, counts, counts_len, gpu_weights,
                          gpu_extra_load,
                          eplb_py_gpu_len(gpu_weights, gpu_weights_len, gpu_extra_load,
                                          gpu_extra_load_len),
                          out_quotas, out_quotas_len, py_out_max_load);
}
eplb_status eplb_py_split_solve_by_node(eplb_split_workspace* workspace,
                                        const eplb_placement* placement, uint32_t layer,
                                        const int32_t* counts_by_node, size_t counts_len,
                                        const double* gpu_weights, size_t gpu_weights_len,
                                        const double* gpu_extra_load, size_t gpu_extra_load_len,
                                        double slack, int32_t* out_quotas, size_t out_quotas_len,
                                        double* py_out_max_load,
                                        int64_t* py_out_cross_node_tokens) {
  return eplb_split_solve_by_node(workspace, placement, layer, counts_by_node, counts_len,
                                  gpu_weights, gpu_extra_load,
                                  eplb_py_gpu_len(gpu_weights, gpu_weights_len, gpu_extra_load,
                                                  gpu_extra_load_len),
                                  slack, out_quotas, out_quotas_len, py_out_max_load,
                                  py_out_cross_node_tokens);
}
/* The waterfill's source_gpu (num_tokens entries in C) and its two per-GPU arrays (one gpu_len
 * in C) come with their own lengths from Python; the wrapper checks them before the library reads
 * anything. */
eplb_status eplb_py_shared_expert_waterfill(const eplb_placement* placement,
                                            const int32_t* py_topk_slots, size_t py_num_tokens,
                                            uint32_t py_top_k, const int32_t* py_source_gpu,
                                            size_t py_source_gpu_len, const double* gpu_weights,
                                            size_t gpu_weights_len, double* py_gpu_loads,
                                            size_t py_gpu_loads_len, uint32_t flags,
                                            int32_t* py_out_topk, size_t py_out_topk_len) {
  if (py_source_gpu != NULL && py_source_gpu_len != py_num_tokens) {
    return eplb_py_refuse("source_gpu", py_source_gpu_len, py_num_tokens, "entries");
  }
  if (gpu_weights != NULL && py_gpu_loads != NULL && gpu_weights_len != py_gpu_loads_len) {
    return eplb_py_refuse("gpu_loads", py_gpu_loads_len, gpu_weights_len, "entries");
  }
  const size_t gpu_len = gpu_weights != NULL ? gpu_weights_len : py_gpu_loads_len;
  return eplb_shared_expert_waterfill(placement, py_topk_slots, py_num_tokens, py_top_k,
                                      py_source_gpu, gpu_weights, py_gpu_loads, gpu_len, flags,
                                      py_out_topk, py_out_topk_len);
}

/* Dispatch layout of one batch on the CPU: topk_ids [tokens][top_k] physical ids; outputs
 * tokens_per_expert [num_physical_experts], tokens_per_rank [num_ranks], tokens_per_node
 * [num_nodes], is_token_in_rank uint8 [tokens][num_ranks], send_offsets [tokens][num_ranks] or
 * None. */
eplb_status eplb_py_kernel_dispatch_layout_cpu(
    const int32_t* py_topk_ids, size_t py_num_tokens, uint32_t py_top_k,
    uint32_t num_physical_experts, uint32_t num_ranks, uint32_t num_nodes,
    int32_t* py_tokens_per_expert, size_t py_tokens_per_expert_len, int32_t* py_tokens_per_rank,
    size_t py_tokens_per_rank_len, int32_t* py_tokens_per_node, size_t py_tokens_per_node_len,
    uint8_t* py_is_token_in_rank, size_t py_is_token_in_rank_len, int32_t* py_send_offsets,
    size_t py_send_offsets_len) {
  size_t workspace_size = 0;
  eplb_status status = eplb_kernel_dispatch_layout_workspace_size(
      py_num_tokens, py_top_k, num_physical_experts, num_ranks, num_nodes, &workspace_size);
  if (status != EPLB_OK) return status; /* checks top_k, the topology and the size limits */
  const size_t per_rank = eplb_py_mul(py_num_tokens, num_ranks);
  if (py_tokens_per_expert_len != num_physical_experts) {
    return eplb_py_refuse("tokens_per_expert", py_tokens_per_expert_len, num_physical_experts,
                          "entries");
  }
  if (py_tokens_per_rank_len != num_ranks) {
    return eplb_py_refuse("tokens_per_rank", py_tokens_per_rank_len, num_ranks, "entries");
  }
  if (py_tokens_per_node_len != num_nodes) {
    return eplb_py_refuse("tokens_per_node", py_tokens_per_node_len, num_nodes, "entries");
  }
  if (py_is_token_in_rank_len != per_rank) {
    return eplb_py_refuse("is_token_in_rank", py_is_token_in_rank_len, per_rank, "entries");
  }
  if (py_send_offsets != NULL && py_send_offsets_len != per_rank) {
    return eplb_py_refuse("send_offsets", py_send_offsets_len, per_rank, "entries");
  }
  void* workspace = workspace_size != 0 ? malloc(workspace_size) : NULL;
  if (workspace_size != 0 && workspace == NULL) {
    snprintf(eplb_py_message, sizeof eplb_py_message, "workspace of %zu bytes", workspace_size);
    return EPLB_ERR_OUT_OF_MEMORY;
  }
  /* An empty output array is passed as NULL, as the header allows for length 0. */
  status = eplb_kernel_dispatch_layout_cpu(
      py_topk_ids, py_num_tokens, py_top_k, num_physical_experts, num_ranks, num_nodes,
      py_tokens_per_expert, py_tokens_per_rank, py_tokens_per_node,
      per_rank != 0 ? py_is_token_in_rank : NULL, per_rank != 0 ? py_send_offsets : NULL,
      workspace, workspace_size, NULL);
  free(workspace);
  return status;
}

/* Expert sort on the CPU: capacity is the length of sorted_ids; block_experts [capacity /
 * block_size], expert_offsets [num_experts + 1], inverse [tokens][top_k], total_padded [1]. */
eplb_status eplb_py_kernel_expert_sort_cpu(
    const int32_t* py_topk_ids, size_t py_num_tokens, uint32_t py_top_k, uint32_t num_experts,
    uint32_t block_size, int32_t* py_sorted_ids, size_t py_sorted_ids_len,
    int32_t* py_block_experts, size_t py_block_experts_len, int32_t* py_expert_offsets,
    size_t py_expert_offsets_len, int32_t* py_inverse, size_t py_inverse_len,
    int32_t* py_total_padded, size_t py_total_padded_len) {
  size_t minimum = 0, workspace_size = 0;
  eplb_status status = eplb_kernel_expert_sort_capacity(py_num_tokens, py_top_k, num_experts,
                                                        block_size, &minimum);
  if (status != EPLB_OK) return status; /* checks top_k, num_experts, block_size, the limits */
  status = eplb_kernel_expert_sort_workspace_size(py_num_tokens, py_top_k, num_experts,
                                                  &workspace_size);
  if (status != EPLB_OK) return status;
  /* A capacity below the minimum or not a multiple of block_size is the library's to refuse. */
  if (py_sorted_ids_len % block_size == 0 &&
      py_block_experts_len != py_sorted_ids_len / block_size) {
    return eplb_py_refuse("block_experts", py_block_experts_len, py_sorted_ids_len / block_size,
                          "entries");
  }
  if (py_expert_offsets_len != (size_t)num_experts + 1) {
    return eplb_py_refuse("expert_offsets", py_expert_offsets_len, (size_t)num_experts + 1,
                          "entries");
  }
  const size_t pairs = eplb_py_mul(py_num_tokens, py_top_k);
  if (py_inverse_len != pairs) return eplb_py_refuse("inverse", py_inverse_len, pairs, "entries");
  if (py_total_padded_len != 1) {
    return eplb_py_refuse("total_padded", py_total_padded_len, 1, "entries");
  }
  void* workspace = workspace_size != 0 ? malloc(workspace_size) : NULL;
  if (workspace_size != 0 && workspace == NULL) {
    snprintf(eplb_py_message, sizeof eplb_py_message, "workspace of %zu bytes", workspace_size);
    return EPLB_ERR_OUT_OF_MEMORY;
  }
  status = eplb_kernel_expert_sort_cpu(
      py_topk_ids, py_num_tokens, py_top_k, num_experts, block_size, py_sorted_ids_len,
      py_sorted_ids_len != 0 ? py_sorted_ids : NULL,
      py_block_experts_len != 0 ? py_block_experts : NULL, py_expert_offsets,
      pairs != 0 ? py_inverse : NULL, py_total_padded, workspace, workspace_size, NULL);
  free(workspace);
  return status;
}

/* Bytes of one row of `hidden` elements of `dtype`, or 0 for a dtype or hidden the library
 * refuses (it checks them first, before reading any array). */
static size_t eplb_py_row_bytes(uint32_t dtype, size_t hidden) {
  if (dtype > EPLB_ROW_DTYPE_BFLOAT16 || hidden == 0 || hidden % 8 != 0) return 0;
  return eplb_py_mul(hidden, dtype == EPLB_ROW_DTYPE_FLOAT32 ? 4 : 2);
}

/* Permute on the CPU: rows [tokens][hidden] of `dtype`, inverse [tokens][top_k] (tokens and top_k
 * from its shape), out [output_rows][hidden] (output_rows from its size). */
eplb_status eplb_py_kernel_permute_cpu(const void* py_rows, size_t py_rows_bytes, uint32_t dtype,
                                       size_t hidden, const int32_t* py_inverse_rows,
                                       size_t py_num_tokens, uint32_t py_top_k,
                                       void* py_out_rows, size_t py_out_rows_bytes) {
  const size_t row = eplb_py_row_bytes(dtype, hidden);
  if (row == 0) { /* the library names the bad dtype or hidden */
    return eplb_kernel_permute_cpu(NULL, dtype, py_num_tokens, py_top_k, hidden, NULL, 0, NULL,
                                   NULL);
  }
  const size_t input_bytes = eplb_py_mul(py_num_tokens, row);
  if (py_rows_bytes != input_bytes) {
    return eplb_py_refuse("input", py_rows_bytes, input_bytes, "bytes");
  }
  if (py_out_rows_bytes % row != 0) {
    return eplb_py_refuse("output", py_out_rows_bytes, py_out_rows_bytes / row * row, "bytes");
  }
  const size_t output_rows = py_out_rows_bytes / row;
  return eplb_kernel_permute_cpu(py_num_tokens != 0 ? py_rows : NULL, dtype, py_num_tokens,
                                 py_top_k, hidden, py_num_tokens != 0 ? py_inverse_rows : NULL,
                                 output_rows, output_rows != 0 ? py_out_rows : NULL, NULL);
}

/* Unpermute on the CPU: rows [permuted_rows][hidden] (permuted_rows from its size), inverse
 * [tokens][top_k], weights float32 [tokens][top_k], out [tokens][hidden]. */
eplb_status eplb_py_kernel_unpermute_cpu(const void* py_rows, size_t py_rows_bytes,
                                         uint32_t dtype, size_t hidden,
                                         const int32_t* py_inverse_rows, size_t py_num_tokens,
                                         uint32_t py_top_k, const float* py_weights,
                                         size_t py_weights_len, void* py_out_rows,
                                         size_t py_out_rows_bytes) {
  const size_t row = eplb_py_row_bytes(dtype, hidden);
  if (row == 0) {
    return eplb_kernel_unpermute_cpu(NULL, dtype, py_num_tokens, py_top_k, hidden, NULL, NULL, 0,
                                     NULL, NULL);
  }
  if (py_rows_bytes % row != 0) {
    return eplb_py_refuse("permuted", py_rows_bytes, py_rows_bytes / row * row, "bytes");
  }
  const size_t pairs = eplb_py_mul(py_num_tokens, py_top_k);
  if (py_weights_len != pairs) return eplb_py_refuse("weights", py_weights_len, pairs, "entries");
  const size_t output_bytes = eplb_py_mul(py_num_tokens, row);
  if (py_out_rows_bytes != output_bytes) {
    return eplb_py_refuse("output", py_out_rows_bytes, output_bytes, "bytes");
  }
  const size_t permuted_rows = py_rows_bytes / row;
  const int any = py_num_tokens != 0;
  return eplb_kernel_unpermute_cpu(permuted_rows != 0 ? py_rows : NULL, dtype, py_num_tokens,
                                   py_top_k, hidden, any ? py_inverse_rows : NULL,
                                   any ? py_weights : NULL, permuted_rows,
                                   any ? py_out_rows : NULL, NULL);
}
%}
