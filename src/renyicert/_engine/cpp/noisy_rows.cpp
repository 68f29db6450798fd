// The CPU kernels of renyicert.native: the fused sampler, out[j] = x[row_input[j]] + scale * noise
// with Philox-4x32-10, and the majority-vote count of a model batch.
//
// The integers are those of Triton's tl.randint4x (and of renyicert.philox):
// counter (offset low, offset high, 0, 0), key (seed low, seed high), with
// offset = row_sample * groups + group and groups = ceil(numel / 4). With AVX-512
// or AVX2, Philox runs on 64-bit lanes (vpmuludq gives a round's whole 32x32
// product, where the torch-compiled path and GCC's own vectorisation use the slow
// 64-bit vpmullq), four independent vectors at a time, and the words go straight
// from registers into the noise transform: no pass over memory in between. log
// comes from ATen's Vectorized<float> (SLEEF, 1 ulp), sin and cos from one SLEEF
// sincos (3.5 ulp, as ATen's own Vectorized cos and sin). Elsewhere a scalar loop
// computes the same numbers with <cmath>. Rows are shared out over torch's
// intra-op thread pool (at::parallel_for, hence -fopenmp).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#include <sleef.h>
#define RENYICERT_SIMD_PHILOX 1
#endif

namespace {

constexpr uint32_t kRoundA = 0xD2511F53u;
constexpr uint32_t kRoundB = 0xCD9E8D57u;
constexpr uint32_t kKeyA = 0x9E3779B9u;
constexpr uint32_t kKeyB = 0xBB67AE85u;
constexpr int kRounds = 10;
constexpr int64_t kTile = 256;  // Philox counters per tile: 1024 noise values
constexpr float kTwoPowM32 = 2.3283064365386963e-10f;
constexpr float kTwoPowM31 = 4.656612873077393e-10f;
constexpr float kTwoPiTwoPowM32 = static_cast<float>(6.283185307179586 * 2.3283064365386963e-10);
constexpr int64_t kNormal = 0;
constexpr int64_t kLaplace = 1;
constexpr int64_t kWords = 2;  // the raw Philox words, bit for bit (lattice noise draws its atoms from them)
constexpr int kGuideBits = 16;  // renyicert.lattice.GUIDE_BITS

using Vec = at::vec::Vectorized<float>;

#if defined(RENYICERT_SIMD_PHILOX)
// A 64-bit lane holds one counter's 32-bit word in its low half: vpmuludq then gives a round's whole
// product (low word in the low half, high word in the high half), so a round is two multiplies, two
// shifts and two three-way XORs, with no blends. The high halves collect garbage that the multiplies
// and the final narrowing ignore. `Words` holds Vec::size() 32-bit words: two `Wide`s narrowed.
#if defined(CPU_CAPABILITY_AVX512)
using Wide = __m512i;
using Words = __m512i;
constexpr int64_t kWideLanes = 8;
inline Wide wide_broadcast(uint64_t v) { return _mm512_set1_epi64(static_cast<long long>(v)); }
inline Wide wide_iota() { return _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0); }
inline Wide wide_add(Wide a, Wide b) { return _mm512_add_epi64(a, b); }
inline Wide wide_mul32(Wide a, Wide m) { return _mm512_mul_epu32(a, m); }
inline Wide wide_high32(Wide a) { return _mm512_srli_epi64(a, 32); }
inline Wide wide_xor3(Wide a, Wide b, Wide c) { return _mm512_ternarylogic_epi64(a, b, c, 0x96); }
inline Words narrow(Wide low, Wide high) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(low)), _mm512_cvtepi64_epi32(high), 1);
}
inline Vec words_to_float(Words w) { return Vec(_mm512_cvtepu32_ps(w)); }  // correctly rounded
inline Words words_shift_right_1(Words w) { return _mm512_srli_epi32(w, 1); }
inline Vec words_as_floats(Words w) { return Vec(_mm512_castsi512_ps(w)); }
// The float sign bit where the word's low bit is clear.
inline Vec sign_where_low_bit_clear(Words w) {
  return Vec(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_andnot_si512(w, _mm512_set1_epi32(1)), 31)));
}
inline void sin_cos(const Vec& theta, Vec& sine, Vec& cosine) {
  const Sleef___m512_2 both = Sleef_sincosf16_u35(theta);
  sine = Vec(both.x);
  cosine = Vec(both.y);
}
#else  // AVX2
using Wide = __m256i;
using Words = __m256i;
constexpr int64_t kWideLanes = 4;
inline Wide wide_broadcast(uint64_t v) { return _mm256_set1_epi64x(static_cast<long long>(v)); }
inline Wide wide_iota() { return _mm256_set_epi64x(3, 2, 1, 0); }
inline Wide wide_add(Wide a, Wide b) { return _mm256_add_epi64(a, b); }
inline Wide wide_mul32(Wide a, Wide m) { return _mm256_mul_epu32(a, m); }
inline Wide wide_high32(Wide a) { return _mm256_srli_epi64(a, 32); }
inline Wide wide_xor3(Wide a, Wide b, Wide c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
inline Words narrow(Wide low, Wide high) {
  const __m256i even = _mm256_set_epi32(7, 5, 3, 1, 6, 4, 2, 0);  // the low halves into the low 128 bits
  return _mm256_permute2x128_si256(_mm256_permutevar8x32_epi32(low, even), _mm256_permutevar8x32_epi32(high, even), 0x20);
}
// AVX2 converts signed words only: the high and low 16 bits are exact floats, and their sum rounds once.
inline Vec words_to_float(Words w) {
  const __m256 high = _mm256_cvtepi32_ps(_mm256_srli_epi32(w, 16));
  const __m256 low = _mm256_cvtepi32_ps(_mm256_and_si256(w, _mm256_set1_epi32(0xFFFF)));
  return Vec(_mm256_add_ps(_mm256_mul_ps(high, _mm256_set1_ps(65536.0f)), low));
}
inline Words words_shift_right_1(Words w) { return _mm256_srli_epi32(w, 1); }
inline Vec words_as_floats(Words w) { return Vec(_mm256_castsi256_ps(w)); }
inline Vec sign_where_low_bit_clear(Words w) {
  return Vec(_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_andnot_si256(w, _mm256_set1_epi32(1)), 31)));
}
inline void sin_cos(const Vec& theta, Vec& sine, Vec& cosine) {
  const Sleef___m256_2 both = Sleef_sincosf8_u35(theta);
  sine = Vec(both.x);
  cosine = Vec(both.y);
}
#endif
static_assert(Vec::size() == 2 * kWideLanes, "two Wides narrow into one Vec of words");

// Independent counter vectors in flight at once: a round's multiply-shift-XOR chain is ~7 cycles long,
// so one vector alone would leave the multiplier idle most of the time.
constexpr int64_t kChains = 4;
constexpr int64_t kBlock = kChains * kWideLanes;  // counters drawn at a time

struct RoundKeys {
  Wide key0[kRounds];
  Wide key1[kRounds];
  RoundKeys(uint32_t k0, uint32_t k1) {
    for (int round = 0; round < kRounds; ++round) {
      key0[round] = wide_broadcast(static_cast<uint32_t>(k0 + static_cast<uint32_t>(round) * kKeyA));
      key1[round] = wide_broadcast(static_cast<uint32_t>(k1 + static_cast<uint32_t>(round) * kKeyB));
    }
  }
};

// Element 4 g + lane is lane `lane` of counter g: four lane vectors into four element vectors.
inline void store_interleaved(const Vec (&lane)[4], float* out) {
  const auto lanes_02 = at::vec::interleave2(lane[0], lane[2]);
  const auto lanes_13 = at::vec::interleave2(lane[1], lane[3]);
  const auto low = at::vec::interleave2(lanes_02.first, lanes_13.first);
  const auto high = at::vec::interleave2(lanes_02.second, lanes_13.second);
  low.first.store(out);
  low.second.store(out + Vec::size());
  high.first.store(out + 2 * Vec::size());
  high.second.store(out + 3 * Vec::size());
}

// The noise of counters first_offset .. first_offset + kBlock - 1: 4 kBlock floats into `out`.
inline void noise_block(uint64_t first_offset, const RoundKeys& keys, int64_t kind, float* __restrict out) {
  const Wide round_a = wide_broadcast(kRoundA);
  const Wide round_b = wide_broadcast(kRoundB);
  const Wide iota = wide_iota();
  Wide c0[kChains], c1[kChains], c2[kChains], c3[kChains];  // fully unrolled below: kept in registers
#pragma GCC unroll 8
  for (int64_t chain = 0; chain < kChains; ++chain) {
    const Wide offset = wide_add(wide_broadcast(first_offset + static_cast<uint64_t>(chain * kWideLanes)), iota);
    c0[chain] = offset;  // the multiply reads the low word only
    c1[chain] = wide_high32(offset);
    c2[chain] = wide_broadcast(0);
    c3[chain] = wide_broadcast(0);
  }
#pragma GCC unroll 10
  for (int round = 0; round < kRounds; ++round) {
#pragma GCC unroll 8
    for (int64_t chain = 0; chain < kChains; ++chain) {
      const Wide product_a = wide_mul32(c0[chain], round_a);
      const Wide product_b = wide_mul32(c2[chain], round_b);
      c0[chain] = wide_xor3(wide_high32(product_b), c1[chain], keys.key0[round]);
      c1[chain] = product_b;
      c2[chain] = wide_xor3(wide_high32(product_a), c3[chain], keys.key1[round]);
      c3[chain] = product_a;
    }
  }
  for (int64_t half = 0; half < kChains / 2; ++half) {
    const Words words[4] = {narrow(c0[2 * half], c0[2 * half + 1]), narrow(c1[2 * half], c1[2 * half + 1]),
                            narrow(c2[2 * half], c2[2 * half + 1]), narrow(c3[2 * half], c3[2 * half + 1])};
    Vec lane[4];
    if (kind == kNormal) {  // Box-Muller on (words 0, 1) and (words 2, 3): radius from the first, angle from the second
      for (int pair = 0; pair < 2; ++pair) {
        const Vec u = (words_to_float(words[2 * pair]) + Vec(0.5f)) * Vec(kTwoPowM32);
        const Vec radius = (Vec(-2.0f) * u.log()).sqrt();
        Vec sine, cosine;
        sin_cos(words_to_float(words[2 * pair + 1]) * Vec(kTwoPiTwoPowM32), sine, cosine);
        lane[2 * pair] = radius * cosine;
        lane[2 * pair + 1] = radius * sine;
      }
    } else if (kind == kLaplace) {  // magnitude -log(u) from the high 31 bits, negative when the low bit is set
      for (int i = 0; i < 4; ++i) {
        const Vec u = (words_to_float(words_shift_right_1(words[i])) + Vec(0.5f)) * Vec(kTwoPowM31);
        lane[i] = u.log() ^ sign_where_low_bit_clear(words[i]);
      }
    } else {  // kWords: the words' bits, stored through float lanes unchanged
      for (int i = 0; i < 4; ++i) {
        lane[i] = words_as_floats(words[i]);
      }
    }
    store_interleaved(lane, out + 4 * half * Vec::size());
  }
}
#else  // no SIMD: one counter at a time, the same arithmetic in <cmath>
constexpr int64_t kBlock = 1;

struct RoundKeys {
  uint32_t key0;
  uint32_t key1;
  RoundKeys(uint32_t k0, uint32_t k1) : key0(k0), key1(k1) {}
};

inline void noise_block(uint64_t offset, const RoundKeys& keys, int64_t kind, float* __restrict out) {
  uint32_t c0 = static_cast<uint32_t>(offset);
  uint32_t c1 = static_cast<uint32_t>(offset >> 32);
  uint32_t c2 = 0;
  uint32_t c3 = 0;
  uint32_t k0 = keys.key0;
  uint32_t k1 = keys.key1;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t product_a = static_cast<uint64_t>(c0) * kRoundA;
    const uint64_t product_b = static_cast<uint64_t>(c2) * kRoundB;
    c0 = static_cast<uint32_t>(product_b >> 32) ^ c1 ^ k0;
    c1 = static_cast<uint32_t>(product_b);
    c2 = static_cast<uint32_t>(product_a >> 32) ^ c3 ^ k1;
    c3 = static_cast<uint32_t>(product_a);
    k0 += kKeyA;
    k1 += kKeyB;
  }
  const uint32_t words[4] = {c0, c1, c2, c3};
  if (kind == kWords) {
    std::memcpy(out, words, sizeof(words));
    return;
  }
  if (kind == kNormal) {
    for (int pair = 0; pair < 2; ++pair) {
      const float radius = std::sqrt(-2.0f * std::log((static_cast<float>(words[2 * pair]) + 0.5f) * kTwoPowM32));
      const float theta = static_cast<float>(words[2 * pair + 1]) * kTwoPiTwoPowM32;
      out[2 * pair] = radius * std::cos(theta);
      out[2 * pair + 1] = radius * std::sin(theta);
    }
  } else {
    for (int i = 0; i < 4; ++i) {
      const float log_u = std::log((static_cast<float>(words[i] >> 1) + 0.5f) * kTwoPowM31);
      out[i] = (words[i] & 1u) ? log_u : -log_u;
    }
  }
}
#endif
static_assert(kTile % kBlock == 0, "a tile holds whole blocks");

// out[e] = x[e] + noise[e] * scale (vectorised by the compiler; no FMA, as the other paths round).
inline void add_scaled_noise(float* __restrict out, const float* __restrict x, const float* __restrict noise,
                             int64_t length, float scale) {
  for (int64_t e = 0; e < length; ++e) {
    out[e] = x[e] + noise[e] * scale;
  }
}

// Whether every one of the first `rows` entries of input_of is in [0, limit) (one pass, no branch per row).
inline bool rows_in_range(const int64_t* input_of, int64_t rows, int64_t limit) {
  bool in_range = true;
  for (int64_t r = 0; r < rows; ++r) {
    in_range &= input_of[r] >= 0 && input_of[r] < limit;
  }
  return in_range;
}

// The sampler's core: out[j] = x[row_input[j]] + scale * noise for rows j < rows, on validated pointers
// (row_input in range of x and of seeds; `kind` kNormal or kLaplace).
void write_noisy_rows(float* out_data, const float* x_data, const int64_t* input_of, const int64_t* sample_of,
                      const int64_t* seed_of, int64_t rows, int64_t numel, float scale, int64_t kind) {
  const int64_t groups = (numel + 3) / 4;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(numel, 1));

  // Rows that continue one counter stream are drawn as one: a run is a maximal sequence of rows with
  // one key whose samples are s0, s0 + 1, ... (each sample on one row, or on several consecutive rows that
  // share the draw: noise shared across inputs). Sample s0 + k is elements [k stride, k stride + numel)
  // of the run's stream (stride = 4 groups; the last stride - numel values of a sample are not used), so
  // short rows (an MLP's 64 inputs) do not pay a tile's set-up each.
  const int64_t stride = 4 * groups;
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    alignas(64) float noise_tile[4 * kTile];
    std::vector<int64_t> sample_rows;  // the first row of each sample of the run, and the run's end
    for (int64_t row = begin; row < end;) {
      const uint64_t seed = static_cast<uint64_t>(seed_of[input_of[row]]);
      const int64_t first_sample = sample_of[row];
      sample_rows.clear();
      int64_t next = row;
      while (next < end && static_cast<uint64_t>(seed_of[input_of[next]]) == seed &&
             sample_of[next] == first_sample + static_cast<int64_t>(sample_rows.size())) {
        sample_rows.push_back(next);
        const int64_t sample = sample_of[next];
        while (next < end && sample_of[next] == sample && static_cast<uint64_t>(seed_of[input_of[next]]) == seed) {
          ++next;
        }
      }
      sample_rows.push_back(next);
      const int64_t stream_groups = (static_cast<int64_t>(sample_rows.size()) - 1) * groups;
      const uint64_t first_offset = static_cast<uint64_t>(first_sample) * static_cast<uint64_t>(groups);
      const RoundKeys keys(static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
      for (int64_t g0 = 0; g0 < stream_groups; g0 += kTile) {
        const int64_t count = std::min(kTile, stream_groups - g0);
        for (int64_t g = 0; g < count; g += kBlock) {  // element 4 g + lane is lane `lane` of counter g
          noise_block(first_offset + static_cast<uint64_t>(g0 + g), keys, kind, noise_tile + 4 * g);
        }
        // The tile holds stream elements [tile_begin, tile_end): add them to the rows of each sample they cover.
        const int64_t tile_begin = 4 * g0;
        const int64_t tile_end = 4 * (g0 + count);
        int64_t k = tile_begin / stride;
        for (int64_t sample_begin = k * stride; sample_begin < tile_end; sample_begin += stride, ++k) {
          const int64_t from = std::max(tile_begin, sample_begin);
          const int64_t to = std::min(tile_end, sample_begin + numel);
          for (int64_t r = sample_rows[k]; from < to && r < sample_rows[k + 1]; ++r) {
            const int64_t within = from - sample_begin;
            add_scaled_noise(out_data + r * numel + within, x_data + input_of[r] * numel + within,
                             noise_tile + (from - tile_begin), to - from, scale);
          }
        }
      }
      row = next;
    }
  });
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
  TORCH_CHECK(kind == kNormal || kind == kLaplace, "noisy_rows: kind 0 (normal) or 1 (laplace)");

  const int64_t rows = out.size(0);
  const int64_t numel = out.size(1);
  const int64_t inputs = x.size(0);
  const float scale = static_cast<float>(scale_value);
  float* out_data = out.data_ptr<float>();
  const float* x_data = x.data_ptr<float>();
  const int64_t* input_of = row_input.data_ptr<int64_t>();
  const int64_t* sample_of = row_sample.data_ptr<int64_t>();
  const int64_t* seed_of = seeds.data_ptr<int64_t>();
  const int64_t key_count = seeds.numel();
  TORCH_CHECK(rows_in_range(input_of, rows, std::min(inputs, key_count)), "noisy_rows: row_input out of range (of x or of seeds)");
  write_noisy_rows(out_data, x_data, input_of, sample_of, seed_of, rows, numel, scale, kind);
}

// The atom of one 64-bit draw: the number of `ends` at or below `value` (= U - 2^63). It lies in
// [guide[bucket], guide[bucket + 1]] (`guide` has 2^16 + 1 entries, the last `atoms`), so only the bucket's ends
// are compared: none in almost every bucket of the body (a central atom spans many buckets), one or a few at its
// atoms' edges, a bisection in the tails, where one bucket holds many atoms.
constexpr int64_t kNarrowBucket = 4;  // a bucket of more ends than this is searched by bisection

inline int64_t atom_index(uint64_t u, const int64_t* ends, const int32_t* guide) {
  const int64_t value = static_cast<int64_t>(u ^ (uint64_t{1} << 63));
  const int64_t bucket = static_cast<int64_t>(u >> (64 - kGuideBits));
  const int64_t low = guide[bucket];
  const int64_t high = guide[bucket + 1];
  if (high - low > kNarrowBucket) return std::upper_bound(ends + low, ends + high, value) - ends;
  int64_t index = low;
  while (index < high && ends[index] <= value) ++index;
  return index;
}

#if defined(RENYICERT_SIMD_PHILOX)
// The scalar half of atoms_of_lanes, the same for AVX-512 and AVX2: each lane's guide pair
// guide[b] | guide[b + 1] << 32 (one 8-byte load), then, after `open` (the lanes whose bucket holds an end) is
// known, those lanes' atoms by atom_index.
inline void guide_pairs(const uint64_t* draws, const int32_t* guide, int64_t* pairs) {
  for (int64_t lane = 0; lane < kWideLanes; ++lane) std::memcpy(&pairs[lane], guide + (draws[lane] >> (64 - kGuideBits)), sizeof(int64_t));
}
inline void finish_open_lanes(unsigned open, const uint64_t* draws, const int64_t* ends, const int32_t* guide, int64_t* lanes) {
  for (int64_t lane = 0; lane < kWideLanes; ++lane) {
    if (open & (1u << lane)) lanes[lane] = atom_index(draws[lane], ends, guide);
  }
}

// The atoms of Wide's lanes at once (elements i .. i + kWideLanes - 1, from their word pairs `w`): the draws,
// their buckets and the results in SIMD; the guide read with scalar loads (faster than a gather on the CPUs we
// measured, AMD Zen 4 among them); the lanes whose bucket holds an end finished by atom_index. Writes
// k + min(index, atoms - 1) + lowest to `integers` and returns whether a lane failed.
#if defined(CPU_CAPABILITY_AVX512)
inline bool atoms_of_lanes(const uint32_t* w, const int64_t* k, const int64_t* ends, const int32_t* guide, int64_t atoms, int64_t start,
                           int64_t lowest, int32_t* integers) {
  alignas(64) uint64_t draws[kWideLanes];
  alignas(64) int64_t lanes[kWideLanes];
  const __m512i u = _mm512_ror_epi64(_mm512_loadu_si512(w), 32);  // (w[2i] << 32) | w[2i + 1]
  const __m512i value = _mm512_xor_si512(u, _mm512_set1_epi64(INT64_MIN));
  _mm512_store_si512(draws, u);
  guide_pairs(draws, guide, lanes);
  const __m512i pair = _mm512_load_si512(lanes);
  __m512i index = _mm512_and_si512(pair, _mm512_set1_epi64(0xFFFFFFFF));
  const __mmask8 open = _mm512_cmpneq_epi64_mask(_mm512_srli_epi64(pair, 32), index);  // the bucket holds an end
  if (open != 0) {
    _mm512_store_si512(lanes, index);
    finish_open_lanes(open, draws, ends, guide, lanes);
    index = _mm512_load_si512(lanes);
  }
  const __mmask8 failed = _mm512_cmpge_epi64_mask(index, _mm512_set1_epi64(atoms)) | _mm512_cmplt_epi64_mask(value, _mm512_set1_epi64(start));
  const __m512i atom = _mm512_min_epi64(index, _mm512_set1_epi64(atoms - 1));
  const __m512i sum = _mm512_add_epi64(_mm512_add_epi64(_mm512_loadu_si512(k), atom), _mm512_set1_epi64(lowest));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(integers), _mm512_cvtepi64_epi32(sum));  // |k + j| < 2^24
  return failed != 0;
}
#else  // AVX2: no mask registers, no 64-bit min; a true compare is all ones
inline bool atoms_of_lanes(const uint32_t* w, const int64_t* k, const int64_t* ends, const int32_t* guide, int64_t atoms, int64_t start,
                           int64_t lowest, int32_t* integers) {
  alignas(32) uint64_t draws[kWideLanes];
  alignas(32) int64_t lanes[kWideLanes];
  const __m256i u = _mm256_shuffle_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)), 0xB1);  // (w[2i] << 32) | w[2i + 1]
  const __m256i value = _mm256_xor_si256(u, _mm256_set1_epi64x(INT64_MIN));
  _mm256_store_si256(reinterpret_cast<__m256i*>(draws), u);
  guide_pairs(draws, guide, lanes);
  const __m256i pair = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
  __m256i index = _mm256_and_si256(pair, _mm256_set1_epi64x(0xFFFFFFFF));
  const unsigned open = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_srli_epi64(pair, 32), index))) ^ 0xF;
  if (open != 0) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), index);
    finish_open_lanes(open, draws, ends, guide, lanes);
    index = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
  }
  const __m256i last = _mm256_set1_epi64x(atoms - 1);
  const __m256i past = _mm256_cmpgt_epi64(index, last);
  const __m256i failed = _mm256_or_si256(past, _mm256_cmpgt_epi64(_mm256_set1_epi64x(start), value));
  const __m256i atom = _mm256_blendv_epi8(index, last, past);
  const __m256i sum = _mm256_add_epi64(_mm256_add_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(k)), atom), _mm256_set1_epi64x(lowest));
  const __m256i even = _mm256_set_epi32(7, 5, 3, 1, 6, 4, 2, 0);  // the low halves into the low 128 bits
  _mm_storeu_si128(reinterpret_cast<__m128i*>(integers), _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(sum, even)));  // |k + j| < 2^24
  return _mm256_movemask_pd(_mm256_castsi256_pd(failed)) != 0;
}
#endif
#endif

// Lattice noise (renyicert.lattice): out[j, e] = (k[row_input[j], e] + atom) / grid, the atom drawn from the
// 64-bit integer U = (word 2e << 32) | word 2e + 1 of the row's stream (counter row_sample * ceil(numel / 2) + e / 2)
// by inversion against the thresholds `ends` (stored as U - 2^63), the guide table (2^16 + 1 entries, the last `atoms`)
// giving each U's bucket of candidates. failed[j] = 1 when any element's U falls outside the atoms (below
// `start` or at or past ends[atoms - 1]).
void write_lattice_rows(float* out_data, int32_t* failed, const int64_t* k_data, const int64_t* input_of, const int64_t* sample_of,
                        const int64_t* seed_of, int64_t rows, int64_t numel, const int64_t* ends, int64_t atoms, const int32_t* guide,
                        int64_t start, int64_t lowest, float grid) {
  const int64_t groups = (numel + 1) / 2;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(numel, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    alignas(64) uint32_t words[4 * kTile];
    alignas(64) int32_t integers[2 * kTile];
    for (int64_t row = begin; row < end; ++row) {
      const uint64_t seed = static_cast<uint64_t>(seed_of[input_of[row]]);
      const RoundKeys keys(static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
      const uint64_t first_offset = static_cast<uint64_t>(sample_of[row]) * static_cast<uint64_t>(groups);
      const int64_t* k_row = k_data + input_of[row] * numel;
      float* out_row = out_data + row * numel;
      bool row_failed = false;
      for (int64_t g0 = 0; g0 < groups; g0 += kTile) {
        const int64_t count = std::min(kTile, groups - g0);
        for (int64_t g = 0; g < count; g += kBlock) {
          noise_block(first_offset + static_cast<uint64_t>(g0 + g), keys, kWords, reinterpret_cast<float*>(words) + 4 * g);
        }
        const int64_t e_begin = 2 * g0;
        const int64_t e_end = std::min(numel, 2 * (g0 + count));
        const int64_t length = e_end - e_begin;
        int64_t i = 0;
#if defined(RENYICERT_SIMD_PHILOX)
        for (; i + kWideLanes <= length; i += kWideLanes) {
          row_failed |= atoms_of_lanes(words + 2 * i, k_row + e_begin + i, ends, guide, atoms, start, lowest, integers + i);
        }
#endif
        for (; i < length; ++i) {  // the rest of the tile (all of it without SIMD)
          const uint32_t* w = words + 2 * i;
          const uint64_t u = (static_cast<uint64_t>(w[0]) << 32) | static_cast<uint64_t>(w[1]);
          const int64_t value = static_cast<int64_t>(u ^ (uint64_t{1} << 63));
          const int64_t index = atom_index(u, ends, guide);
          row_failed |= index >= atoms || value < start;
          integers[i] = static_cast<int32_t>(k_row[e_begin + i] + std::min(index, atoms - 1) + lowest);  // |k + j| < 2^24
        }
        for (int64_t i = 0; i < length; ++i) {  // one correctly rounded division per copy value, vectorised by the compiler
          out_row[e_begin + i] = static_cast<float>(integers[i]) / grid;
        }
      }
      failed[row] = row_failed ? 1 : 0;
    }
  });
}

void lattice_rows(at::Tensor out, at::Tensor failed, const at::Tensor& k, const at::Tensor& row_input, const at::Tensor& row_sample,
                  const at::Tensor& seeds, const at::Tensor& ends, const at::Tensor& guide, int64_t start, int64_t lowest, double grid) {
  TORCH_CHECK(out.device().is_cpu() && k.device().is_cpu() && ends.device().is_cpu() && guide.device().is_cpu(), "lattice_rows: CPU tensors only");
  TORCH_CHECK(out.scalar_type() == at::kFloat && failed.scalar_type() == at::kInt && k.scalar_type() == at::kLong &&
                  ends.scalar_type() == at::kLong && guide.scalar_type() == at::kInt, "lattice_rows: float32 out, int32 failed and guide, int64 k and ends");
  TORCH_CHECK(row_input.scalar_type() == at::kLong && row_sample.scalar_type() == at::kLong && seeds.scalar_type() == at::kLong,
              "lattice_rows: int64 row_input, row_sample and seeds");
  TORCH_CHECK(out.dim() == 2 && k.dim() == 2 && out.size(1) == k.size(1), "lattice_rows: out (rows, numel), k (inputs, numel)");
  TORCH_CHECK(out.is_contiguous() && failed.is_contiguous() && k.is_contiguous() && row_input.is_contiguous() && row_sample.is_contiguous() &&
                  seeds.is_contiguous() && ends.is_contiguous() && guide.is_contiguous(), "lattice_rows: contiguous tensors only");
  TORCH_CHECK(row_input.numel() == out.size(0) && row_sample.numel() == out.size(0) && failed.numel() == out.size(0),
              "lattice_rows: one row_input, row_sample and failed per row");
  TORCH_CHECK(ends.numel() >= 1 && ends.numel() < (int64_t{1} << 31) && guide.numel() == (int64_t{1} << kGuideBits) + 1,
              "lattice_rows: at least one atom and a guide of 2^16 + 1 entries (the last one the number of atoms)");
  const int64_t atoms = ends.numel();
  const int32_t* guide_data = guide.data_ptr<int32_t>();
  const int32_t atoms32 = static_cast<int32_t>(atoms);
  const int64_t buckets = int64_t{1} << kGuideBits;
  int32_t guide_bad = guide_data[buckets] != atoms32;
  for (int64_t t = 0; t < buckets; ++t) {  // branch-free, so that the compiler vectorises it (65,536 entries a call)
    guide_bad |= (guide_data[t] < 0) | (guide_data[t] > guide_data[t + 1]);
  }
  TORCH_CHECK(guide_bad == 0, "lattice_rows: the guide must be non-decreasing entries in [0, atoms], its last entry atoms");
  const int64_t rows = out.size(0);
  TORCH_CHECK(rows_in_range(row_input.data_ptr<int64_t>(), rows, std::min(k.size(0), seeds.numel())), "lattice_rows: row_input out of range (of k or of seeds)");
  write_lattice_rows(out.data_ptr<float>(), failed.data_ptr<int32_t>(), k.data_ptr<int64_t>(), row_input.data_ptr<int64_t>(),
                     row_sample.data_ptr<int64_t>(), seeds.data_ptr<int64_t>(), rows, out.size(1), ends.data_ptr<int64_t>(), atoms,
                     guide_data, start, lowest, static_cast<float>(grid));
}

#if defined(RENYICERT_SIMD_PHILOX)
// Votes of float32 rows, a SIMD vector of rows at a time: one gather per class, a strictly larger logit
// moves the vote (ties go to the first class). Returns how many rows it counted (whole vectors only).
inline int64_t count_votes_simd(const float* data, int64_t classes, const int64_t* input_of, int64_t* counts, int64_t valid) {
  constexpr int64_t width = Vec::size();
  if (classes > (int64_t{1} << 24)) {
    return 0;  // beyond 32-bit gather offsets and float-exact class numbers: leave it to the scalar loop
  }
  alignas(64) int32_t vote[width];
  int64_t r0 = 0;
  for (; r0 + width <= valid; r0 += width) {
    const float* block = data + r0 * classes;
#if defined(CPU_CAPABILITY_AVX512)
    const __m512i offsets = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                               _mm512_set1_epi32(static_cast<int>(classes)));
    __m512 largest = _mm512_i32gather_ps(offsets, block, 4);
    __m512i best = _mm512_setzero_si512();
    for (int64_t c = 1; c < classes; ++c) {
      const __m512 value = _mm512_i32gather_ps(offsets, block + c, 4);
      const __mmask16 larger = _mm512_cmp_ps_mask(value, largest, _CMP_GT_OQ);
      largest = _mm512_mask_mov_ps(largest, larger, value);
      best = _mm512_mask_mov_epi32(best, larger, _mm512_set1_epi32(static_cast<int>(c)));
    }
    _mm512_store_si512(vote, best);
#else
    const __m256i offsets = _mm256_mullo_epi32(_mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0), _mm256_set1_epi32(static_cast<int>(classes)));
    __m256 largest = _mm256_i32gather_ps(block, offsets, 4);
    __m256 best = _mm256_setzero_ps();  // class numbers as floats (exact below 2^24)
    for (int64_t c = 1; c < classes; ++c) {
      const __m256 value = _mm256_i32gather_ps(block + c, offsets, 4);
      const __m256 larger = _mm256_cmp_ps(value, largest, _CMP_GT_OQ);
      largest = _mm256_blendv_ps(largest, value, larger);
      best = _mm256_blendv_ps(best, _mm256_set1_ps(static_cast<float>(c)), larger);
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(vote), _mm256_cvtps_epi32(best));
#endif
    for (int64_t j = 0; j < width; ++j) {
      counts[input_of[r0 + j] * classes + vote[j]] += 1;
    }
  }
  return r0;
}
#endif

// Majority-vote counting for one model batch: counts[row_input[r] * C + argmax(logits[r])] += 1 for the
// first `valid` rows (argmax = the first largest logit, as torch.argmax). Returns false, counting nothing,
// when a logit among those rows is NaN or infinite.
template <typename scalar_t>
bool count_votes_typed(const scalar_t* data, int64_t classes, const int64_t* input_of, int64_t* counts, int64_t valid) {
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
  int64_t r0 = 0;
#if defined(RENYICERT_SIMD_PHILOX)
  if constexpr (std::is_same_v<scalar_t, float>) {
    r0 = count_votes_simd(data, classes, input_of, counts, valid);
  }
#endif
  // Eight rows at a time: eight independent compare-and-select chains instead of one (branch-free:
  // a strictly larger logit moves the vote, so ties go to the first class).
  constexpr int64_t kRows = 8;
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

bool count_votes(const at::Tensor& logits_in, const at::Tensor& row_input_in, at::Tensor counts, int64_t valid) {
  TORCH_CHECK(logits_in.device().is_cpu() && logits_in.dim() == 2, "count_votes: (rows, classes) CPU logits");
  TORCH_CHECK(row_input_in.scalar_type() == at::kLong && counts.scalar_type() == at::kLong && counts.is_contiguous(),
              "count_votes: int64 row_input and contiguous int64 counts");
  const at::Tensor logits = logits_in.contiguous();  // no copy when they already are (a model's logits usually)
  const at::Tensor row_input = row_input_in.contiguous();
  TORCH_CHECK(valid >= 0 && valid <= logits.size(0) && valid <= row_input.numel(), "count_votes: valid out of range");
  const int64_t* input_of = row_input.data_ptr<int64_t>();
  const int64_t inputs = counts.numel() / std::max<int64_t>(logits.size(1), 1);  // counts holds (inputs, classes)
  TORCH_CHECK(rows_in_range(input_of, valid, inputs), "count_votes: row_input out of range");
  if (logits.scalar_type() == at::kFloat) {
    return count_votes_typed<float>(logits.data_ptr<float>(), logits.size(1), input_of, counts.data_ptr<int64_t>(), valid);
  }
  TORCH_CHECK(logits.scalar_type() == at::kDouble, "count_votes: float32 or float64 logits");
  return count_votes_typed<double>(logits.data_ptr<double>(), logits.size(1), input_of, counts.data_ptr<int64_t>(), valid);
}

}  // namespace

// The certification batch loop's entry point, called through ctypes (renyicert.batches): one call per model
// batch counts that batch's votes and writes the next batch's noisy copies. A torch.ops call costs ~2 us and,
// right after a model's forward pass has evicted the dispatcher's state from the caches, ~10 us more: one
// plain C call per batch instead of two op calls saves about 1.5% of a small MLP's forward time.
//
// The plan holds the phase's buffers, which the Python side validates once (dtypes, shapes, contiguity) and
// keeps alive; each call checks what varies per batch: the offsets and the rows' inputs.
struct RenyicertBatchPlan {
  float* out;                 // (rows, numel): the model's batch
  const float* x;             // (inputs, numel)
  const int64_t* row_input;   // (total_rows,): the input of each row of the phase, padded to whole batches
  const int64_t* row_sample;  // (total_rows,): its sample number
  const int64_t* seeds;       // (key_count,): the inputs' keys
  int64_t* counts;            // (voters, classes)
  int64_t total_rows;
  int64_t rows;
  int64_t numel;
  int64_t inputs;
  int64_t key_count;
  int64_t voters;
  int64_t classes;
  int64_t kind;
  double scale;
};

// Counts the votes (float32 logits, (rows, classes), contiguous) of the first `valid` rows of the batch that
// starts at row `counted` of the phase, unless logits is null; then writes the batch that starts at row
// `next`, unless next < 0. Returns 0 when done, 1 when a counted logit is not finite (then nothing is counted
// or written), 2 when an offset, `valid` or a row's input is out of range, 3 on an internal error.
extern "C" __attribute__((visibility("default"))) int renyicert_count_then_fill(const RenyicertBatchPlan* plan, const float* logits,
                                                                              int64_t counted, int64_t valid, int64_t next) {
  try {
    const int64_t inputs = std::min(plan->inputs, plan->key_count);
    if (logits != nullptr) {
      if (counted < 0 || counted + plan->rows > plan->total_rows || valid < 0 || valid > plan->rows ||
          !rows_in_range(plan->row_input + counted, valid, plan->voters)) {
        return 2;
      }
      if (!count_votes_typed<float>(logits, plan->classes, plan->row_input + counted, plan->counts, valid)) {
        return 1;
      }
    }
    if (next >= 0) {
      if (next + plan->rows > plan->total_rows || !rows_in_range(plan->row_input + next, plan->rows, inputs) ||
          (plan->kind != kNormal && plan->kind != kLaplace)) {
        return 2;
      }
      write_noisy_rows(plan->out, plan->x, plan->row_input + next, plan->row_sample + next, plan->seeds, plan->rows,
                       plan->numel, static_cast<float>(plan->scale), plan->kind);
    }
    return 0;
  } catch (...) {
    return 3;
  }
}

TORCH_LIBRARY(renyicert_native, m) {
  m.def("noisy_rows(Tensor(a!) out, Tensor x, Tensor row_input, Tensor row_sample, Tensor seeds, float scale, int kind) -> ()");
  m.def("count_votes(Tensor logits, Tensor row_input, Tensor(a!) counts, int valid) -> bool");
  m.def("lattice_rows(Tensor(a!) out, Tensor(b!) failed, Tensor k, Tensor row_input, Tensor row_sample, Tensor seeds, Tensor ends, Tensor guide, int start, int lowest, float grid) -> ()");
}

TORCH_LIBRARY_IMPL(renyicert_native, CPU, m) {
  m.impl("noisy_rows", &noisy_rows);
  m.impl("count_votes", &count_votes);
  m.impl("lattice_rows", &lattice_rows);
}
