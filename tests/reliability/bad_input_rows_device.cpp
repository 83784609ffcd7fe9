// Rows of the bad-input matrix (bad_input_matrix_test.cpp): GPU kernels and their CPU references,
// NCCL and the token exchange.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bad_input_world.hpp"
#include "support/token_exchange_options.hpp"

namespace bad_input {

// clang-format off
std::vector<Row> device_rows() {
  return {
  // Routing kernels (issue #7 items 1-3): host-checkable errors, the same with and without a GPU.
  {"eplb_device_tables_create", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { eplb_device_tables* t = nullptr; return eplb_device_tables_create(nullptr, 0, 0, EPLB_DEVICE_TABLES_HOST_ONLY, nullptr, &t); }},
    {"NULL out_tables", kInvalid, {"out_tables", "NULL"}, [](World& w) { return eplb_device_tables_create(w.placement, 0, 0, EPLB_DEVICE_TABLES_HOST_ONLY, nullptr, nullptr); }},
    {"gpu == num_gpus", kInvalid, {"gpu (4)"}, [](World& w) { return create_tables(w, 4, 0, EPLB_DEVICE_TABLES_HOST_ONLY); }},
    {"unknown flag", kInvalid, {"flags (2)"}, [](World& w) { return create_tables(w, 0, 0, 2); }},
    {"max_replicas above num_physical_experts", kInvalid, {"max_replicas (9)"}, [](World& w) { return create_tables(w, 0, 9, EPLB_DEVICE_TABLES_HOST_ONLY); }},
  }, {}, {}},
  {"eplb_device_tables_update", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World& w) { return eplb_device_tables_update(nullptr, w.placement, nullptr); }},
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { return eplb_device_tables_update(t, nullptr, nullptr); }); }},
    {"another shape", kInvalid, {"shape"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { return eplb_device_tables_update(t, w.other_shape, nullptr); }); }},
  }, {}, {}},
  {"eplb_device_tables_destroy", {}, "NULL is a no-op", [](World&) { eplb_device_tables_destroy(nullptr); return true; }},
  {"eplb_device_tables_get_info", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World&) { eplb_device_tables_info i{}; i.struct_size = sizeof(i); return eplb_device_tables_get_info(nullptr, &i); }},
    {"struct_size 0", kInvalid, {"struct_size (0)"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { eplb_device_tables_info i{}; return eplb_device_tables_get_info(t, &i); }); }},
    {"struct_size above 4096", kInvalid, {"struct_size (5000)", "looks uninitialised"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { eplb_device_tables_info i{}; i.struct_size = 5000; return eplb_device_tables_get_info(t, &i); }); }},
  }, {}, {}},
  {"eplb_device_tables_get_static_map", {
    {"NULL out", kInvalid, {"out", "NULL"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { return eplb_device_tables_get_static_map(t, nullptr, 8); }); }},
    {"out_len one short", kSmall, {"out_len (7)"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { int32_t o[8]; return eplb_device_tables_get_static_map(t, o, 7); }); }},
  }, {}, {}},
  {"eplb_kernel_record_load", {
    {"NULL counts", kInvalid, {"counts", "NULL"}, [](World& w) { return eplb_kernel_record_load(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, nullptr, nullptr, nullptr); }},
    {"unknown id_type", kInvalid, {"id_type (2)"}, [](World& w) { int64_t c[8]; return eplb_kernel_record_load(w.topk.data(), 2, 3, World::kTopK, 4, 2, 0, nullptr, c, nullptr); }},
    {"layer == num_layers", kInvalid, {"layer (2)"}, [](World& w) { int64_t c[8]; return eplb_kernel_record_load(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 2, nullptr, c, nullptr); }},
    {"counts at a 4-byte offset", kInvalid, {"counts", "8-byte aligned"}, [](World& w) { int64_t c[9]; return eplb_kernel_record_load(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, nullptr, misaligned(c, 4), nullptr); }},
  }, {}, {}},
  {"eplb_kernel_record_load_cpu", {
    {"NULL topk_ids with tokens", kInvalid, {"topk_ids", "NULL"}, [](World&) { int64_t c[8]; return eplb_kernel_record_load_cpu(nullptr, EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, nullptr, c, nullptr); }},
    {"top_k 0", kInvalid, {"top_k (0)"}, [](World& w) { int64_t c[8]; return eplb_kernel_record_load_cpu(w.topk.data(), EPLB_IDS_INT32, 3, 0, 4, 2, 0, nullptr, c, nullptr); }},
    {"int64 topk_ids at a 4-byte offset", kInvalid, {"topk_ids", "8-byte aligned"}, [](World&) { int64_t ids[7] = {}; int64_t c[8] = {}; const eplb_status s = eplb_kernel_record_load_cpu(misaligned(ids, 4), EPLB_IDS_INT64, 3, World::kTopK, 4, 2, 0, nullptr, c, nullptr); return c[0] == 0 ? s : EPLB_OK; }},
    {"misaligned enable_flag", kInvalid, {"enable_flag", "4-byte aligned"}, [](World& w) { int32_t f[2] = {1, 1}; int64_t c[8]; return eplb_kernel_record_load_cpu(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, misaligned(f), c, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_map_record", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World& w) { int32_t o[6]; return eplb_kernel_map_record(nullptr, 0, EPLB_MAP_STATIC, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, o, nullptr); }},
    {"host-only tables", kInvalid, {"HOST_ONLY"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { int32_t o[6]; return eplb_kernel_map_record(t, 0, EPLB_MAP_STATIC, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, o, nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_map_record_cpu", {
    {"unknown mode", kInvalid, {"mode (5)"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { int32_t o[6]; return eplb_kernel_map_record_cpu(t, 0, 5, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, o, nullptr); }); }},
    {"quota without quotas", kInvalid, {"quotas", "NULL"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { int32_t o[6]; return eplb_kernel_map_record_cpu(t, 0, EPLB_MAP_QUOTA, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, o, nullptr); }); }},
    {"layer == num_layers", kInvalid, {"layer (2)"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { int32_t o[6]; return eplb_kernel_map_record_cpu(t, 2, EPLB_MAP_STATIC, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, o, nullptr); }); }},
    {"NULL out_physical", kInvalid, {"out_physical", "NULL"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { return eplb_kernel_map_record_cpu(t, 0, EPLB_MAP_STATIC, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, nullptr, nullptr); }); }},
    {"misaligned out_physical", kInvalid, {"out_physical", "4-byte aligned"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { int32_t o[7]; return eplb_kernel_map_record_cpu(t, 0, EPLB_MAP_STATIC, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, misaligned(o), nullptr); }); }},
    {"misaligned quotas", kInvalid, {"quotas", "4-byte aligned"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { int32_t q[17] = {}; int32_t o[6]; return eplb_kernel_map_record_cpu(t, 0, EPLB_MAP_QUOTA, 0, misaligned(q, 2), w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, nullptr, o, nullptr); }); }},
    {"counts at a 4-byte offset", kInvalid, {"counts", "8-byte aligned"}, [](World& w) { return with_host_tables(w, [&](eplb_device_tables* t) { int64_t c[17] = {}; int32_t o[6]; return eplb_kernel_map_record_cpu(t, 0, EPLB_MAP_STATIC, 0, nullptr, w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, nullptr, misaligned(c, 4), o, nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_fold_counts", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World&) { int64_t p[16] = {}; int64_t l[8] = {}; return eplb_kernel_fold_counts(nullptr, p, l, nullptr); }},
    {"host-only tables", kInvalid, {"HOST_ONLY"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { int64_t p[16] = {}; int64_t l[8] = {}; return eplb_kernel_fold_counts(t, p, l, nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_fold_counts_cpu", {
    {"NULL physical_counts", kInvalid, {"physical_counts", "NULL"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { int64_t l[8]; return eplb_kernel_fold_counts_cpu(t, nullptr, l, nullptr); }); }},
    {"logical_counts at a 4-byte offset", kInvalid, {"logical_counts", "8-byte aligned"}, [](World& w) { return with_host_tables(w, [](eplb_device_tables* t) { int64_t p[16] = {}; int64_t l[9]; return eplb_kernel_fold_counts_cpu(t, p, misaligned(l, 4), nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_coactivation", {
    {"top_k above 64", kInvalid, {"top_k (65)"}, [](World& w) { int64_t c[12]; return eplb_kernel_coactivation(w.topk.data(), EPLB_IDS_INT32, 1, 65, 4, 2, 0, nullptr, c, 0, 0, 0, nullptr, nullptr); }},
    {"samples without a stride", kInvalid, {"sample_stride (0)"}, [](World& w) { int32_t o[6]; return eplb_kernel_coactivation(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, nullptr, nullptr, 0, 0, 3, o, nullptr); }},
    {"pair_counts at a 4-byte offset", kInvalid, {"pair_counts", "8-byte aligned"}, [](World& w) { int64_t c[13]; return eplb_kernel_coactivation(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, nullptr, misaligned(c, 4), 0, 0, 0, nullptr, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_coactivation_cpu", {
    {"num_experts 0", kInvalid, {"num_experts (0)"}, [](World& w) { int64_t c[12]; return eplb_kernel_coactivation_cpu(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 0, 2, 0, nullptr, c, 0, 0, 0, nullptr, nullptr); }},
    {"samples without out_samples", kInvalid, {"out_samples", "NULL"}, [](World& w) { return eplb_kernel_coactivation_cpu(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, nullptr, nullptr, 1, 0, 3, nullptr, nullptr); }},
    {"misaligned out_samples", kInvalid, {"out_samples", "4-byte aligned"}, [](World& w) { int32_t o[7]; return eplb_kernel_coactivation_cpu(w.topk.data(), EPLB_IDS_INT32, 3, World::kTopK, 4, 2, 0, nullptr, nullptr, 1, 0, 3, misaligned(o), nullptr); }},
  }, {}, {}},
  // Dispatch kernels (issue #7 items 4-5): host-checkable errors, so the status is the same with
  // and without a GPU (the GPU entry points check arguments before looking for a device).
  {"eplb_kernel_dispatch_layout_workspace_size", {
    {"NULL out_bytes", kInvalid, {"out_bytes", "NULL"}, [](World&) { return eplb_kernel_dispatch_layout_workspace_size(4, 2, 8, 4, 2, nullptr); }},
    {"num_ranks not dividing experts", kInvalid, {"num_ranks (3)"}, [](World&) { size_t b = 0; return eplb_kernel_dispatch_layout_workspace_size(4, 2, 8, 3, 1, &b); }},
  }, {}, {}},
  {"eplb_kernel_dispatch_layout", {
    {"num_nodes 0", kInvalid, {"num_nodes (0)"}, [](World&) { int32_t ids[2] = {0, 1}, e[8], r[4], n[2]; uint8_t in[8]; return eplb_kernel_dispatch_layout(ids, 2, 1, 8, 4, 0, e, r, n, in, nullptr, nullptr, 0, nullptr); }},
    {"top_k 0", kInvalid, {"top_k (0)"}, [](World&) { int32_t ids[2] = {0, 1}, e[8], r[4], n[2]; uint8_t in[8]; return eplb_kernel_dispatch_layout(ids, 2, 0, 8, 4, 2, e, r, n, in, nullptr, nullptr, 0, nullptr); }},
    {"misaligned topk_ids", kInvalid, {"topk_ids", "4-byte aligned"}, [](World&) { int32_t ids[3] = {0, 1, 2}, e[8], r[4], n[2]; uint8_t in[8]; alignas(4) unsigned char ws[256]; return eplb_kernel_dispatch_layout(misaligned(ids), 2, 1, 8, 4, 2, e, r, n, in, nullptr, ws, sizeof ws, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_dispatch_layout_cpu", {
    {"NULL tokens_per_expert", kInvalid, {"tokens_per_expert", "NULL"}, [](World&) { int32_t ids[2] = {0, 1}, r[4], n[2]; uint8_t in[8]; unsigned char ws[256]; return eplb_kernel_dispatch_layout_cpu(ids, 2, 1, 8, 4, 2, nullptr, r, n, in, nullptr, ws, sizeof ws, nullptr); }},
    {"short workspace", kInvalid, {"workspace_size (0)"}, [](World&) { int32_t ids[2] = {0, 1}, e[8], r[4], n[2]; uint8_t in[8]; return eplb_kernel_dispatch_layout_cpu(ids, 2, 1, 8, 4, 2, e, r, n, in, nullptr, nullptr, 0, nullptr); }},
    {"misaligned send_offsets", kInvalid, {"send_offsets", "4-byte aligned"}, [](World&) { int32_t ids[2] = {0, 1}, e[8], r[4], n[2], so[9]; uint8_t in[8]; alignas(4) unsigned char ws[256]; return eplb_kernel_dispatch_layout_cpu(ids, 2, 1, 8, 4, 2, e, r, n, in, misaligned(so), ws, sizeof ws, nullptr); }},
    {"misaligned workspace", kInvalid, {"workspace", "4-byte aligned"}, [](World&) { int32_t ids[2] = {0, 1}, e[8], r[4], n[2]; uint8_t in[8]; alignas(4) unsigned char ws[260]; return eplb_kernel_dispatch_layout_cpu(ids, 2, 1, 8, 4, 2, e, r, n, in, nullptr, ws + 1, 256, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_expert_sort_capacity", {
    {"NULL out_capacity", kInvalid, {"out_capacity", "NULL"}, [](World&) { return eplb_kernel_expert_sort_capacity(4, 2, 8, 16, nullptr); }},
    {"block_size 0", kInvalid, {"block_size (0)"}, [](World&) { size_t c = 0; return eplb_kernel_expert_sort_capacity(4, 2, 8, 0, &c); }},
    {"num_tokens * top_k overflows", kInvalid, {"num_tokens", "top_k"}, [](World&) { size_t c = 0; return eplb_kernel_expert_sort_capacity(kSizeMax / 2, 8, 8, 16, &c); }},
  }, {}, {}},
  {"eplb_kernel_expert_sort_workspace_size", {
    {"NULL out_bytes", kInvalid, {"out_bytes", "NULL"}, [](World&) { return eplb_kernel_expert_sort_workspace_size(4, 2, 8, nullptr); }},
    {"num_experts 0", kInvalid, {"num_experts (0)"}, [](World&) { size_t b = 0; return eplb_kernel_expert_sort_workspace_size(4, 2, 0, &b); }},
  }, {}, {}},
  {"eplb_kernel_expert_sort", {
    {"capacity too small", kInvalid, {"capacity (16)"}, [](World&) { int32_t ids[8] = {0, 1, 2, 3, 4, 5, 6, 7}, s[16], b[1], o[9], inv[8], t = 0; unsigned char ws[256]; return eplb_kernel_expert_sort(ids, 4, 2, 8, 16, 16, s, b, o, inv, &t, ws, sizeof ws, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_expert_sort_cpu", {
    {"NULL inverse", kInvalid, {"inverse", "NULL"}, [](World&) { int32_t ids[8] = {0, 1, 2, 3, 4, 5, 6, 7}, s[128], b[8], o[9], t = 0; unsigned char ws[256]; return eplb_kernel_expert_sort_cpu(ids, 4, 2, 8, 16, 128, s, b, o, nullptr, &t, ws, sizeof ws, nullptr); }},
    {"misaligned inverse", kInvalid, {"inverse", "4-byte aligned"}, [](World&) { int32_t ids[8] = {0, 1, 2, 3, 4, 5, 6, 7}, s[128], b[8], o[9], inv[9], t = 0; alignas(4) unsigned char ws[256]; return eplb_kernel_expert_sort_cpu(ids, 4, 2, 8, 16, 128, s, b, o, misaligned(inv), &t, ws, sizeof ws, nullptr); }},
    {"capacity not a multiple of block_size", kInvalid, {"capacity (130)"}, [](World&) { int32_t ids[8] = {0, 1, 2, 3, 4, 5, 6, 7}, s[130], b[8], o[9], inv[8], t = 0; unsigned char ws[256]; return eplb_kernel_expert_sort_cpu(ids, 4, 2, 8, 16, 130, s, b, o, inv, &t, ws, sizeof ws, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_permute", {
    {"hidden not a multiple of 8", kInvalid, {"hidden (12)"}, [](World&) { alignas(16) uint16_t in[64] = {}, out[64] = {}; const int32_t inv[2] = {0, 1}; return eplb_kernel_permute(in, EPLB_ROW_DTYPE_BFLOAT16, 2, 1, 12, inv, 2, out, nullptr); }},
    {"unknown dtype", kInvalid, {"dtype (7)"}, [](World&) { alignas(16) uint16_t in[64] = {}, out[64] = {}; const int32_t inv[2] = {0, 1}; return eplb_kernel_permute(in, 7, 2, 1, 16, inv, 2, out, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_permute_cpu", {
    {"NULL inverse", kInvalid, {"inverse", "NULL"}, [](World&) { alignas(16) uint16_t in[64] = {}, out[64] = {}; return eplb_kernel_permute_cpu(in, EPLB_ROW_DTYPE_FLOAT16, 2, 1, 16, nullptr, 2, out, nullptr); }},
    {"misaligned output", kInvalid, {"output", "16-byte aligned"}, [](World&) { alignas(16) uint16_t in[64] = {}, out[72] = {}; const int32_t inv[2] = {0, 1}; return eplb_kernel_permute_cpu(in, EPLB_ROW_DTYPE_FLOAT16, 2, 1, 16, inv, 2, out + 1, nullptr); }},
    {"misaligned inverse", kInvalid, {"inverse", "4-byte aligned"}, [](World&) { alignas(16) uint16_t in[64] = {}, out[64] = {}; const int32_t inv[3] = {0, 1, 0}; return eplb_kernel_permute_cpu(in, EPLB_ROW_DTYPE_FLOAT16, 2, 1, 16, misaligned(inv), 2, out, nullptr); }},
    {"hidden above 2^24", kInvalid, {"hidden (16777224)", "at most 2^24"}, [](World&) { alignas(16) uint16_t in[64] = {}, out[64] = {}; const int32_t inv[2] = {0, 1}; return eplb_kernel_permute_cpu(in, EPLB_ROW_DTYPE_FLOAT16, 2, 1, (size_t{1} << 24) + 8, inv, 2, out, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_unpermute", {
    {"hidden 0", kInvalid, {"hidden (0)"}, [](World&) { alignas(16) float in[32] = {}, out[32] = {}; const int32_t inv[2] = {0, 1}; const float w[2] = {1, 1}; return eplb_kernel_unpermute(in, EPLB_ROW_DTYPE_FLOAT32, 2, 1, 0, inv, w, 2, out, nullptr); }},
    {"hidden above 2^24", kInvalid, {"hidden (16777224)", "at most 2^24"}, [](World&) { alignas(16) float in[32] = {}, out[32] = {}; const int32_t inv[2] = {0, 1}; const float w[2] = {1, 1}; return eplb_kernel_unpermute(in, EPLB_ROW_DTYPE_FLOAT32, 2, 1, (size_t{1} << 24) + 8, inv, w, 2, out, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_unpermute_cpu", {
    {"NULL weights", kInvalid, {"weights", "NULL"}, [](World&) { alignas(16) float in[32] = {}, out[32] = {}; const int32_t inv[2] = {0, 1}; return eplb_kernel_unpermute_cpu(in, EPLB_ROW_DTYPE_FLOAT32, 2, 1, 16, inv, nullptr, 2, out, nullptr); }},
    {"top_k 0", kInvalid, {"top_k (0)"}, [](World&) { alignas(16) float in[32] = {}, out[32] = {}; const int32_t inv[2] = {0, 1}; const float w[2] = {1, 1}; return eplb_kernel_unpermute_cpu(in, EPLB_ROW_DTYPE_FLOAT32, 2, 0, 16, inv, w, 2, out, nullptr); }},
    {"misaligned weights", kInvalid, {"weights", "4-byte aligned"}, [](World&) { alignas(16) float in[32] = {}, out[32] = {}; const int32_t inv[2] = {0, 1}; const float w[3] = {1, 1, 1}; return eplb_kernel_unpermute_cpu(in, EPLB_ROW_DTYPE_FLOAT32, 2, 1, 16, inv, misaligned(w), 2, out, nullptr); }},
  }, {}, {}},
  // NCCL (issue #8): every bad input here is checked on the host before NCCL is loaded, so the
  // statuses are the same with or without NCCL, a GPU or NCCL support in the build.
  {"eplb_nccl_version", {
    {"NULL out_version", kInvalid, {"out_version", "NULL"}, [](World&) { return eplb_nccl_version(nullptr); }},
  }, {}, {}},
  {"eplb_comm_get_unique_id", {
    {"NULL out_id", kInvalid, {"out_id", "NULL"}, [](World&) { return eplb_comm_get_unique_id(nullptr, EPLB_COMM_UNIQUE_ID_BYTES); }},
    {"out_len one short", kSmall, {"128", "127"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES]; return eplb_comm_get_unique_id(id, EPLB_COMM_UNIQUE_ID_BYTES - 1); }},
  }, {}, {}},
  {"eplb_comm_create", {
    {"NULL unique_id", kInvalid, {"unique_id", "NULL"}, [](World&) { eplb_comm* c = nullptr; return eplb_comm_create(nullptr, EPLB_COMM_UNIQUE_ID_BYTES, 1, 0, -1, &c); }},
    {"NULL out_comm", kInvalid, {"out_comm", "NULL"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; return eplb_comm_create(id, sizeof(id), 1, 0, -1, nullptr); }},
    {"unique_id_len 64", kInvalid, {"unique_id_len (64)", "128"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; eplb_comm* c = sentinel<eplb_comm>(); const eplb_status s = eplb_comm_create(id, 64, 1, 0, -1, &c); if (c != sentinel<eplb_comm>()) ADD_FAILURE() << "comm_create wrote its output"; return s; }},
    {"nranks 0", kInvalid, {"nranks (0)"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; eplb_comm* c = nullptr; return eplb_comm_create(id, sizeof(id), 0, 0, -1, &c); }},
    {"rank == nranks", kInvalid, {"rank (2)", "[0, 2)"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; eplb_comm* c = nullptr; return eplb_comm_create(id, sizeof(id), 2, 2, -1, &c); }},
    {"rank -1", kInvalid, {"rank (-1)"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; eplb_comm* c = nullptr; return eplb_comm_create(id, sizeof(id), 2, -1, -1, &c); }},
    {"device -2", kInvalid, {"device (-2)"}, [](World&) { unsigned char id[EPLB_COMM_UNIQUE_ID_BYTES] = {}; eplb_comm* c = nullptr; return eplb_comm_create(id, sizeof(id), 1, 0, -2, &c); }},
  }, {}, {}},
  {"eplb_comm_adopt", {
    {"NULL nccl_comm", kInvalid, {"nccl_comm", "NULL"}, [](World&) { eplb_comm* c = nullptr; return eplb_comm_adopt(nullptr, &c); }},
    {"NULL out_comm", kInvalid, {"out_comm", "NULL"}, [](World&) { int fake = 0; return eplb_comm_adopt(&fake, nullptr); }},
  }, {}, {}},
  {"eplb_comm_destroy", {}, "NULL is a no-op", [](World&) { eplb_comm_destroy(nullptr); return true; }},
  {"eplb_comm_get_rank", {
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World&) { int32_t r = 0; return eplb_comm_get_rank(nullptr, &r); }},
  }, {}, {}},
  {"eplb_comm_get_size", {
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World&) { int32_t n = 0; return eplb_comm_get_size(nullptr, &n); }},
  }, {}, {}},
  {"eplb_comm_allreduce_tracker", {
    {"NULL local", kInvalid, {"local", "NULL"}, [](World& w) { return eplb_comm_allreduce_tracker(nullptr, nullptr, w.tracker); }},
    {"NULL out_sum", kInvalid, {"out_sum", "NULL"}, [](World& w) { return eplb_comm_allreduce_tracker(nullptr, w.tracker, nullptr); }},
    {"trackers of different top_k", kInvalid, {"differ", "top_k 2 vs 3"}, [](World& w) { return eplb_comm_allreduce_tracker(nullptr, w.tracker, w.other_tracker); }},
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World& w) { return eplb_comm_allreduce_tracker(nullptr, w.tracker, w.tracker); }},
  }, {}, {}},
  {"eplb_comm_allreduce", {
    {"dtype 5", kInvalid, {"dtype (5)"}, [](World&) { return eplb_comm_allreduce(nullptr, nullptr, 0, 5, EPLB_COMM_SUM, nullptr); }},
    {"op 3", kInvalid, {"op (3)"}, [](World&) { return eplb_comm_allreduce(nullptr, nullptr, 0, EPLB_COMM_INT64, 3, nullptr); }},
    {"NULL data with count 4", kInvalid, {"data is NULL", "4"}, [](World&) { return eplb_comm_allreduce(nullptr, nullptr, 4, EPLB_COMM_INT64, EPLB_COMM_SUM, nullptr); }},
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World&) { return eplb_comm_allreduce(nullptr, nullptr, 0, EPLB_COMM_INT64, EPLB_COMM_SUM, nullptr); }},
  }, {}, {}},
  {"eplb_migration_execute_step", {
    {"NULL migration", kInvalid, {"migration", "NULL"}, [](World&) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(nullptr, nullptr, 0, t, 8, b, 2, nullptr, 0, nullptr); }},
    {"step == num_steps", kInvalid, {"step", "out of range"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, w.migration_steps, t, 8, b, 2, nullptr, 0, nullptr); }},
    {"NULL tensor_bytes", kInvalid, {"tensor_bytes", "NULL"}, [](World& w) { void* t[8] = {}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 8, nullptr, 2, nullptr, 0, nullptr); }},
    {"num_tensors 0", kInvalid, {"num_tensors is 0"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 8, b, 0, nullptr, 0, nullptr); }},
    {"a tensor of 0 bytes", kInvalid, {"tensor_bytes[1] is 0"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 0}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 8, b, 2, nullptr, 0, nullptr); }},
    {"NULL slot_tensors", kInvalid, {"slot_tensors", "NULL"}, [](World& w) { const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, 0, nullptr, 8, b, 2, nullptr, 0, nullptr); }},
    {"slot_tensors_len one short", kInvalid, {"slot_tensors_len (7)", "8"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 7, b, 2, nullptr, 0, nullptr); }},
    {"NULL staging with staging_bytes 64", kInvalid, {"staging is NULL", "64"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 8, b, 2, nullptr, 64, nullptr); }},
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World& w) { void* t[8] = {}; const uint64_t b[2] = {8, 8}; return eplb_migration_execute_step(w.migration, nullptr, 0, t, 8, b, 2, nullptr, 0, nullptr); }},
  }, {}, {}},
  // Token dispatch and combine over NCCL: the options are checked before the communicator.
  {"eplb_token_exchange_options_init", {}, "NULL is a no-op", [](World&) { eplb_token_exchange_options_init(nullptr); return true; }},
  {"eplb_token_exchange_create", {
    {"NULL options", kInvalid, {"options", "NULL"}, [](World&) { eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, nullptr, &x); }},
    {"NULL out_exchange", kInvalid, {"out_exchange", "NULL"}, [](World&) { const auto o = eplb::test::small_token_exchange_options(); return eplb_token_exchange_create(nullptr, &o, nullptr); }},
    {"row_bytes 24", kInvalid, {"row_bytes (24)", "multiple of 16"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.row_bytes = 24; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"hidden 12", kInvalid, {"hidden (12)", "multiple of 8"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.hidden = 12; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"out_dtype 3", kInvalid, {"out_dtype (3)"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.out_dtype = 3; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"max_tokens 0", kInvalid, {"max_tokens (0)"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.max_tokens = 0; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"slots_per_rank 9000", kInvalid, {"slots_per_rank (9000)"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.slots_per_rank = 9000; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"struct_size 8", kInvalid, {"struct_size (8)"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.struct_size = 8; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"struct_size above 4096", kInvalid, {"struct_size (5000)", "looks uninitialised"}, [](World&) { auto o = eplb::test::small_token_exchange_options(); o.struct_size = 5000; eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
    {"NULL comm", kInvalid, {"comm", "NULL"}, [](World&) { const auto o = eplb::test::small_token_exchange_options(); eplb_token_exchange* x = nullptr; return eplb_token_exchange_create(nullptr, &o, &x); }},
  }, {}, {}},
  {"eplb_token_exchange_destroy", {}, "NULL is a no-op", [](World&) { eplb_token_exchange_destroy(nullptr); return true; }},
  {"eplb_token_exchange_dispatch", {
    {"NULL exchange", kInvalid, {"exchange", "NULL"}, [](World&) { uint64_t n = 0; return eplb_token_exchange_dispatch(nullptr, 0, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr, &n, nullptr); }},
  }, {}, {}},
  {"eplb_token_exchange_combine", {
    {"NULL exchange", kInvalid, {"exchange", "NULL"}, [](World&) { return eplb_token_exchange_combine(nullptr, nullptr, 0, nullptr, nullptr); }},
  }, {}, {}},
  // GPU replica split and shared-expert waterfill (issue #9): host-checkable errors, so the status
  // is the same with and without a GPU (the GPU entry points check arguments before the device).
  {"eplb_split_tables_create", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { return create_split_tables(nullptr, 0, 0, EPLB_SPLIT_TABLES_HOST_ONLY); }},
    {"NULL out_tables", kInvalid, {"out_tables", "NULL"}, [](World& w) { return create_split_tables(w.placement, 0, 0, EPLB_SPLIT_TABLES_HOST_ONLY, true); }},
    {"unknown flag", kInvalid, {"flags (2)"}, [](World& w) { return create_split_tables(w.placement, 0, 0, 2); }},
    {"first_layer == num_layers", kInvalid, {"first_layer (2)"}, [](World& w) { return create_split_tables(w.placement, 2, 0, EPLB_SPLIT_TABLES_HOST_ONLY); }},
    {"range past the last layer", kInvalid, {"first_layer + num_layers (3)"}, [](World& w) { return create_split_tables(w.placement, 1, 2, EPLB_SPLIT_TABLES_HOST_ONLY); }},
  }, {}, {}},
  {"eplb_split_tables_destroy", {}, "NULL is a no-op", [](World&) { eplb_split_tables_destroy(nullptr); return true; }},
  {"eplb_kernel_split_solve_workspace_size", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World&) { size_t b = 7; const eplb_status s = eplb_kernel_split_solve_workspace_size(nullptr, &b); return b == 7 ? s : EPLB_OK; }},
    {"NULL out_bytes", kInvalid, {"out_bytes", "NULL"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { return eplb_kernel_split_solve_workspace_size(t, nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_split_solve", {
    {"NULL tables", kInvalid, {"tables", "NULL"}, [](World&) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; return eplb_kernel_split_solve(nullptr, 0, c, nullptr, nullptr, q, nullptr, nullptr, 0, nullptr); }},
    {"host-only tables", kInvalid, {"HOST_ONLY"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; uint64_t ws[64]; return eplb_kernel_split_solve(t, 0, c, nullptr, nullptr, q, nullptr, ws, sizeof(ws), nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_split_solve_cpu", {
    {"layer == num_layers", kInvalid, {"layer (2)"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; uint64_t ws[64]; return eplb_kernel_split_solve_cpu(t, 2, c, nullptr, nullptr, q, nullptr, ws, sizeof(ws), nullptr); }); }},
    {"NULL counts", kInvalid, {"counts", "NULL"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { int32_t q[8]; uint64_t ws[64]; return eplb_kernel_split_solve_cpu(t, 0, nullptr, nullptr, nullptr, q, nullptr, ws, sizeof(ws), nullptr); }); }},
    {"NULL out_quotas", kInvalid, {"out_quotas", "NULL"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, 3, 4}; uint64_t ws[64]; return eplb_kernel_split_solve_cpu(t, 0, c, nullptr, nullptr, nullptr, nullptr, ws, sizeof(ws), nullptr); }); }},
    {"workspace_bytes 0", kInvalid, {"workspace_bytes (0)"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, 3, 4}; int32_t q[8]; return eplb_kernel_split_solve_cpu(t, 0, c, nullptr, nullptr, q, nullptr, nullptr, 0, nullptr); }); }},
    {"negative count", kInvalid, {"counts[2] = -1"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, -1, 4}; int32_t q[8] = {}; uint64_t ws[64]; const eplb_status s = eplb_kernel_split_solve_cpu(t, 0, c, nullptr, nullptr, q, nullptr, ws, sizeof(ws), nullptr); return q[0] == 0 ? s : EPLB_OK; }); }},
    {"NaN weight", kInvalid, {"gpu_weights[1]", "nan"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, 3, 4}; const double g[4] = {1, kNaN, 1, 1}; int32_t q[8]; uint64_t ws[64]; return eplb_kernel_split_solve_cpu(t, 0, c, g, nullptr, q, nullptr, ws, sizeof(ws), nullptr); }); }},
    {"gpu_weights at a 4-byte offset", kInvalid, {"gpu_weights", "8-byte aligned"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[4] = {1, 2, 3, 4}; const double g[5] = {1, 1, 1, 1, 1}; int32_t q[8]; uint64_t ws[64]; return eplb_kernel_split_solve_cpu(t, 0, c, misaligned(g, 4), nullptr, q, nullptr, ws, sizeof(ws), nullptr); }); }},
    {"misaligned counts", kInvalid, {"counts", "4-byte aligned"}, [](World& w) { return with_split_tables(w, [](eplb_split_tables* t) { const int32_t c[5] = {1, 2, 3, 4, 5}; int32_t q[8]; uint64_t ws[64]; return eplb_kernel_split_solve_cpu(t, 0, misaligned(c), nullptr, nullptr, q, nullptr, ws, sizeof(ws), nullptr); }); }},
  }, {}, {}},
  {"eplb_kernel_shared_waterfill_workspace_size", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World&) { size_t b = 0; return eplb_kernel_shared_waterfill_workspace_size(nullptr, 3, &b); }},
    {"NULL out_bytes", kInvalid, {"out_bytes", "NULL"}, [](World& w) { return eplb_kernel_shared_waterfill_workspace_size(w.placement, 3, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_shared_waterfill", {
    {"NULL placement", kInvalid, {"placement", "NULL"}, [](World& w) { int32_t o[9]; return eplb_kernel_shared_waterfill(nullptr, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"top_k 0", kInvalid, {"top_k (0)"}, [](World& w) { int32_t o[9]; return eplb_kernel_shared_waterfill(w.placement, w.topk.data(), 3, 0, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"top_k above 1024", kInvalid, {"top_k (1025)"}, [](World& w) { int32_t o[9]; return eplb_kernel_shared_waterfill(w.placement, w.topk.data(), 3, 1025, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"unknown flag", kInvalid, {"flags (2)"}, [](World& w) { int32_t o[9]; return eplb_kernel_shared_waterfill(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 2, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"NULL out_topk with tokens", kInvalid, {"out_topk", "NULL"}, [](World& w) { return eplb_kernel_shared_waterfill(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 0, nullptr, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
  }, {}, {}},
  {"eplb_kernel_shared_waterfill_cpu", {
    {"workspace_bytes one short", kInvalid, {"workspace_bytes"}, [](World& w) { int32_t o[9]; size_t b = 0; eplb_kernel_shared_waterfill_workspace_size(w.placement, 3, &b); return eplb_kernel_shared_waterfill_cpu(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), b - 1, nullptr); }},
    {"slot out of range", kInvalid, {"topk_slots[1] = 8"}, [](World& w) { const int32_t t[2] = {0, 8}; int32_t o[3] = {7, 7, 7}; const eplb_status s = eplb_kernel_shared_waterfill_cpu(w.placement, t, 1, World::kTopK, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); return o[0] == 7 ? s : EPLB_OK; }},
    {"source GPU out of range", kInvalid, {"source_gpu[2] = 4"}, [](World& w) { const int32_t src[3] = {0, 1, 4}; int32_t o[9]; return eplb_kernel_shared_waterfill_cpu(w.placement, w.topk.data(), 3, World::kTopK, src, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"misaligned out_topk", kInvalid, {"out_topk", "4-byte aligned"}, [](World& w) { int32_t o[10]; return eplb_kernel_shared_waterfill_cpu(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, nullptr, 0, misaligned(o), nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"gpu_loads at a 4-byte offset", kInvalid, {"gpu_loads", "8-byte aligned"}, [](World& w) { const double l[5] = {}; int32_t o[9]; return eplb_kernel_shared_waterfill_cpu(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, misaligned(l, 4), 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"NULL topk_slots with tokens", kInvalid, {"topk_slots", "NULL"}, [](World& w) { int32_t o[9]; return eplb_kernel_shared_waterfill_cpu(w.placement, nullptr, 3, World::kTopK, nullptr, nullptr, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"negative load", kInvalid, {"gpu_loads[1] = -1"}, [](World& w) { const double l[4] = {0, -1, 0, 0}; int32_t o[9]; return eplb_kernel_shared_waterfill_cpu(w.placement, w.topk.data(), 3, World::kTopK, nullptr, nullptr, l, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
    {"NaN weight", kInvalid, {"gpu_weights[2]", "nan"}, [](World& w) { const double g[4] = {1, 1, kNaN, 1}; int32_t o[9]; return eplb_kernel_shared_waterfill_cpu(w.placement, w.topk.data(), 3, World::kTopK, nullptr, g, nullptr, 0, o, nullptr, wf_ws(), kWfWsBytes, nullptr); }},
  }, {}, {}},
  };
}
// clang-format on

}  // namespace bad_input
