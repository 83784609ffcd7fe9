// The target that precompiles <gtest/gtest.h> once for every test executable (tests/CMakeLists.txt,
// eplb_test_pch). Built, never run.
int main() { return 0; }
