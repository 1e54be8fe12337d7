// Selective scan (Mamba's S6 recurrence) on the CPU: forward and backward, float32 / float64.
//
// Shapes (mamba-ssm's names; the Python side makes every input one dtype):
//   u, delta  (B, D, L)      delta is final: bias and softplus are applied by the caller
//   A         (D, N)
//   Bm, Cm    (B, G, N, L)   channel d reads group d / (D / G)
// For every (batch b, channel d), with the state h (N) starting at zero:
//   h_t = exp(delta_t A) * h_{t-1} + delta_t u_t Bm_t,      y_t = Cm_t . h_t
//
// The sequence is cut into segments of kSegment tokens. Inside a segment the decays and
// drives are computed in passes that run along the tokens (vectorised, for any N), and only
// the recurrence itself is a sequential loop. The forward saves the state at the start of
// every segment ("checkpoints", (B, D, S, N) with S = ceil(L / kSegment)); the backward
// recomputes a segment's states from its checkpoint and runs the adjoint recurrence
//   g_t = dy_t Cm_t + a_{t+1} g_{t+1}      (g_t = dL/dh_t, a_t = exp(delta_t A))
// backwards through the segments, so no (B, D, N, L) tensor is ever stored.
//
// Work is split over (batch, channel) with at::parallel_for. The gradients of Bm and Cm sum
// over the channels of a group; each parallel work item owns a slice of a group's channels
// and writes its own partial sum, which are added up at the end.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

namespace {

constexpr int64_t kSegment = 64;  // tokens between two saved states

// exp(x) = 2^k exp(r) with k = round(x / ln 2) and |r| <= ln(2) / 2, exp(r) by Cephes'
// degree-5 polynomial (about 1 ulp). Branch-free, so loops over it vectorise. x is clamped to
// [-87.3, 88.3]: decays below 1e-38 come out as ~1e-38 instead of 0, which changes nothing.
inline float decay_exp(float x) {
  x = std::min(std::max(x, -87.3f), 88.3f);
  const float k = (x * 1.44269504f + 12582912.f) - 12582912.f;  // round to nearest integer
  const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;  // 2^k
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline double decay_exp(double x) { return std::exp(x); }

struct Dims {
  int64_t batch, dim, length, groups, d_state;

  int64_t dim_per_group() const { return dim / groups; }
  int64_t segments() const { return (length + kSegment - 1) / kSegment; }
};

// Read-only inputs of one (batch, channel) row: u, delta, y-grad rows (L), A row (N), and the
// channel's group of Bm / Cm as (N, L).
template <typename T>
struct Channel {
  const T* u;
  const T* delta;
  const T* A;
  const T* Bm;
  const T* Cm;
};

template <typename T>
Channel<T> channel_of(const Dims& s, const T* u, const T* delta, const T* A, const T* Bm,
                      const T* Cm, int64_t b, int64_t d) {
  const int64_t row = (b * s.dim + d) * s.length;
  const int64_t group = (b * s.groups + d / s.dim_per_group()) * s.d_state * s.length;
  return {u + row, delta + row, A + d * s.d_state, Bm + group, Cm + group};
}

// Scratch of one segment, rows of kSegment (+1) tokens per state index n.
template <typename T>
struct Workspace {
  explicit Workspace(int64_t d_state)
      : decay(d_state * kSegment), states(d_state * (kSegment + 1)), adjoint(d_state * kSegment),
        drive(kSegment), grad_x(kSegment), grad_delta(kSegment), carry(d_state),
        grad_A(d_state) {}

  std::vector<T> decay;    // a[n][t] = exp(delta_t A_n)
  std::vector<T> states;   // h[n][t + 1] = h_t; h[n][0] is the state before the segment
  std::vector<T> adjoint;  // g[n][t] = dL/dh_t
  std::vector<T> drive;    // x_t = delta_t u_t
  std::vector<T> grad_x, grad_delta;  // dL/dx_t, dL/ddelta_t through the decay
  std::vector<T> carry;    // a_{t+1} g_{t+1} for the token after the segment
  std::vector<T> grad_A;   // dL/dA_n summed over the tokens done so far
};

// Fill ws.decay and ws.states for tokens [t0, t0 + len) from the state `start` (N).
template <typename T>
void compute_segment_states(const Channel<T>& c, int64_t n_state, int64_t length, int64_t t0,
                            int64_t len, const T* start, Workspace<T>& ws) {
  T* __restrict__ x = ws.drive.data();
#pragma omp simd
  for (int64_t t = 0; t < len; ++t) x[t] = c.delta[t0 + t] * c.u[t0 + t];
  for (int64_t n = 0; n < n_state; ++n) {
    T* __restrict__ a = ws.decay.data() + n * kSegment;
    T* __restrict__ h = ws.states.data() + n * (kSegment + 1);
    const T* __restrict__ dt = c.delta + t0;
    const T* __restrict__ bn = c.Bm + n * length + t0;
    const T a_n = c.A[n];
    h[0] = start[n];
#pragma omp simd
    for (int64_t t = 0; t < len; ++t) {
      a[t] = decay_exp(dt[t] * a_n);
      h[t + 1] = x[t] * bn[t];
    }
  }
  const T* a = ws.decay.data();
  T* h = ws.states.data();
  for (int64_t t = 0; t < len; ++t) {  // the recurrence; independent chains over n
    for (int64_t n = 0; n < n_state; ++n) {
      T* hn = h + n * (kSegment + 1);
      hn[t + 1] += a[n * kSegment + t] * hn[t];
    }
  }
}

// y_t = Cm_t . h_t for the segment's tokens (y points at token t0).
template <typename T>
void write_outputs(const Channel<T>& c, int64_t n_state, int64_t length, int64_t t0, int64_t len,
                   const Workspace<T>& ws, T* __restrict__ y) {
  std::fill(y, y + len, T(0));
  for (int64_t n = 0; n < n_state; ++n) {
    const T* __restrict__ cn = c.Cm + n * length + t0;
    const T* __restrict__ h = ws.states.data() + n * (kSegment + 1) + 1;
#pragma omp simd
    for (int64_t t = 0; t < len; ++t) y[t] += cn[t] * h[t];
  }
}

// Forward of one (batch, channel) row: y (L), checkpoints (S, N), last state (N).
template <typename T>
void scan_channel_forward(const Channel<T>& c, const Dims& s, Workspace<T>& ws, T* y,
                          T* checkpoints, T* last) {
  const int64_t n_state = s.d_state;
  std::fill(last, last + n_state, T(0));  // the running state between segments
  for (int64_t seg = 0; seg < s.segments(); ++seg) {
    const int64_t t0 = seg * kSegment, len = std::min(kSegment, s.length - t0);
    std::copy(last, last + n_state, checkpoints + seg * n_state);
    compute_segment_states(c, n_state, s.length, t0, len, last, ws);
    write_outputs(c, n_state, s.length, t0, len, ws, y + t0);
    for (int64_t n = 0; n < n_state; ++n) last[n] = ws.states[n * (kSegment + 1) + len];
  }
}

// ws.adjoint = g_t for the segment (dy points at token t0); updates ws.carry to a_{t0} g_{t0}.
template <typename T>
void adjoint_segment(const Channel<T>& c, int64_t n_state, int64_t length, int64_t t0,
                     int64_t len, const T* dy, Workspace<T>& ws) {
  T* carry = ws.carry.data();
  for (int64_t t = len - 1; t >= 0; --t) {  // independent chains over n
    for (int64_t n = 0; n < n_state; ++n) {
      const T g = dy[t] * c.Cm[n * length + t0 + t] + carry[n];
      ws.adjoint[n * kSegment + t] = g;
      carry[n] = ws.decay[n * kSegment + t] * g;
    }
  }
}

// Segment's contributions: dBm, dCm rows (partial sums of the work item, (N, L)), ws.grad_x,
// ws.grad_delta (through the decay) and ws.grad_A.
template <typename T>
void accumulate_segment_grads(const Channel<T>& c, int64_t n_state, int64_t length, int64_t t0,
                              int64_t len, const T* __restrict__ dy, Workspace<T>& ws,
                              T* grad_Bm, T* grad_Cm) {
  T* __restrict__ gx = ws.grad_x.data();
  T* __restrict__ gdt = ws.grad_delta.data();
  const T* __restrict__ x = ws.drive.data();
  const T* __restrict__ dt = c.delta + t0;
  std::fill(gx, gx + len, T(0));
  std::fill(gdt, gdt + len, T(0));
  for (int64_t n = 0; n < n_state; ++n) {
    const T* __restrict__ g = ws.adjoint.data() + n * kSegment;
    const T* __restrict__ a = ws.decay.data() + n * kSegment;
    const T* __restrict__ h = ws.states.data() + n * (kSegment + 1);  // h[t] = h_{t-1}
    const T* __restrict__ bn = c.Bm + n * length + t0;
    T* __restrict__ dbn = grad_Bm + n * length + t0;
    T* __restrict__ dcn = grad_Cm + n * length + t0;
    const T a_n = c.A[n];
    T grad_a_n = 0;
#pragma omp simd reduction(+ : grad_a_n)
    for (int64_t t = 0; t < len; ++t) {
      const T q = a[t] * g[t] * h[t];  // dL/d(delta_t A_n)
      dcn[t] += dy[t] * h[t + 1];
      dbn[t] += g[t] * x[t];
      gx[t] += g[t] * bn[t];
      gdt[t] += q * a_n;
      grad_a_n += q * dt[t];
    }
    ws.grad_A[n] += grad_a_n;
  }
}

// Backward of one (batch, channel) row: writes du, ddelta (L) and dA (N, this batch's share),
// adds to the work item's dBm / dCm partial sums (N, L).
template <typename T>
void scan_channel_backward(const Channel<T>& c, const Dims& s, const T* checkpoints,
                           const T* dy, Workspace<T>& ws, T* grad_u, T* grad_delta, T* grad_A,
                           T* grad_Bm, T* grad_Cm) {
  const int64_t n_state = s.d_state;
  std::fill(ws.carry.begin(), ws.carry.end(), T(0));
  std::fill(ws.grad_A.begin(), ws.grad_A.end(), T(0));
  for (int64_t seg = s.segments() - 1; seg >= 0; --seg) {
    const int64_t t0 = seg * kSegment, len = std::min(kSegment, s.length - t0);
    compute_segment_states(c, n_state, s.length, t0, len, checkpoints + seg * n_state, ws);
    adjoint_segment(c, n_state, s.length, t0, len, dy + t0, ws);
    accumulate_segment_grads(c, n_state, s.length, t0, len, dy + t0, ws, grad_Bm, grad_Cm);
    for (int64_t t = 0; t < len; ++t) {  // x_t = delta_t u_t
      grad_u[t0 + t] = ws.grad_x[t] * c.delta[t0 + t];
      grad_delta[t0 + t] = ws.grad_delta[t] + ws.grad_x[t] * c.u[t0 + t];
    }
  }
  std::copy(ws.grad_A.begin(), ws.grad_A.end(), grad_A);
}

Dims check_inputs(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                  const at::Tensor& Bm, const at::Tensor& Cm) {
  TORCH_CHECK(u.dim() == 3 && A.dim() == 2 && Bm.dim() == 4,
              "selective_scan_cpu: expected u (B, D, L), A (D, N), B (B, G, N, L)");
  const Dims s{u.size(0), u.size(1), u.size(2), Bm.size(1), A.size(1)};
  TORCH_CHECK(s.groups > 0 && s.dim % s.groups == 0, "selective_scan_cpu: G must divide D");
  TORCH_CHECK(delta.sizes() == u.sizes(), "selective_scan_cpu: delta must match u");
  TORCH_CHECK(A.size(0) == s.dim, "selective_scan_cpu: A must be (D, N)");
  TORCH_CHECK(Bm.sizes() == at::IntArrayRef({s.batch, s.groups, s.d_state, s.length}) &&
                  Cm.sizes() == Bm.sizes(),
              "selective_scan_cpu: B and C must be (B, G, N, L)");
  for (const at::Tensor* t : {&delta, &A, &Bm, &Cm}) {
    TORCH_CHECK(t->scalar_type() == u.scalar_type(), "selective_scan_cpu: dtypes differ");
  }
  return s;
}

// Grain of at::parallel_for: enough (batch, channel) rows for ~32k state updates.
int64_t row_grain(const Dims& s) {
  return std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, s.length * s.d_state));
}

// Returns y (B, D, L), the last state (B, D, N) and the checkpoints (B, D, S, N).
std::tuple<at::Tensor, at::Tensor, at::Tensor> scan_forward(const at::Tensor& u_in,
                                                            const at::Tensor& delta_in,
                                                            const at::Tensor& A_in,
                                                            const at::Tensor& Bm_in,
                                                            const at::Tensor& Cm_in) {
  const Dims s = check_inputs(u_in, delta_in, A_in, Bm_in, Cm_in);
  const at::Tensor u = u_in.contiguous(), delta = delta_in.contiguous(), A = A_in.contiguous(),
                   Bm = Bm_in.contiguous(), Cm = Cm_in.contiguous();
  at::Tensor y = at::empty(u.sizes(), u.options());
  at::Tensor last = at::empty({s.batch, s.dim, s.d_state}, u.options());
  at::Tensor checkpoints = at::empty({s.batch, s.dim, s.segments(), s.d_state}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_cpu_forward", [&] {
    at::parallel_for(0, s.batch * s.dim, row_grain(s), [&](int64_t begin, int64_t end) {
      Workspace<scalar_t> ws(s.d_state);
      for (int64_t row = begin; row < end; ++row) {
        const int64_t b = row / s.dim, d = row % s.dim;
        const auto c = channel_of(s, u.const_data_ptr<scalar_t>(),
                                  delta.const_data_ptr<scalar_t>(), A.const_data_ptr<scalar_t>(),
                                  Bm.const_data_ptr<scalar_t>(), Cm.const_data_ptr<scalar_t>(), b,
                                  d);
        scan_channel_forward(c, s, ws, y.mutable_data_ptr<scalar_t>() + row * s.length,
                             checkpoints.mutable_data_ptr<scalar_t>() +
                                 row * s.segments() * s.d_state,
                             last.mutable_data_ptr<scalar_t>() + row * s.d_state);
      }
    });
  });
  return {y, last, checkpoints};
}

// Slices each group's channels are cut into for the backward: enough work items for the
// thread pool; every slice holds its own (N, L) partial sums of dBm and dCm.
int64_t channel_slices(const Dims& s) {
  const int64_t wanted = 4 * static_cast<int64_t>(at::get_num_threads());
  const int64_t per_group = (wanted + s.batch * s.groups - 1) / (s.batch * s.groups);
  return std::clamp<int64_t>(per_group, 1, s.dim_per_group());
}

// Returns the gradients of u, delta, A, Bm, Cm for the output gradient grad_y (B, D, L).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> scan_backward(
    const at::Tensor& u_in, const at::Tensor& delta_in, const at::Tensor& A_in,
    const at::Tensor& Bm_in, const at::Tensor& Cm_in, const at::Tensor& checkpoints_in,
    const at::Tensor& grad_y_in) {
  const Dims s = check_inputs(u_in, delta_in, A_in, Bm_in, Cm_in);
  TORCH_CHECK(grad_y_in.sizes() == u_in.sizes() &&
                  grad_y_in.scalar_type() == u_in.scalar_type(),
              "selective_scan_cpu: grad_y must match u");
  TORCH_CHECK(checkpoints_in.sizes() ==
                  at::IntArrayRef({s.batch, s.dim, s.segments(), s.d_state}),
              "selective_scan_cpu: checkpoints do not match the inputs");
  const at::Tensor u = u_in.contiguous(), delta = delta_in.contiguous(), A = A_in.contiguous(),
                   Bm = Bm_in.contiguous(), Cm = Cm_in.contiguous(),
                   checkpoints = checkpoints_in.contiguous(), grad_y = grad_y_in.contiguous();
  const int64_t slices = channel_slices(s), dg = s.dim_per_group();
  at::Tensor grad_u = at::empty(u.sizes(), u.options());
  at::Tensor grad_delta = at::empty(u.sizes(), u.options());
  at::Tensor grad_A = at::empty({s.batch, s.dim, s.d_state}, A.options());
  at::Tensor grad_Bm = at::zeros({s.batch, s.groups, slices, s.d_state, s.length}, u.options());
  at::Tensor grad_Cm = at::zeros(grad_Bm.sizes(), u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_cpu_backward", [&] {
    at::parallel_for(0, s.batch * s.groups * slices, 1, [&](int64_t begin, int64_t end) {
      Workspace<scalar_t> ws(s.d_state);
      for (int64_t item = begin; item < end; ++item) {
        const int64_t bg = item / slices, slice = item % slices, b = bg / s.groups;
        const int64_t part = item * s.d_state * s.length;  // this item's dBm / dCm partials
        const int64_t first = (bg % s.groups) * dg;
        for (int64_t d = first + slice * dg / slices; d < first + (slice + 1) * dg / slices;
             ++d) {
          const int64_t row = b * s.dim + d;
          const auto c = channel_of(s, u.const_data_ptr<scalar_t>(),
                                    delta.const_data_ptr<scalar_t>(),
                                    A.const_data_ptr<scalar_t>(), Bm.const_data_ptr<scalar_t>(),
                                    Cm.const_data_ptr<scalar_t>(), b, d);
          scan_channel_backward(
              c, s, checkpoints.const_data_ptr<scalar_t>() + row * s.segments() * s.d_state,
              grad_y.const_data_ptr<scalar_t>() + row * s.length, ws,
              grad_u.mutable_data_ptr<scalar_t>() + row * s.length,
              grad_delta.mutable_data_ptr<scalar_t>() + row * s.length,
              grad_A.mutable_data_ptr<scalar_t>() + row * s.d_state,
              grad_Bm.mutable_data_ptr<scalar_t>() + part,
              grad_Cm.mutable_data_ptr<scalar_t>() + part);
        }
      }
    });
  });
  return {grad_u, grad_delta, grad_A.sum(0), grad_Bm.sum(2), grad_Cm.sum(2)};
}

}  // namespace

TORCH_LIBRARY(fusion_mamba_scan, m) {
  m.def("forward(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C) -> (Tensor, Tensor, Tensor)");
  m.def(
      "backward(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor checkpoints, "
      "Tensor grad_y) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fusion_mamba_scan, CPU, m) {
  m.impl("forward", &scan_forward);
  m.impl("backward", &scan_backward);
}
