// Selective scan (Mamba's S6 recurrence) on the CPU: forward and backward, float32 / float64.
//
// Shapes (mamba-ssm's names; any strides, one dtype for all, which the Python side ensures):
//   u, delta  (B, D, L)      delta is final: bias and softplus are applied by the caller
//   A         (D, N)
//   Bm, Cm    (B, G, N, L)   channel d reads group d / (D / G)
// For every (batch b, channel d), with the state h (N) starting at zero:
//   h_t = exp(delta_t A) * h_{t-1} + delta_t u_t Bm_t,      y_t = Cm_t . h_t
//
// The sequence is cut into segments of kSegment tokens. Inside a segment the decays and
// drives are computed in passes along the tokens (vectorised whatever N is), and only the
// recurrence itself is a sequential loop. The forward saves the state at the start of every
// segment ("checkpoints", (B, D, S, N) with S = ceil(L / kSegment)); the backward recomputes a
// segment's states from its checkpoint and runs the adjoint recurrence
//   g_t = dy_t Cm_t + a_{t+1} g_{t+1}      (g_t = dL/dh_t, a_t = exp(delta_t A))
// backwards through the segments, so no (B, D, N, L) tensor is ever stored.
//
// Work is split over (batch, channel) rows with at::parallel_for. The gradients of Bm and Cm
// sum over the channels of a group: in the backward each parallel work item owns a slice of
// one group's channels and writes its own partial sums, which are added up at the end.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

constexpr int64_t kSegment = 64;  // tokens between two saved states

// exp(x) = 2^k exp(r) with k = round(x / ln 2) and |r| <= ln(2) / 2, exp(r) by Cephes'
// degree-5 polynomial (about 1 ulp). Branch-free, so loops over it vectorise. x is clamped to
// [-88, 88.3]: results below ~1e-38 flush to 0 and the largest is finite.
inline float decay_exp(float x) {
  x = std::min(std::max(x, -88.0f), 88.3f);
  const float k = (x * 1.44269504f + 12582912.f) - 12582912.f;  // round to nearest integer
  const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;  // 2^k (0 for k = -127)
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

// Inputs of one (batch, channel) row: u, delta (L), the A row (N) and the channel's group of
// Bm / Cm as (N, L) rows of stride `length`.
template <typename T>
struct Channel {
  const T* u;
  const T* delta;
  const T* A;
  const T* Bm;
  const T* Cm;
  int64_t length, d_state;
};

// u, delta, A, Bm, Cm made contiguous; they must outlive the Inputs made from them.
using ContiguousInputs = std::array<at::Tensor, 5>;

ContiguousInputs contiguous_inputs(const at::Tensor& u, const at::Tensor& delta,
                                   const at::Tensor& A, const at::Tensor& Bm,
                                   const at::Tensor& Cm) {
  return {u.contiguous(), delta.contiguous(), A.contiguous(), Bm.contiguous(), Cm.contiguous()};
}

// Base pointers of the contiguous inputs.
template <typename T>
struct Inputs {
  Inputs(const Dims& s, const ContiguousInputs& t)
      : s(s), u(t[0].const_data_ptr<T>()), delta(t[1].const_data_ptr<T>()),
        A(t[2].const_data_ptr<T>()), Bm(t[3].const_data_ptr<T>()), Cm(t[4].const_data_ptr<T>()) {}

  Channel<T> channel(int64_t b, int64_t d) const {
    const int64_t row = (b * s.dim + d) * s.length;
    const int64_t group = (b * s.groups + d / s.dim_per_group()) * s.d_state * s.length;
    return {u + row, delta + row, A + d * s.d_state, Bm + group, Cm + group, s.length,
            s.d_state};
  }

  Dims s;
  const T *u, *delta, *A, *Bm, *Cm;
};

// Scratch of one segment: per state index n, a row of kSegment (+1) tokens.
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
  std::vector<T> grad_x;   // dL/dx_t
  std::vector<T> grad_delta;  // dL/ddelta_t through the decays
  std::vector<T> carry;    // a_{t+1} g_{t+1} of the token after the segment
  std::vector<T> grad_A;   // dL/dA_n summed over the tokens done so far
};

// Calls f(n0, std::integral_constant<int, W>{}) on blocks [n0, n0 + W) covering [0, n_state)
// with W in {8, 4, 2, 1}, so that a sequential loop keeps W states in registers.
template <typename F>
void for_state_blocks(int64_t n_state, const F& f) {
  int64_t n0 = 0;
  for (; n0 + 8 <= n_state; n0 += 8) f(n0, std::integral_constant<int, 8>{});
  if (n0 + 4 <= n_state) {
    f(n0, std::integral_constant<int, 4>{});
    n0 += 4;
  }
  if (n0 + 2 <= n_state) {
    f(n0, std::integral_constant<int, 2>{});
    n0 += 2;
  }
  if (n0 < n_state) f(n0, std::integral_constant<int, 1>{});
}

// Fills ws.drive, ws.decay and ws.states for tokens [t0, t0 + len) from the state `start` (N).
template <typename T>
void compute_segment_states(const Channel<T>& c, int64_t t0, int64_t len, const T* start,
                            Workspace<T>& ws) {
  T* __restrict__ x = ws.drive.data();
  const T* __restrict__ dt = c.delta + t0;
  const T* __restrict__ u = c.u + t0;
#pragma omp simd
  for (int64_t t = 0; t < len; ++t) x[t] = dt[t] * u[t];
  for (int64_t n = 0; n < c.d_state; ++n) {
    T* __restrict__ a = ws.decay.data() + n * kSegment;
    T* __restrict__ h = ws.states.data() + n * (kSegment + 1);
    const T* __restrict__ bn = c.Bm + n * c.length + t0;
    const T a_n = c.A[n];
    h[0] = start[n];
#pragma omp simd
    for (int64_t t = 0; t < len; ++t) {
      a[t] = decay_exp(dt[t] * a_n);
      h[t + 1] = x[t] * bn[t];  // the drive, turned into the state below
    }
  }
  for_state_blocks(c.d_state, [&](int64_t n0, auto width) {
    constexpr int W = decltype(width)::value;
    const T* a = ws.decay.data() + n0 * kSegment;
    T* h = ws.states.data() + n0 * (kSegment + 1);
    T state[W];
    for (int i = 0; i < W; ++i) state[i] = h[i * (kSegment + 1)];
    for (int64_t t = 0; t < len; ++t) {
      for (int i = 0; i < W; ++i) {
        state[i] = a[i * kSegment + t] * state[i] + h[i * (kSegment + 1) + t + 1];
        h[i * (kSegment + 1) + t + 1] = state[i];
      }
    }
  });
}

// y_t = Cm_t . h_t for the segment's tokens (y points at token t0).
template <typename T>
void write_outputs(const Channel<T>& c, int64_t t0, int64_t len, const Workspace<T>& ws,
                   T* __restrict__ y) {
  std::fill(y, y + len, T(0));
  for (int64_t n = 0; n < c.d_state; ++n) {
    const T* __restrict__ cn = c.Cm + n * c.length + t0;
    const T* __restrict__ h = ws.states.data() + n * (kSegment + 1) + 1;
#pragma omp simd
    for (int64_t t = 0; t < len; ++t) y[t] += cn[t] * h[t];
  }
}

// Forward of one row: y (L), its checkpoints (S, N) and its last state (N).
template <typename T>
void scan_channel_forward(const Channel<T>& c, Workspace<T>& ws, T* y, T* checkpoints,
                          T* last) {
  std::fill(last, last + c.d_state, T(0));  // the running state between segments
  for (int64_t t0 = 0; t0 < c.length; t0 += kSegment) {
    const int64_t len = std::min(kSegment, c.length - t0);
    std::copy(last, last + c.d_state, checkpoints + t0 / kSegment * c.d_state);
    compute_segment_states(c, t0, len, last, ws);
    write_outputs(c, t0, len, ws, y + t0);
    for (int64_t n = 0; n < c.d_state; ++n) last[n] = ws.states[n * (kSegment + 1) + len];
  }
}

// ws.adjoint = g_t over the segment (dy points at token t0); ws.carry becomes a_{t0} g_{t0}.
template <typename T>
void adjoint_segment(const Channel<T>& c, int64_t t0, int64_t len, const T* dy,
                     Workspace<T>& ws) {
  for_state_blocks(c.d_state, [&](int64_t n0, auto width) {
    constexpr int W = decltype(width)::value;
    const T* a = ws.decay.data() + n0 * kSegment;
    const T* cm = c.Cm + n0 * c.length + t0;
    T* g = ws.adjoint.data() + n0 * kSegment;
    T carry[W];
    std::copy(ws.carry.begin() + n0, ws.carry.begin() + n0 + W, carry);
    for (int64_t t = len - 1; t >= 0; --t) {
      for (int i = 0; i < W; ++i) {
        g[i * kSegment + t] = dy[t] * cm[i * c.length + t] + carry[i];
        carry[i] = a[i * kSegment + t] * g[i * kSegment + t];
      }
    }
    std::copy(carry, carry + W, ws.carry.begin() + n0);
  });
}

// The segment's gradient terms: adds to the dBm / dCm partial sums (N, L), fills ws.grad_x
// and ws.grad_delta, adds to ws.grad_A.
template <typename T>
void accumulate_segment_grads(const Channel<T>& c, int64_t t0, int64_t len,
                              const T* __restrict__ dy, Workspace<T>& ws, T* grad_Bm,
                              T* grad_Cm) {
  T* __restrict__ gx = ws.grad_x.data();
  T* __restrict__ gdt = ws.grad_delta.data();
  const T* __restrict__ x = ws.drive.data();
  const T* __restrict__ dt = c.delta + t0;
  std::fill(gx, gx + len, T(0));
  std::fill(gdt, gdt + len, T(0));
  for (int64_t n = 0; n < c.d_state; ++n) {
    const T* __restrict__ g = ws.adjoint.data() + n * kSegment;
    const T* __restrict__ a = ws.decay.data() + n * kSegment;
    const T* __restrict__ h = ws.states.data() + n * (kSegment + 1);  // h[t] = h_{t-1}
    const T* __restrict__ bn = c.Bm + n * c.length + t0;
    T* __restrict__ dbn = grad_Bm + n * c.length + t0;
    T* __restrict__ dcn = grad_Cm + n * c.length + t0;
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

// Backward of one row: writes du, ddelta (L) and this row's share of dA (N), adds to the
// work item's dBm / dCm partial sums (N, L).
template <typename T>
void scan_channel_backward(const Channel<T>& c, const T* checkpoints, const T* dy,
                           Workspace<T>& ws, T* grad_u, T* grad_delta, T* grad_A, T* grad_Bm,
                           T* grad_Cm) {
  std::fill(ws.carry.begin(), ws.carry.end(), T(0));
  std::fill(ws.grad_A.begin(), ws.grad_A.end(), T(0));
  const int64_t last_t0 = (c.length - 1) / kSegment * kSegment;
  for (int64_t t0 = last_t0; t0 >= 0; t0 -= kSegment) {
    const int64_t len = std::min(kSegment, c.length - t0);
    compute_segment_states(c, t0, len, checkpoints + t0 / kSegment * c.d_state, ws);
    adjoint_segment(c, t0, len, dy + t0, ws);
    accumulate_segment_grads(c, t0, len, dy + t0, ws, grad_Bm, grad_Cm);
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
  TORCH_CHECK(s.batch > 0 && s.dim > 0 && s.length > 0 && s.d_state > 0,
              "selective_scan_cpu: B, D, L and N must be positive");
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

// Grain of the forward's at::parallel_for: enough rows for ~32k state updates.
int64_t row_grain(const Dims& s) {
  return std::max<int64_t>(1, (int64_t(1) << 15) / (s.length * s.d_state));
}

// Returns y (B, D, L), the last state (B, D, N) and the checkpoints (B, D, S, N).
std::tuple<at::Tensor, at::Tensor, at::Tensor> scan_forward(const at::Tensor& u,
                                                            const at::Tensor& delta,
                                                            const at::Tensor& A,
                                                            const at::Tensor& Bm,
                                                            const at::Tensor& Cm) {
  const Dims s = check_inputs(u, delta, A, Bm, Cm);
  const ContiguousInputs inputs = contiguous_inputs(u, delta, A, Bm, Cm);
  at::Tensor y = at::empty(u.sizes(), u.options());
  at::Tensor last = at::empty({s.batch, s.dim, s.d_state}, u.options());
  at::Tensor checkpoints = at::empty({s.batch, s.dim, s.segments(), s.d_state}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_cpu_forward", [&] {
    const Inputs<scalar_t> in(s, inputs);
    scalar_t* y_ptr = y.mutable_data_ptr<scalar_t>();
    scalar_t* checkpoints_ptr = checkpoints.mutable_data_ptr<scalar_t>();
    scalar_t* last_ptr = last.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, s.batch * s.dim, row_grain(s), [&](int64_t begin, int64_t end) {
      Workspace<scalar_t> ws(s.d_state);
      for (int64_t row = begin; row < end; ++row) {
        scan_channel_forward(in.channel(row / s.dim, row % s.dim), ws, y_ptr + row * s.length,
                             checkpoints_ptr + row * s.segments() * s.d_state,
                             last_ptr + row * s.d_state);
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
    const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A, const at::Tensor& Bm,
    const at::Tensor& Cm, const at::Tensor& checkpoints, const at::Tensor& grad_y) {
  const Dims s = check_inputs(u, delta, A, Bm, Cm);
  TORCH_CHECK(grad_y.sizes() == u.sizes() && grad_y.scalar_type() == u.scalar_type(),
              "selective_scan_cpu: grad_y must match u");
  TORCH_CHECK(checkpoints.sizes() == at::IntArrayRef({s.batch, s.dim, s.segments(), s.d_state}),
              "selective_scan_cpu: checkpoints do not match the inputs");
  const ContiguousInputs inputs = contiguous_inputs(u, delta, A, Bm, Cm);
  const at::Tensor checkpoints_c = checkpoints.contiguous(), grad_y_c = grad_y.contiguous();
  const int64_t slices = channel_slices(s), dg = s.dim_per_group();
  at::Tensor grad_u = at::empty(u.sizes(), u.options());
  at::Tensor grad_delta = at::empty(u.sizes(), u.options());
  at::Tensor grad_A = at::empty({s.batch, s.dim, s.d_state}, u.options());
  at::Tensor grad_Bm = at::zeros({s.batch, s.groups, slices, s.d_state, s.length}, u.options());
  at::Tensor grad_Cm = at::zeros(grad_Bm.sizes(), u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_cpu_backward", [&] {
    const Inputs<scalar_t> in(s, inputs);
    const scalar_t* checkpoints_ptr = checkpoints_c.const_data_ptr<scalar_t>();
    const scalar_t* grad_y_ptr = grad_y_c.const_data_ptr<scalar_t>();
    scalar_t* grad_u_ptr = grad_u.mutable_data_ptr<scalar_t>();
    scalar_t* grad_delta_ptr = grad_delta.mutable_data_ptr<scalar_t>();
    scalar_t* grad_A_ptr = grad_A.mutable_data_ptr<scalar_t>();
    scalar_t* grad_Bm_ptr = grad_Bm.mutable_data_ptr<scalar_t>();
    scalar_t* grad_Cm_ptr = grad_Cm.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, s.batch * s.groups * slices, 1, [&](int64_t begin, int64_t end) {
      Workspace<scalar_t> ws(s.d_state);
      for (int64_t item = begin; item < end; ++item) {  // item = ((b, group), slice)
        const int64_t b = item / slices / s.groups, slice = item % slices;
        const int64_t first = (item / slices % s.groups) * dg;
        const int64_t part = item * s.d_state * s.length;  // the item's dBm / dCm partials
        for (int64_t d = first + slice * dg / slices; d < first + (slice + 1) * dg / slices;
             ++d) {
          const int64_t row = b * s.dim + d;
          scan_channel_backward(in.channel(b, d),
                                checkpoints_ptr + row * s.segments() * s.d_state,
                                grad_y_ptr + row * s.length, ws, grad_u_ptr + row * s.length,
                                grad_delta_ptr + row * s.length, grad_A_ptr + row * s.d_state,
                                grad_Bm_ptr + part, grad_Cm_ptr + part);
        }
      }
    });
  });
  return {grad_u, grad_delta, grad_A.sum(0), grad_Bm.sum(2), grad_Cm.sum(2)};
}

}  // namespace

// The package's namespace; the Python side registers the fake (meta) kernels and the
// autograd formula (cpp_backend.py), and defines its other operators in the same namespace.
TORCH_LIBRARY_FRAGMENT(fusion_mamba, m) {
  m.def(
      "cpu_scan_forward(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C) -> "
      "(Tensor, Tensor, Tensor)");
  m.def(
      "cpu_scan_backward(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, "
      "Tensor checkpoints, Tensor grad_y) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fusion_mamba, CPU, m) {
  m.impl("cpu_scan_forward", &scan_forward);
  m.impl("cpu_scan_backward", &scan_backward);
}
