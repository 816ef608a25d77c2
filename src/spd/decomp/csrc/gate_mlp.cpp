// Causal-importance gate MLP, forward and backward, on CPU float32:
//   z[b,c] = sum_k w2[c,k] * GELU(w1[c,k] * h[b,c] + b1[c,k]) + b2[c]   (erf GELU)
// Weights arrive transposed to (K, C) so the innermost vector loop runs over c: every lane owns
// one subcomponent and no horizontal reductions are needed. Threads split the C axis, so each
// gradient accumulator belongs to one thread and sums over the batch in a fixed order.
// erf is the Abramowitz-Stegun 7.1.26 form that ATen's vectorised GELU also uses.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace {

constexpr float kSqrt1_2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// Cephes expf for x <= 0 (clamped so that 2^n stays a normal float); ~1 ulp.
inline __attribute__((always_inline)) float exp_nonpos(float x) {
  x = std::max(x, -87.0f);
  const float fx = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - fx * 0.693359375f;
  r = r - fx * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::int32_t bits = (static_cast<std::int32_t>(fx) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}

// Phi(pre) = 0.5 * (1 + erf(pre / sqrt 2)); also returns exp(-pre^2 / 2) for the derivative.
inline __attribute__((always_inline)) float normal_cdf(float pre, float& gauss) {
  const float u = pre * kSqrt1_2;
  gauss = exp_nonpos(-u * u);
  const float t = 1.0f / (0.3275911f * std::fabs(u) + 1.0f);
  float r = 1.061405429f;
  r = r * t - 1.453152027f;
  r = r * t + 1.421413741f;
  r = r * t - 0.284496736f;
  r = r * t + 0.254829592f;
  const float erf_abs = 1.0f - r * t * gauss;
  return 0.5f + 0.5f * std::copysign(erf_abs, u);
}

void check_inputs(const at::Tensor& h, const at::Tensor& w1t, const at::Tensor& b1t,
                  const at::Tensor& w2t) {
  for (const at::Tensor* t : {&h, &w1t, &b1t, &w2t}) {
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == at::kFloat && t->is_contiguous(),
                "gate_mlp: expected contiguous CPU float32 tensors");
  }
  TORCH_CHECK(h.dim() == 2 && w1t.dim() == 2 && w1t.size(1) == h.size(1), "gate_mlp: bad shapes");
  TORCH_CHECK(b1t.sizes() == w1t.sizes() && w2t.sizes() == w1t.sizes(), "gate_mlp: bad shapes");
}

}  // namespace

at::Tensor gate_mlp_forward(const at::Tensor& h, const at::Tensor& w1t, const at::Tensor& b1t,
                            const at::Tensor& w2t, const at::Tensor& b2) {
  check_inputs(h, w1t, b1t, w2t);
  TORCH_CHECK(b2.is_contiguous() && b2.numel() == h.size(1), "gate_mlp: bad b2");
  const int64_t B = h.size(0), C = h.size(1), K = w1t.size(0);
  at::Tensor z = at::empty_like(h);
  const float* __restrict__ hp = h.data_ptr<float>();
  const float* __restrict__ w1 = w1t.data_ptr<float>();
  const float* __restrict__ b1 = b1t.data_ptr<float>();
  const float* __restrict__ w2 = w2t.data_ptr<float>();
  const float* __restrict__ b2p = b2.data_ptr<float>();
  float* __restrict__ zp = z.data_ptr<float>();
  at::parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t b = 0; b < B; ++b) {
      const float* __restrict__ hrow = hp + b * C;
      float* __restrict__ zrow = zp + b * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) {
        const float x = hrow[c];
        float acc = 0.0f;
        for (int64_t k = 0; k < K; ++k) {
          const float pre = w1[k * C + c] * x + b1[k * C + c];
          float gauss;
          acc += w2[k * C + c] * (pre * normal_cdf(pre, gauss));
        }
        zrow[c] = acc + b2p[c];
      }
    }
  });
  return z;
}

// Returns grad_h (B, C), grad_w1t, grad_b1t, grad_w2t (K, C) and grad_b2 (C).
std::vector<at::Tensor> gate_mlp_backward(const at::Tensor& grad_out, const at::Tensor& h,
                                          const at::Tensor& w1t, const at::Tensor& b1t,
                                          const at::Tensor& w2t) {
  check_inputs(h, w1t, b1t, w2t);
  TORCH_CHECK(grad_out.sizes() == h.sizes(), "gate_mlp: bad grad_out");
  const at::Tensor g = grad_out.contiguous();
  const int64_t B = h.size(0), C = h.size(1), K = w1t.size(0);
  at::Tensor dh = at::empty_like(h);
  at::Tensor dw1t = at::zeros_like(w1t), db1t = at::zeros_like(w1t), dw2t = at::zeros_like(w1t);
  at::Tensor db2 = at::zeros({C}, h.options());
  const float* __restrict__ hp = h.data_ptr<float>();
  const float* __restrict__ gp = g.data_ptr<float>();
  const float* __restrict__ w1 = w1t.data_ptr<float>();
  const float* __restrict__ b1 = b1t.data_ptr<float>();
  const float* __restrict__ w2 = w2t.data_ptr<float>();
  float* __restrict__ dhp = dh.data_ptr<float>();
  float* __restrict__ dw1 = dw1t.data_ptr<float>();
  float* __restrict__ db1 = db1t.data_ptr<float>();
  float* __restrict__ dw2 = dw2t.data_ptr<float>();
  float* __restrict__ db2p = db2.data_ptr<float>();
  at::parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t b = 0; b < B; ++b) {
      const float* __restrict__ hrow = hp + b * C;
      const float* __restrict__ grow = gp + b * C;
      float* __restrict__ dhrow = dhp + b * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) {
        const float x = hrow[c];
        const float gz = grow[c];
        float dx = 0.0f;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t i = k * C + c;
          const float pre = w1[i] * x + b1[i];
          float gauss;
          const float cdf = normal_cdf(pre, gauss);
          dw2[i] += gz * (pre * cdf);
          const float dpre = gz * w2[i] * (cdf + pre * gauss * kInvSqrt2Pi);
          dw1[i] += dpre * x;
          db1[i] += dpre;
          dx += dpre * w1[i];
        }
        dhrow[c] = dx;
        db2p[c] += gz;
      }
    }
  });
  return {dh, dw1t, db1t, dw2t, db2};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &gate_mlp_forward, "gate MLP forward");
  m.def("backward", &gate_mlp_backward, "gate MLP backward");
}
