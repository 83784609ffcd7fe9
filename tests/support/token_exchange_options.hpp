// A small valid eplb_token_exchange_options (4 slots per rank, top-2, 32-byte rows, fp32 outputs
// of 8 elements, 16 tokens, exact variant), for tests that spoil one field at a time.
#pragma once

#include "eplb/eplb.h"

namespace eplb::test {

inline eplb_token_exchange_options small_token_exchange_options() {
  eplb_token_exchange_options o;
  eplb_token_exchange_options_init(&o);
  o.slots_per_rank = 4;
  o.top_k = 2;
  o.row_bytes = 32;
  o.hidden = 8;
  o.max_tokens = 16;
  return o;
}

}  // namespace eplb::test
