// The C handle of a communicator (eplb_comm), shared by the NCCL shims.
#pragma once

#include <memory>
#include <utility>

#include "../../nccl/communicator.hpp"
#include "eplb/eplb.h"

struct eplb_comm {
  explicit eplb_comm(std::unique_ptr<eplb::nccl::Communicator> c) : value(std::move(c)) {}
  std::unique_ptr<eplb::nccl::Communicator> value;
};
