// The exception firewall of the C API: every entry point runs its body through guard(), which
// turns any C++ exception into an eplb_status plus a thread-local message.
#pragma once

#include <exception>
#include <new>
#include <string>

#include "../../core/error.hpp"
#include "eplb/eplb.h"

namespace eplb::capi {

void clear_last_error() noexcept;
void set_last_error(const char* message) noexcept;
eplb_status status_of(Errc code) noexcept;

template <typename Body>
eplb_status guard(Body&& body) noexcept {
  clear_last_error();
  try {
    body();
    return EPLB_OK;
  } catch (const Error& error) {
    set_last_error(error.what());
    return status_of(error.code());
  } catch (const std::bad_alloc&) {
    set_last_error("out of memory");
    return EPLB_ERR_OUT_OF_MEMORY;
  } catch (const std::length_error& error) {
    set_last_error(error.what());
    return EPLB_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& error) {
    set_last_error(("internal error: " + std::string(error.what())).c_str());
    return EPLB_ERR_INTERNAL;
  } catch (...) {
    set_last_error("internal error: unknown exception");
    return EPLB_ERR_INTERNAL;
  }
}

// Throws Error(invalid_argument) "<name> is NULL" when pointer is null.
template <typename T>
void require_not_null(const T* pointer, const char* name) {
  if (pointer == nullptr) fail_invalid(name, " is NULL");
}

}  // namespace eplb::capi
