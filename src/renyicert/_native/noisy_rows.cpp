// The CPU kernels of renyicert.native: the fused sampler, out[j] = x[row_input[j]] + scale * noise
// with Philox-4x32-10, and the majority-vote count of a model batch.
//
// The integers are those of Triton's tl.randint4x (and of renyicert.philox):
// counter (offset low, offset high, 0, 0), key (seed low, seed high), with
// offset = row_sample * groups + group and groups = ceil(numel / 4). The 32x32
// products are vpmuludq on the even and odd 32-bit lanes (AVX-512 or AVX2
// intrinsics; a scalar loop elsewhere), where the torch-compiled path and GCC's
// own vectorisation use the slow 64-bit vpmullq. log, cos and sin come from
// ATen's Vectorized<float> (SLEEF, 1 ulp). Rows are shared out over torch's
// intra-op thread pool (at::parallel_for, hence -fopenmp).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#endif

namespace {

constexpr uint32_t kRoundA = 0xD2511F53u;
constexpr uint32_t kRoundB = 0xCD9E8D57u;
constexpr uint32_t kKeyA = 0x9E3779B9u;
constexpr uint32_t kKeyB = 0xBB67AE85u;
constexpr int64_t kTile = 256;  // Philox counters per tile: 1024 noise values
constexpr float kTwoPowM32 = 2.3283064365386963e-10f;
constexpr float kTwoPowM31 = 4.656612873077393e-10f;
constexpr float kTwoPiTwoPowM32 = static_cast<float>(6.283185307179586 * 2.3283064365386963e-10);

using Vec = at::vec::Vectorized<float>;

// SIMD helpers for Philox on 16 (AVX-512) or 8 (AVX2) counters at a time.
#if defined(CPU_CAPABILITY_AVX512)
using Bits = __m512i;
inline Bits load_bits(const uint32_t* p) { return _mm512_loadu_si512(p); }
inline void store_bits(uint32_t* p, Bits v) { _mm512_storeu_si512(p, v); }
inline Bits broadcast(uint32_t v) { return _mm512_set1_epi32(static_cast<int>(v)); }
inline Bits xor3(Bits a, Bits b, Bits c) { return _mm512_xor_si512(_mm512_xor_si512(a, b), c); }
// The high and low words of a * m, lane by lane: vpmuludq on the even and the odd lanes.
inline void mul_hi_lo(Bits a, Bits m, Bits& hi, Bits& lo) {
  const Bits even = _mm512_mul_epu32(a, m);
  const Bits odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}
constexpr int64_t kBitsWidth = 16;
#define RENYICERT_SIMD_PHILOX 1
#elif defined(CPU_CAPABILITY_AVX2)
using Bits = __m256i;
inline Bits load_bits(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void store_bits(uint32_t* p, Bits v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline Bits broadcast(uint32_t v) { return _mm256_set1_epi32(static_cast<int>(v)); }
inline Bits xor3(Bits a, Bits b, Bits c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
inline void mul_hi_lo(Bits a, Bits m, Bits& hi, Bits& lo) {
  const Bits even = _mm256_mul_epu32(a, m);
  const Bits odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}
constexpr int64_t kBitsWidth = 8;
#define RENYICERT_SIMD_PHILOX 1
#endif

// Philox-4x32-10 for counters first_offset .. first_offset + count - 1 (count a multiple of Vec::size()).
inline void philox_tile(uint64_t first_offset, int64_t count, uint32_t key0, uint32_t key1,
                        uint32_t* __restrict r0, uint32_t* __restrict r1, uint32_t* __restrict r2,
                        uint32_t* __restrict r3) {
  for (int64_t g = 0; g < count; ++g) {
    const uint64_t offset = first_offset + static_cast<uint64_t>(g);
    r0[g] = static_cast<uint32_t>(offset);
    r1[g] = static_cast<uint32_t>(offset >> 32);
  }
#if defined(RENYICERT_SIMD_PHILOX)
  static_assert(kTile % kBitsWidth == 0 && Vec::size() % kBitsWidth == 0, "tiles hold whole SIMD vectors");
  const Bits round_a = broadcast(kRoundA);
  const Bits round_b = broadcast(kRoundB);
  for (int64_t g = 0; g < count; g += kBitsWidth) {
    Bits c0 = load_bits(r0 + g);
    Bits c1 = load_bits(r1 + g);
    Bits c2 = broadcast(0);
    Bits c3 = broadcast(0);
    uint32_t k0 = key0;
    uint32_t k1 = key1;
    for (int round = 0; round < 10; ++round) {
      Bits hi_a, lo_a, hi_b, lo_b;
      mul_hi_lo(c0, round_a, hi_a, lo_a);
      mul_hi_lo(c2, round_b, hi_b, lo_b);
      c0 = xor3(hi_b, c1, broadcast(k0));
      c1 = lo_b;
      c2 = xor3(hi_a, c3, broadcast(k1));
      c3 = lo_a;
      k0 += kKeyA;
      k1 += kKeyB;
    }
    store_bits(r0 + g, c0);
    store_bits(r1 + g, c1);
    store_bits(r2 + g, c2);
    store_bits(r3 + g, c3);
  }
#else
  for (int64_t g = 0; g < count; ++g) {
    uint32_t c0 = r0[g];
    uint32_t c1 = r1[g];
    uint32_t c2 = 0;
    uint32_t c3 = 0;
    uint32_t k0 = key0;
    uint32_t k1 = key1;
    for (int round = 0; round < 10; ++round) {
      const uint64_t product_a = static_cast<uint64_t>(c0) * kRoundA;
      const uint64_t product_b = static_cast<uint64_t>(c2) * kRoundB;
      c0 = static_cast<uint32_t>(product_b >> 32) ^ c1 ^ k0;
      c1 = static_cast<uint32_t>(product_b);
      c2 = static_cast<uint32_t>(product_a >> 32) ^ c3 ^ k1;
      c3 = static_cast<uint32_t>(product_a);
      k0 += kKeyA;
      k1 += kKeyB;
    }
    r0[g] = c0;
    r1[g] = c1;
    r2[g] = c2;
    r3[g] = c3;
  }
#endif
}

// The four noise vectors of counters g .. g + Vec::size() - 1 of a tile, lane by lane.
struct NoiseLanes {
  Vec lane[4];
};

// Box-Muller on (bits 0, bits 1) and (bits 2, bits 3): radius from the first of a pair, angle from the second.
inline NoiseLanes normal_lanes(const float* __restrict u, const float* __restrict angle, int64_t g) {
  NoiseLanes noise;
  const Vec minus_two(-2.0f);
  for (int pair = 0; pair < 2; ++pair) {
    const Vec radius = (minus_two * Vec::loadu(u + pair * kTile + g).log()).sqrt();
    const Vec theta = Vec::loadu(angle + pair * kTile + g);
    noise.lane[2 * pair] = radius * theta.cos();
    noise.lane[2 * pair + 1] = radius * theta.sin();
  }
  return noise;
}

// Each lane: magnitude -log(u) from the high 31 bits, negated when the low bit is set (sign = -1 or +1 below).
inline NoiseLanes laplace_lanes(const float* __restrict u, const float* __restrict sign, int64_t g) {
  NoiseLanes noise;
  for (int lane = 0; lane < 4; ++lane) {
    noise.lane[lane] = Vec::loadu(u + lane * kTile + g).log() * Vec::loadu(sign + lane * kTile + g);
  }
  return noise;
}

// Element 4 g + lane is lane `lane` of counter g: interleave four lane vectors into four element vectors.
inline void interleave_lanes(const NoiseLanes& noise, Vec* elements) {
  const auto lanes_02 = at::vec::interleave2(noise.lane[0], noise.lane[2]);
  const auto lanes_13 = at::vec::interleave2(noise.lane[1], noise.lane[3]);
  const auto low = at::vec::interleave2(lanes_02.first, lanes_13.first);
  const auto high = at::vec::interleave2(lanes_02.second, lanes_13.second);
  elements[0] = low.first;
  elements[1] = low.second;
  elements[2] = high.first;
  elements[3] = high.second;
}

void noisy_rows(at::Tensor out, const at::Tensor& x, const at::Tensor& row_input, const at::Tensor& row_sample,
                const at::Tensor& seeds, double scale_value, int64_t kind) {
  TORCH_CHECK(out.device().is_cpu() && x.device().is_cpu(), "noisy_rows: CPU tensors only");
  TORCH_CHECK(out.scalar_type() == at::kFloat && x.scalar_type() == at::kFloat, "noisy_rows: float32 only");
  TORCH_CHECK(row_input.scalar_type() == at::kLong && row_sample.scalar_type() == at::kLong &&
                  seeds.scalar_type() == at::kLong, "noisy_rows: int64 row_input, row_sample and seeds");
  TORCH_CHECK(out.dim() == 2 && x.dim() == 2 && out.size(1) == x.size(1), "noisy_rows: out (rows, numel), x (inputs, numel)");
  TORCH_CHECK(out.is_contiguous() && x.is_contiguous() && row_input.is_contiguous() && row_sample.is_contiguous() &&
                  seeds.is_contiguous(), "noisy_rows: contiguous tensors only");
  TORCH_CHECK(row_input.numel() == out.size(0) && row_sample.numel() == out.size(0), "noisy_rows: one row_input and row_sample per row");
  TORCH_CHECK(kind == 0 || kind == 1, "noisy_rows: kind 0 (normal) or 1 (laplace)");

  const int64_t rows = out.size(0);
  const int64_t numel = out.size(1);
  const int64_t groups = (numel + 3) / 4;
  const int64_t inputs = x.size(0);
  const float scale = static_cast<float>(scale_value);
  float* out_data = out.data_ptr<float>();
  const float* x_data = x.data_ptr<float>();
  const int64_t* input_of = row_input.data_ptr<int64_t>();
  const int64_t* sample_of = row_sample.data_ptr<int64_t>();
  const int64_t* seed_of = seeds.data_ptr<int64_t>();
  const int64_t keys = seeds.numel();
  for (int64_t j = 0; j < rows; ++j) {
    TORCH_CHECK(input_of[j] >= 0 && input_of[j] < inputs && input_of[j] < keys, "noisy_rows: row_input out of range (of x or of seeds)");
  }
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(numel, 1));

  // Rows that continue one counter stream are drawn as one: a run is a maximal sequence of rows with
  // one key whose samples are s0, s0 + 1, ... (each sample on one row, or on several consecutive rows that
  // share the draw: noise shared across inputs). When numel is a multiple of the SIMD width (and so of 4),
  // sample s0 + k is elements [k numel, (k + 1) numel) of the stream, so short rows (an MLP's 64 inputs)
  // do not pay a tile's set-up each; otherwise a run holds one sample and its rows, written row by row.
  const bool streams = numel % Vec::size() == 0;
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    alignas(64) uint32_t bits[4][kTile];
    alignas(64) float first[4 * kTile];   // normal: u of each pair; laplace: u of each lane
    alignas(64) float second[4 * kTile];  // normal: the angle of each pair; laplace: the sign of each lane
    alignas(64) float noise_tile[4 * kTile];
    constexpr int64_t width = Vec::size();
    const Vec scale_vec(scale);
    std::vector<int64_t> sample_rows;  // the first row of each sample of the run, and the run's end
    for (int64_t row = begin; row < end;) {
      const uint64_t seed = static_cast<uint64_t>(seed_of[input_of[row]]);
      const int64_t first_sample = sample_of[row];
      sample_rows.clear();
      int64_t next = row;
      while (next < end && static_cast<uint64_t>(seed_of[input_of[next]]) == seed &&
             sample_of[next] == first_sample + static_cast<int64_t>(sample_rows.size()) &&
             (streams || sample_rows.empty())) {
        sample_rows.push_back(next);
        const int64_t sample = sample_of[next];
        while (next < end && sample_of[next] == sample && static_cast<uint64_t>(seed_of[input_of[next]]) == seed) {
          ++next;
        }
      }
      sample_rows.push_back(next);
      const int64_t samples = static_cast<int64_t>(sample_rows.size()) - 1;
      const int64_t stream_groups = samples * groups;
      const uint64_t first_offset = static_cast<uint64_t>(first_sample) * static_cast<uint64_t>(groups);
      for (int64_t g0 = 0; g0 < stream_groups; g0 += kTile) {
        const int64_t count = std::min(kTile, stream_groups - g0);
        const int64_t padded = (count + width - 1) / width * width;
        philox_tile(first_offset + static_cast<uint64_t>(g0), padded, static_cast<uint32_t>(seed),
                    static_cast<uint32_t>(seed >> 32), bits[0], bits[1], bits[2], bits[3]);
        if (kind == 0) {
          for (int pair = 0; pair < 2; ++pair) {
            const uint32_t* a = bits[2 * pair];
            const uint32_t* b = bits[2 * pair + 1];
            float* u = first + pair * kTile;
            float* angle = second + pair * kTile;
            for (int64_t g = 0; g < padded; ++g) {
              u[g] = (static_cast<float>(a[g]) + 0.5f) * kTwoPowM32;
              angle[g] = static_cast<float>(b[g]) * kTwoPiTwoPowM32;
            }
          }
        } else {
          for (int lane = 0; lane < 4; ++lane) {
            const uint32_t* a = bits[lane];
            float* u = first + lane * kTile;
            float* sign = second + lane * kTile;
            for (int64_t g = 0; g < padded; ++g) {
              u[g] = (static_cast<float>(a[g] >> 1) + 0.5f) * kTwoPowM31;
              sign[g] = (a[g] & 1u) ? 1.0f : -1.0f;
            }
          }
        }
        // The tile's noise, element by element (element 4 g + lane is lane `lane` of counter g).
        for (int64_t g = 0; g < padded; g += width) {
          const NoiseLanes noise = kind == 0 ? normal_lanes(first, second, g) : laplace_lanes(first, second, g);
          Vec elements[4];
          interleave_lanes(noise, elements);
          for (int part = 0; part < 4; ++part) {
            elements[part].store(noise_tile + 4 * g + part * width);
          }
        }
        const int64_t e0 = 4 * g0;  // the tile's first element in the stream
        if (streams) {
          const int64_t length = std::min(4 * count, samples * numel - e0);
          for (int64_t e = 0; e < length; e += width) {
            const int64_t k = (e0 + e) / numel;
            const int64_t within = (e0 + e) - k * numel;
            const Vec noise = Vec::loadu(noise_tile + e) * scale_vec;
            for (int64_t r = sample_rows[k]; r < sample_rows[k + 1]; ++r) {
              (Vec::loadu(x_data + input_of[r] * numel + within) + noise).store(out_data + r * numel + within);
            }
          }
        } else {
          const int64_t length = std::min(4 * count, numel - e0);
          for (int64_t r = sample_rows[0]; r < sample_rows[1]; ++r) {
            const float* xs = x_data + input_of[r] * numel + e0;
            float* os = out_data + r * numel + e0;
            for (int64_t e = 0; e < length; ++e) {
              os[e] = xs[e] + noise_tile[e] * scale;
            }
          }
        }
      }
      row = next;
    }
  });
}

// Majority-vote counting for one model batch: counts[row_input[r] * C + argmax(logits[r])] += 1 for the
// first `valid` rows (argmax = the first largest logit, as torch.argmax). Returns false, counting nothing,
// when a logit among those rows is NaN or infinite.
template <typename scalar_t>
bool count_votes_typed(const at::Tensor& logits, const int64_t* input_of, int64_t* counts, int64_t valid) {
  const int64_t classes = logits.size(1);
  const scalar_t* data = logits.data_ptr<scalar_t>();
  // Not finite = all exponent bits set; an integer test on the bits, which the compiler vectorises.
  using bits_t = std::conditional_t<sizeof(scalar_t) == 4, uint32_t, uint64_t>;
  constexpr bits_t exponent = sizeof(scalar_t) == 4 ? bits_t(0x7F800000u) : bits_t(0x7FF0000000000000ull);
  const bits_t* raw = reinterpret_cast<const bits_t*>(data);
  bits_t non_finite = 0;
  for (int64_t i = 0; i < valid * classes; ++i) {
    non_finite |= static_cast<bits_t>((raw[i] & exponent) == exponent);
  }
  if (non_finite) {
    return false;
  }
  // Eight rows at a time: eight independent compare-and-select chains instead of one (branch-free:
  // a strictly larger logit moves the vote, so ties go to the first class).
  constexpr int64_t kRows = 8;
  int64_t r0 = 0;
  for (; r0 + kRows <= valid; r0 += kRows) {
    scalar_t largest[kRows];
    int64_t best[kRows];
    for (int64_t j = 0; j < kRows; ++j) {
      largest[j] = data[(r0 + j) * classes];
      best[j] = 0;
    }
    for (int64_t c = 1; c < classes; ++c) {
      for (int64_t j = 0; j < kRows; ++j) {
        const scalar_t value = data[(r0 + j) * classes + c];
        const bool larger = value > largest[j];
        largest[j] = larger ? value : largest[j];
        best[j] = larger ? c : best[j];
      }
    }
    for (int64_t j = 0; j < kRows; ++j) {
      counts[input_of[r0 + j] * classes + best[j]] += 1;
    }
  }
  for (int64_t r = r0; r < valid; ++r) {
    const scalar_t* row = data + r * classes;
    int64_t best = 0;
    scalar_t largest = row[0];
    for (int64_t c = 1; c < classes; ++c) {
      const bool larger = row[c] > largest;
      largest = larger ? row[c] : largest;
      best = larger ? c : best;
    }
    counts[input_of[r] * classes + best] += 1;
  }
  return true;
}

bool count_votes(const at::Tensor& logits, const at::Tensor& row_input, at::Tensor counts, int64_t valid) {
  TORCH_CHECK(logits.device().is_cpu() && logits.dim() == 2 && logits.is_contiguous(), "count_votes: contiguous (rows, classes) CPU logits");
  TORCH_CHECK(row_input.scalar_type() == at::kLong && row_input.is_contiguous() && counts.scalar_type() == at::kLong &&
                  counts.is_contiguous(), "count_votes: int64 row_input and counts");
  TORCH_CHECK(valid >= 0 && valid <= logits.size(0) && valid <= row_input.numel(), "count_votes: valid out of range");
  const int64_t* input_of = row_input.data_ptr<int64_t>();
  const int64_t slots = counts.numel();
  for (int64_t r = 0; r < valid; ++r) {
    TORCH_CHECK(input_of[r] >= 0 && (input_of[r] + 1) * logits.size(1) <= slots, "count_votes: row_input out of range");
  }
  if (logits.scalar_type() == at::kFloat) {
    return count_votes_typed<float>(logits, input_of, counts.data_ptr<int64_t>(), valid);
  }
  TORCH_CHECK(logits.scalar_type() == at::kDouble, "count_votes: float32 or float64 logits");
  return count_votes_typed<double>(logits, input_of, counts.data_ptr<int64_t>(), valid);
}

}  // namespace

TORCH_LIBRARY(renyicert_native, m) {
  m.def("noisy_rows(Tensor(a!) out, Tensor x, Tensor row_input, Tensor row_sample, Tensor seeds, float scale, int kind) -> ()");
  m.def("count_votes(Tensor logits, Tensor row_input, Tensor(a!) counts, int valid) -> bool");
}

TORCH_LIBRARY_IMPL(renyicert_native, CPU, m) {
  m.impl("noisy_rows", &noisy_rows);
  m.impl("count_votes", &count_votes);
}
