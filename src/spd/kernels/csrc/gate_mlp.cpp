// Causal-importance gate MLP, forward and backward, on CPU float32:
//   z[b,c] = sum_k w2[c,k] * GELU(w1[c,k] * h[b,c] + b1[c,k]) + b2[c]   (erf GELU)
// The C axis is cut into blocks of kLanes subcomponents, one subcomponent per SIMD lane (no
// horizontal reductions), with weights transposed to (K, C_padded), and the batch into chunks of
// kRowsPerChunk rows. Threads split the (chunk, block) pairs, so small C still keeps every thread
// busy. In the backward pass each pair sums its weight gradients over its own rows into its own
// buffer, and the chunks' sums are then added in chunk order. The partition depends on B and C
// only, so results are bit-identical from call to call and for any thread count.
// The forward pass takes erf from a rational function (Eigen's float erf); the backward pass needs
// exp(-x^2/2) for GELU' anyway and reuses it in the Abramowitz-Stegun 7.1.26 erf, the form ATen's
// vectorised GELU uses. Both are within 5e-7 of the exact erf.
// The causal_importances_* entry points fuse in the two leaky hard sigmoids that always follow:
// they return lower and upper without writing z out except as the saved input of the backward pass,
// which forms dLoss/dz from the gradients of lower and upper element by element.
// The masked_inner_* entry points apply a stochastic mask m = g + (1 - g) u to the inner
// activations h in one pass each way, with the roundings of torch's
// h * torch.addcmul(u, g, 1 - u) and of its autograd backward.
// uniform_ fills a float32 tensor with U(0, 1) draws from a CPU generator: the numbers torch.rand
// draws from it, in its order (mt19937, 24 bits per float), tempered and converted in bulk.
#include <torch/extension.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <mutex>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// GCC/Clang vector extension, one register wide: a zmm with AVX-512, a ymm otherwise. The erf
// polynomial keeps about a dozen vectors live; two registers per vector would not fit AVX2's 16
// ymm registers, and the spills made each pass 3.5x slower. Each lane's arithmetic does not depend
// on the width, so the results are the same bits either way.
#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;
#else
constexpr int64_t kLanes = 8;
#endif
typedef float vf __attribute__((vector_size(kLanes * sizeof(float))));
typedef std::int32_t vi __attribute__((vector_size(kLanes * sizeof(float))));

constexpr int64_t kRowsPerPartialSum = 64;  // batch rows summed before joining the running total
constexpr int64_t kRowsPerChunk = 512;      // batch rows per work unit; a multiple of the above
constexpr float kSqrt1_2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

inline vf splat(float x) { return vf{} + x; }

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof(vf));
  return v;
}

inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof(vf)); }

// The first n <= kLanes values of src; the other lanes are zero.
inline vf load_lanes(const float* src, int64_t n) {
  if (n == kLanes) return load(src);
  float buf[kLanes] = {};
  std::copy(src, src + n, buf);
  return load(buf);
}

inline void store_lanes(float* dst, vf v, int64_t n) {
  float buf[kLanes];
  store(buf, v);
  std::copy(buf, buf + n, dst);
}

// Cephes expf for x <= 0 (clamped so that 2^n stays a normal float); ~1 ulp.
inline vf exp_nonpos(vf x) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  x = x < -87.0f ? splat(-87.0f) : x;
  const vf shifted = x * 1.44269504088896341f + kRound;  // low mantissa bits hold n
  const vf n = shifted - kRound;
  vf r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * (vf)(((vi)shifted << 23) + (127 << 23));  // 2^n
}

// Phi(pre) = 0.5 * (1 + erf(pre / sqrt 2)) by Abramowitz-Stegun 7.1.26;
// also sets gauss = exp(-pre^2 / 2).
inline vf normal_cdf(vf pre, vf& gauss) {
  const vf u = pre * kSqrt1_2;
  gauss = exp_nonpos(-(u * u));
  const vi sign = (vi)u & INT32_MIN;
  const vf abs_u = (vf)((vi)u & INT32_MAX);
  const vf t = 1.0f / (abs_u * 0.3275911f + 1.0f);
  vf r = t * 1.061405429f - 1.453152027f;
  r = r * t + 1.421413741f;
  r = r * t - 0.284496736f;
  r = r * t + 0.254829592f;
  const vf erf_abs = 1.0f - r * t * gauss;
  return 0.5f + 0.5f * (vf)((vi)erf_abs | sign);
}

// erf(pre / sqrt 2) as a rational function (Eigen's float erf), without exp.
inline vf erf_scaled(vf pre) {
  vf u = pre * kSqrt1_2;
  u = u < -4.0f ? splat(-4.0f) : u;
  u = u > 4.0f ? splat(4.0f) : u;
  const vf u2 = u * u;
  vf p = u2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = p * u2 - 2.10102402082508e-06f;
  p = p * u2 - 5.69250639462346e-05f;
  p = p * u2 - 7.34990630326855e-04f;
  p = p * u2 - 2.95459980854025e-03f;
  p = p * u2 - 1.60960333262415e-02f;
  vf q = u2 * -1.45660718464996e-05f - 2.13374055278905e-04f;
  q = q * u2 - 1.68282697438203e-03f;
  q = q * u2 - 7.37332916720468e-03f;
  q = q * u2 - 1.42647390514189e-02f;
  return u * p / q;
}

int64_t padded(int64_t C) { return (C + kLanes - 1) / kLanes * kLanes; }

int64_t num_chunks(int64_t B) { return (B + kRowsPerChunk - 1) / kRowsPerChunk; }

// Calls f(blk, chunk, begin, end) for every block of kLanes subcomponents and every chunk of batch
// rows [begin, end), in parallel; the pairs depend on B and Cp only, not on the thread count.
// Threads take runs of consecutive pairs in chunk-major order, so they mostly write disjoint rows
// of the (B, C) outputs rather than sharing cache lines within a row.
template <typename F>
void for_each_chunk_and_block(int64_t B, int64_t Cp, const F& f) {
  const int64_t blocks = Cp / kLanes;
  at::parallel_for(0, num_chunks(B) * blocks, 1, [&](int64_t unit0, int64_t unit1) {
    for (int64_t unit = unit0; unit < unit1; ++unit) {
      const int64_t chunk = unit / blocks, r0 = chunk * kRowsPerChunk;
      f(unit % blocks, chunk, r0, std::min(B, r0 + kRowsPerChunk));
    }
  });
}

// (C, K) -> zero-padded (K, padded(C)).
at::Tensor to_lanes(const at::Tensor& w) {
  const int64_t C = w.size(0);
  at::Tensor out = at::zeros({w.size(1), padded(C)}, w.options());
  out.narrow(1, 0, C).copy_(w.t());
  return out;
}

void check_inputs(const at::Tensor& h, const at::Tensor& w1, const at::Tensor& b1,
                  const at::Tensor& w2, const at::Tensor& b2) {
  for (const at::Tensor* t : {&h, &w1, &b1, &w2, &b2}) {
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == at::kFloat,
                "gate_mlp: expected CPU float32 tensors");
  }
  TORCH_CHECK(h.dim() == 2 && w1.dim() == 2 && w1.size(0) == h.size(1), "gate_mlp: bad shapes");
  TORCH_CHECK(b1.sizes() == w1.sizes() && w2.sizes() == w1.sizes(), "gate_mlp: bad shapes");
  TORCH_CHECK(b2.dim() == 1 && b2.size(0) == h.size(1), "gate_mlp: bad b2 shape");
}

// lower = alpha*z (z <= 0), z (0 < z <= 1), 1 (z > 1);
// upper = 0 (z < 0), z (0 <= z <= 1), 1 + alpha*(z - 1) (z > 1).
// Same values and, at the kinks, the same one-sided gradients as the torch.where/clamp versions
// in sigmoids.py.
inline vf lower_sigmoid(vf z, float alpha) {
  return z <= 0.0f ? alpha * z : (z > 1.0f ? splat(1.0f) : z);
}

inline vf upper_sigmoid(vf z, float alpha) {
  return z > 1.0f ? 1.0f + alpha * (z - 1.0f) : (z < 0.0f ? splat(0.0f) : z);
}

inline vf lower_sigmoid_grad(vf z, float alpha) {
  return z <= 0.0f ? splat(alpha) : (z <= 1.0f ? splat(1.0f) : splat(0.0f));
}

inline vf upper_sigmoid_grad(vf z, float alpha) {
  return z > 1.0f ? splat(alpha) : (z >= 0.0f ? splat(1.0f) : splat(0.0f));
}

// Runs the forward pass (inputs checked by the caller) and calls emit(row, c0, n, z) with z of
// subcomponents c0 .. c0+n-1.
template <typename Emit>
void forward_blocks(const at::Tensor& h_in, const at::Tensor& w1_in, const at::Tensor& b1_in,
                    const at::Tensor& w2_in, const at::Tensor& b2_in, const Emit& emit) {
  const at::Tensor h = h_in.contiguous(), b2 = b2_in.contiguous();
  const at::Tensor w1t = to_lanes(w1_in), b1t = to_lanes(b1_in), w2t = to_lanes(w2_in);
  const int64_t B = h.size(0), C = h.size(1), K = w1t.size(0), Cp = w1t.size(1);
  const float* hp = h.data_ptr<float>();
  const float* w1 = w1t.data_ptr<float>();
  const float* b1 = b1t.data_ptr<float>();
  const float* w2 = w2t.data_ptr<float>();
  const float* b2p = b2.data_ptr<float>();
  for_each_chunk_and_block(B, Cp, [&](int64_t blk, int64_t, int64_t begin, int64_t end) {
    const int64_t c0 = blk * kLanes, n = std::min(kLanes, C - c0);
    const vf bias = load_lanes(b2p + c0, n);
    for (int64_t b = begin; b < end; ++b) {
      const vf x = load_lanes(hp + b * C + c0, n);
      vf acc = bias;
      for (int64_t i = c0; i < K * Cp; i += Cp) {
        const vf pre = load(w1 + i) * x + load(b1 + i);
        acc += load(w2 + i) * (pre * (0.5f + 0.5f * erf_scaled(pre)));
      }
      emit(b, c0, n, acc);
    }
  });
}

// Runs the backward pass (inputs checked by the caller) with grad_z(row, c0, n) giving dLoss/dz of
// subcomponents c0 .. c0+n-1.
// Returns grad_h (B, C), grad_w1, grad_b1, grad_w2 (C, K) and grad_b2 (C).
template <typename GradZ>
std::vector<at::Tensor> backward_blocks(const at::Tensor& h_in, const at::Tensor& w1_in,
                                        const at::Tensor& b1_in, const at::Tensor& w2_in,
                                        const at::Tensor& b2_in, const GradZ& grad_z) {
  const at::Tensor h = h_in.contiguous();
  const at::Tensor w1t = to_lanes(w1_in), b1t = to_lanes(b1_in), w2t = to_lanes(w2_in);
  const int64_t B = h.size(0), C = h.size(1), K = w1t.size(0), Cp = w1t.size(1);
  at::Tensor dh = at::empty_like(h);
  // Rows: grad_w1, grad_b1, grad_w2 (K each, in lanes layout), then grad_b2; one such matrix of
  // sums per batch chunk, each entry written by exactly one (chunk, block) pair.
  const int64_t rows = 3 * K + 1, chunks = num_chunks(B);
  at::Tensor grads = at::zeros({rows, Cp}, h.options());
  at::Tensor chunk_grads = at::empty({chunks, rows, Cp}, h.options());
  const float* hp = h.data_ptr<float>();
  const float* w1 = w1t.data_ptr<float>();
  const float* b1 = b1t.data_ptr<float>();
  const float* w2 = w2t.data_ptr<float>();
  float* dhp = dh.data_ptr<float>();
  float* chunkp = chunk_grads.data_ptr<float>();
  for_each_chunk_and_block(B, Cp, [&](int64_t blk, int64_t chunk, int64_t begin, int64_t end) {
    const int64_t c0 = blk * kLanes, n = std::min(kLanes, C - c0);
    // part: sums over kRowsPerPartialSum rows, added into total; both in the order of `grads`.
    std::vector<vf> part(rows), total(rows);
    for (int64_t r0 = begin; r0 < end; r0 += kRowsPerPartialSum) {
      std::fill(part.begin(), part.end(), vf{});
      for (int64_t b = r0; b < std::min(end, r0 + kRowsPerPartialSum); ++b) {
        const vf x = load_lanes(hp + b * C + c0, n);
        const vf gz = grad_z(b, c0, n);
        vf dx{};
        for (int64_t k = 0; k < K; ++k) {
          const int64_t i = k * Cp + c0;
          const vf w1k = load(w1 + i);
          const vf pre = w1k * x + load(b1 + i);
          vf gauss;
          const vf cdf = normal_cdf(pre, gauss);
          const vf dpre = gz * load(w2 + i) * (cdf + pre * gauss * kInvSqrt2Pi);
          part[k] += dpre * x;
          part[K + k] += dpre;
          part[2 * K + k] += gz * (pre * cdf);
          dx += dpre * w1k;
        }
        part[3 * K] += gz;
        store_lanes(dhp + b * C + c0, dx, n);
      }
      for (int64_t j = 0; j < rows; ++j) total[j] += part[j];
    }
    float* out = chunkp + chunk * rows * Cp + c0;
    for (int64_t j = 0; j < rows; ++j) store(out + j * Cp, total[j]);
  });
  // Add up the chunks' sums in chunk order.
  float* gradp = grads.data_ptr<float>();
  for (int64_t i = 0; i < chunks * rows * Cp; i += kLanes) {
    float* g = gradp + i % (rows * Cp);
    store(g, load(g) + load(chunkp + i));
  }
  auto unlanes = [&](int64_t row) {
    return grads.narrow(0, row, K).narrow(1, 0, C).t().contiguous();
  };
  return {dh, unlanes(0), unlanes(K), unlanes(2 * K), grads[3 * K].narrow(0, 0, C).clone()};
}

// Contiguous float32 data of an optional (B, C) gradient; nullptr where autograd passed None.
const float* optional_grad(const c10::optional<at::Tensor>& grad, const at::Tensor& like,
                           at::Tensor& keep) {
  if (!grad.has_value() || !grad->defined()) return nullptr;
  TORCH_CHECK(grad->sizes() == like.sizes() && grad->scalar_type() == at::kFloat,
              "gate_mlp: bad output gradient");
  keep = grad->contiguous();
  return keep.data_ptr<float>();
}

void check_same_cpu_float(std::initializer_list<const at::Tensor*> tensors) {
  const at::Tensor& first = **tensors.begin();
  for (const at::Tensor* t : tensors) {
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == at::kFloat &&
                    t->sizes() == first.sizes() && t->is_contiguous(),
                "masked_inner: expected contiguous CPU float32 tensors of one shape");
  }
}

// m = u + g (1 - u), as torch.addcmul(u, g, 1 - u) rounds it: one fused multiply-add.
inline float stochastic_mask_value(float g, float u) { return std::fma(g, 1.0f - u, u); }

constexpr int64_t kElementsPerTask = 1 << 14;


// mt19937's state update (the twist), as at::mt19937 does it; leaves left_ = N and next_ = 0.
void mt19937_next_state(at::mt19937_data_pod& data) {
  constexpr int N = at::MERSENNE_STATE_N, M = at::MERSENNE_STATE_M;
  constexpr uint32_t kMatrixA = 0x9908b0df, kUpper = 0x80000000, kLower = 0x7fffffff;
  auto twist = [&](uint32_t u, uint32_t v) {
    return (((u & kUpper) | (v & kLower)) >> 1) ^ (v & 1 ? kMatrixA : 0);
  };
  uint32_t* p = data.state_.data();
  for (int j = 0; j < N - M; ++j) p[j] = p[j + M] ^ twist(p[j], p[j + 1]);
  for (int j = N - M; j < N - 1; ++j) p[j] = p[j + M - N] ^ twist(p[j], p[j + 1]);
  p[N - 1] = p[M - 1] ^ twist(p[N - 1], p[0]);
  data.left_ = N;
  data.next_ = 0;
}

// mt19937's output tempering, then torch's uniform_real for float on [0, 1): 24 random bits.
inline float uniform_float(uint32_t y) {
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680;
  y ^= (y << 15) & 0xefc60000;
  y ^= (y >> 18);
  return static_cast<float>(y & ((1u << 24) - 1)) * (1.0f / (1u << 24));
}

}  // namespace

at::Tensor gate_mlp_forward(const at::Tensor& h, const at::Tensor& w1, const at::Tensor& b1,
                            const at::Tensor& w2, const at::Tensor& b2) {
  check_inputs(h, w1, b1, w2, b2);
  at::Tensor z = at::empty({h.size(0), h.size(1)}, h.options());
  float* zp = z.data_ptr<float>();
  const int64_t C = z.size(1);
  forward_blocks(h, w1, b1, w2, b2, [&](int64_t b, int64_t c0, int64_t n, vf zv) {
    store_lanes(zp + b * C + c0, zv, n);
  });
  return z;
}

std::vector<at::Tensor> gate_mlp_backward(const at::Tensor& grad_out, const at::Tensor& h,
                                          const at::Tensor& w1, const at::Tensor& b1,
                                          const at::Tensor& w2, const at::Tensor& b2) {
  check_inputs(h, w1, b1, w2, b2);
  TORCH_CHECK(grad_out.sizes() == h.sizes() && grad_out.scalar_type() == at::kFloat,
              "gate_mlp: bad grad_out");
  const at::Tensor g = grad_out.contiguous();
  const float* gp = g.data_ptr<float>();
  const int64_t C = h.size(1);
  return backward_blocks(h, w1, b1, w2, b2, [&](int64_t b, int64_t c0, int64_t n) {
    return load_lanes(gp + b * C + c0, n);
  });
}

// Returns lower, upper and z (B, C); z is for the backward pass, which needs its branch.
std::vector<at::Tensor> causal_importances_forward(const at::Tensor& h, const at::Tensor& w1,
                                                   const at::Tensor& b1, const at::Tensor& w2,
                                                   const at::Tensor& b2, double alpha_in) {
  check_inputs(h, w1, b1, w2, b2);
  const auto opts = h.options();
  at::Tensor lower = at::empty({h.size(0), h.size(1)}, opts), upper = at::empty_like(lower),
             z = at::empty_like(lower);
  float* lp = lower.data_ptr<float>();
  float* up = upper.data_ptr<float>();
  float* zp = z.data_ptr<float>();
  const int64_t C = z.size(1);
  const float alpha = static_cast<float>(alpha_in);
  forward_blocks(h, w1, b1, w2, b2, [&](int64_t b, int64_t c0, int64_t n, vf zv) {
    const int64_t off = b * C + c0;
    store_lanes(lp + off, lower_sigmoid(zv, alpha), n);
    store_lanes(up + off, upper_sigmoid(zv, alpha), n);
    store_lanes(zp + off, zv, n);
  });
  return {lower, upper, z};
}

// Gradients as gate_mlp_backward, given those of lower and upper (either may be None: zero).
std::vector<at::Tensor> causal_importances_backward(
    const c10::optional<at::Tensor>& grad_lower, const c10::optional<at::Tensor>& grad_upper,
    const at::Tensor& z_in, const at::Tensor& h, const at::Tensor& w1, const at::Tensor& b1,
    const at::Tensor& w2, const at::Tensor& b2, double alpha_in) {
  check_inputs(h, w1, b1, w2, b2);
  TORCH_CHECK(z_in.sizes() == h.sizes() && z_in.scalar_type() == at::kFloat, "gate_mlp: bad z");
  at::Tensor gl_keep, gu_keep;
  const float* gl = optional_grad(grad_lower, h, gl_keep);
  const float* gu = optional_grad(grad_upper, h, gu_keep);
  const at::Tensor z = z_in.contiguous();
  const float* zp = z.data_ptr<float>();
  const int64_t C = h.size(1);
  const float alpha = static_cast<float>(alpha_in);
  return backward_blocks(h, w1, b1, w2, b2, [&](int64_t b, int64_t c0, int64_t n) {
    const int64_t off = b * C + c0;
    const vf zv = load_lanes(zp + off, n);
    vf gz{};
    if (gl != nullptr) gz += load_lanes(gl + off, n) * lower_sigmoid_grad(zv, alpha);
    if (gu != nullptr) gz += load_lanes(gu + off, n) * upper_sigmoid_grad(zv, alpha);
    return gz;
  });
}

// h * m (the masked inner activations).
at::Tensor masked_inner_forward(const at::Tensor& h, const at::Tensor& g, const at::Tensor& u) {
  check_same_cpu_float({&h, &g, &u});
  at::Tensor out = at::empty_like(h);
  const float *hp = h.data_ptr<float>(), *gp = g.data_ptr<float>(), *up = u.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, h.numel(), kElementsPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) op[i] = hp[i] * stochastic_mask_value(gp[i], up[i]);
  });
  return out;
}

// Gradients of h * m with respect to h (grad * m) and to g ((grad * h) * (1 - u)).
std::vector<at::Tensor> masked_inner_backward(const at::Tensor& grad_in, const at::Tensor& h,
                                              const at::Tensor& g, const at::Tensor& u) {
  const at::Tensor grad = grad_in.contiguous();
  check_same_cpu_float({&grad, &h, &g, &u});
  at::Tensor grad_h = at::empty_like(h), grad_g = at::empty_like(g);
  const float *dp = grad.data_ptr<float>(), *hp = h.data_ptr<float>(), *gp = g.data_ptr<float>(),
              *up = u.data_ptr<float>();
  float *dhp = grad_h.data_ptr<float>(), *dgp = grad_g.data_ptr<float>();
  at::parallel_for(0, h.numel(), kElementsPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      dhp[i] = dp[i] * stochastic_mask_value(gp[i], up[i]);
      const float d_mask = dp[i] * hp[i];
      dgp[i] = d_mask * (1.0f - up[i]);
    }
  });
  return {grad_h, grad_g};
}

// Fills `out` (contiguous CPU float32) in place. Each draw consumes one mt19937 output, as
// at::mt19937::operator() does: it twists when left_ reaches 1, and state_[next_ ..
// next_ + left_ - 2] are the draws available before that.
void uniform_(at::Tensor& out, at::Generator generator) {
  TORCH_CHECK(out.device().is_cpu() && out.scalar_type() == at::kFloat && out.is_contiguous(),
              "uniform_: expected a contiguous CPU float32 tensor");
  auto* cpu_generator = at::check_generator<at::CPUGeneratorImpl>(generator);
  std::lock_guard<std::mutex> lock(cpu_generator->mutex_);
  at::mt19937 engine = cpu_generator->engine();
  at::mt19937_data_pod data = engine.data();
  float* op = out.data_ptr<float>();
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n;) {
    if (data.left_ == 1) {  // this draw twists first; left_ then stays N
      mt19937_next_state(data);
      op[i++] = uniform_float(data.state_[data.next_++]);
      continue;
    }
    const int64_t take = std::min<int64_t>(data.left_ - 1, n - i);
    const uint32_t* state = data.state_.data() + data.next_;
    for (int64_t j = 0; j < take; ++j) op[i + j] = uniform_float(state[j]);
    data.next_ += static_cast<uint32_t>(take);
    data.left_ -= static_cast<int>(take);
    i += take;
  }
  engine.set_data(data);
  cpu_generator->set_engine(engine);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &gate_mlp_forward, "gate MLP forward: z");
  m.def("backward", &gate_mlp_backward, "gate MLP backward from grad z");
  m.def("causal_importances_forward", &causal_importances_forward,
        "gate MLP then both leaky hard sigmoids: lower, upper and z");
  m.def("causal_importances_backward", &causal_importances_backward,
        "gate MLP backward from the gradients of lower and upper (None: zero)");
  m.def("masked_inner_forward", &masked_inner_forward, "h * (g + (1 - g) u)");
  m.def("masked_inner_backward", &masked_inner_backward,
        "gradients of masked_inner_forward for h and g");
  m.def("uniform_", &uniform_, "U(0, 1) draws of torch.rand from a CPU generator, in place");
}
