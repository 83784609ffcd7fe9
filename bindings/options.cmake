# Options for the bindings and examples: each is ON by default when its tools are found, and a
# skipped one says why in a STATUS message. Sanitizer and fuzzer builds skip them: CPython, cgo
# and cargo binaries do not carry the sanitizer runtime that an instrumented libeplb needs.
set(_eplb_bindings_ok ON)
if(EPLB_SANITIZE)
  set(_eplb_bindings_ok OFF)
  message(STATUS "libeplb: bindings skipped in sanitizer/fuzzer builds")
endif()

# Python: SWIG 4 and the Python headers (Debian: swig python3-dev python3-numpy).
set(_eplb_python_default OFF)
if(_eplb_bindings_ok)
  find_program(EPLB_SWIG_EXECUTABLE NAMES swig4.0 swig)
  find_package(Python3 COMPONENTS Interpreter Development.Module QUIET)
  if(EPLB_SWIG_EXECUTABLE AND Python3_Development.Module_FOUND)
    set(_eplb_python_default ON)
  else()
    message(STATUS "libeplb: Python binding skipped (needs swig and python3-dev)")
  endif()
endif()
option(EPLB_BUILD_PYTHON "Build the Python binding (bindings/python)" ${_eplb_python_default})

# Go: the go tool with cgo and a C compiler (Debian: golang-go).
set(_eplb_go_default OFF)
find_program(EPLB_GO_EXECUTABLE NAMES go PATHS /usr/lib/go/bin /usr/local/go/bin)
if(_eplb_bindings_ok)
  if(EPLB_GO_EXECUTABLE)
    set(_eplb_go_default ON)
  else()
    message(STATUS "libeplb: Go binding skipped (no `go` found; Debian: golang-go)")
  endif()
endif()
option(EPLB_BUILD_GO "Build and test the Go binding (bindings/go)" ${_eplb_go_default})

# Rust: cargo (rustup installs it in ~/.cargo/bin, which may not be on PATH).
set(_eplb_rust_default OFF)
find_program(EPLB_CARGO_EXECUTABLE NAMES cargo PATHS "$ENV{HOME}/.cargo/bin" /root/.cargo/bin)
if(_eplb_bindings_ok)
  if(EPLB_CARGO_EXECUTABLE)
    set(_eplb_rust_default ON)
  else()
    message(STATUS "libeplb: Rust binding skipped (no `cargo` found)")
  endif()
endif()
option(EPLB_BUILD_RUST "Build and test the Rust binding (bindings/rust)" ${_eplb_rust_default})

option(EPLB_BUILD_EXAMPLES "Build the examples (examples/) and run them as tests" ${_eplb_bindings_ok})
