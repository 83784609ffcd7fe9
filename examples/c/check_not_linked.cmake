# Fails when EXE has libeplb among its NEEDED libraries (it must use dlopen only).
file(GET_RUNTIME_DEPENDENCIES EXECUTABLES "${EXE}" RESOLVED_DEPENDENCIES_VAR resolved
     UNRESOLVED_DEPENDENCIES_VAR unresolved)
foreach(dependency IN LISTS resolved unresolved)
  if(dependency MATCHES "libeplb")
    message(FATAL_ERROR "${EXE} links ${dependency}; it must load libeplb with dlopen only")
  endif()
endforeach()
message(STATUS "${EXE}: no link-time dependency on libeplb")
