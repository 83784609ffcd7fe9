# CTest python_wheel: builds the wheel, unpacks it into an empty directory and uses the package
# from there alone (libeplb inside the wheel, found through the module's $ORIGIN rpath).
file(REMOVE_RECURSE "${WHEEL_DIR}")
execute_process(COMMAND ${CMAKE_COMMAND} --build "${BUILD_DIR}" --target eplb_python_wheel
                RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "building the wheel failed")
endif()
file(GLOB wheels "${WHEEL_DIR}/eplb-*.whl")
list(LENGTH wheels count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "expected one wheel in ${WHEEL_DIR}, found: ${wheels}")
endif()
set(site "${WHEEL_DIR}/site")
file(REMOVE_RECURSE "${site}")
file(ARCHIVE_EXTRACT INPUT "${wheels}" DESTINATION "${site}")
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH PYTHONPATH=${site}
          ${PYTHON} -c "import eplb, os; assert eplb.__file__.startswith(os.environ['PYTHONPATH']), eplb.__file__; p, l, c = eplb.rebalance_experts([[1, 2, 3, 4]], 6, 1, 1, 2); assert c.sum() == 6; print('wheel ok:', eplb.version(), p.tolist())"
  WORKING_DIRECTORY "${site}"
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "the unpacked wheel does not import and plan")
endif()
