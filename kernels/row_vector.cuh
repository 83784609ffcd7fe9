// 16 bytes of a token row as floats, for fp32, fp16 and bf16 rows: how the row kernels
// (dispatch.cu, token_exchange.cu) load, sum in float32 and round back. CUDA only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace eplb::kernels {

template <typename Element>
struct RowVector;  // 16 bytes of a row as floats

template <>
struct RowVector<float> {
  static constexpr int kCount = 4;
  __device__ static void unpack(const uint4& v, float* out) {
    out[0] = __uint_as_float(v.x);
    out[1] = __uint_as_float(v.y);
    out[2] = __uint_as_float(v.z);
    out[3] = __uint_as_float(v.w);
  }
  __device__ static uint4 pack(const float* in) {
    return make_uint4(__float_as_uint(in[0]), __float_as_uint(in[1]), __float_as_uint(in[2]),
                      __float_as_uint(in[3]));
  }
};

__device__ __forceinline__ void split(unsigned word, unsigned short& low, unsigned short& high) {
  low = static_cast<unsigned short>(word & 0xffffu);
  high = static_cast<unsigned short>(word >> 16);
}

template <>
struct RowVector<__nv_bfloat16> {
  static constexpr int kCount = 8;
  __device__ static void unpack(const uint4& v, float* out) {
    const unsigned words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = __uint_as_float(words[i] << 16);
      out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
  }
  __device__ static uint4 pack(const float* in) {
    unsigned words[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const unsigned low = __bfloat16_as_ushort(__float2bfloat16_rn(in[2 * i]));
      const unsigned high = __bfloat16_as_ushort(__float2bfloat16_rn(in[2 * i + 1]));
      words[i] = low | (high << 16);
    }
    return make_uint4(words[0], words[1], words[2], words[3]);
  }
};

template <>
struct RowVector<__half> {
  static constexpr int kCount = 8;
  __device__ static void unpack(const uint4& v, float* out) {
    const unsigned words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      unsigned short low = 0;
      unsigned short high = 0;
      split(words[i], low, high);
      out[2 * i] = __half2float(__ushort_as_half(low));
      out[2 * i + 1] = __half2float(__ushort_as_half(high));
    }
  }
  __device__ static uint4 pack(const float* in) {
    unsigned words[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const unsigned low = __half_as_ushort(__float2half_rn(in[2 * i]));
      const unsigned high = __half_as_ushort(__float2half_rn(in[2 * i + 1]));
      words[i] = low | (high << 16);
    }
    return make_uint4(words[0], words[1], words[2], words[3]);
  }
};

}  // namespace eplb::kernels
