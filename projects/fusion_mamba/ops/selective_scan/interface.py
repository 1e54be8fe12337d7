"""Public selective-scan entry points: check the inputs, pick a backend, call it."""
import torch

from .backends import get_backend, resolve_backend
from .common import check_scan_inputs

_STATE_BACKENDS = ('reference', 'torch', 'parallel')  # return all states themselves


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False, backend='auto'):
    """Mamba's selective scan with mamba-ssm's argument names and semantics.

    h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t;  y_t = C_t . h_t + D u_t;  y *= silu(z),
    with delta = softplus(delta + delta_bias) when ``delta_softplus``.

    Args:
        u, delta: (B, D, L).
        A: (D, N) (negative for a stable scan).
        B, C: (B, N, L) or (B, G, N, L), G dividing D (channel d uses group d // (D // G)).
        D, delta_bias: (D,) or None. z: (B, D, L) or None.
        backend: 'auto', 'reference', 'torch', 'triton', 'mamba_ssm', 'cpp' or 'parallel' (see
            ``backends``).

    Returns:
        y (B, D, L) in u's dtype; with ``return_last_state`` also the final state (B, D, N)
        in float32 (float64 for float64 inputs), which carries no gradient.
    """
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    impl = get_backend(resolve_backend(backend, u.device))
    y, last = impl.selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                  return_last_state)
    y = y.to(u.dtype)
    return (y, last) if return_last_state else y


def selective_scan_states(u, delta, A, B, delta_bias=None, delta_softplus=False, backend='auto'):
    """All hidden states of the scan (what Spatial-Mamba's state fusion works on).

    Arguments as :func:`selective_scan` (no C, D, z). Returns h in u's dtype, differentiable:
    (B, D, L) when N == 1, else (B, D, N, L).

    With one state per channel (N == 1) the states are the output of the scan with C = 1 and
    no D, so every backend's scan kernel computes them ('auto' is then the fused kernel of the
    device: 'triton' on CUDA, 'cpp' on CPU). For N > 1 'reference', 'torch' and 'parallel'
    return them ('triton', 'cpp' and 'auto' run the chunked torch implementation on the
    input's device);
    'mamba_ssm' cannot return them.
    """
    check_scan_inputs(u, delta, A, B, None, None, None, delta_bias)
    name = resolve_backend(backend, u.device)
    if A.shape[1] == 1 and name not in _STATE_BACKENDS:
        ones = torch.ones_like(B)  # C = 1: y_t = h_t (a constant, no gradient)
        h, _ = get_backend(name).selective_scan(u, delta, A, B, ones, None, None, delta_bias,
                                                delta_softplus, False)
        return h.to(u.dtype)
    if name == 'mamba_ssm':
        raise ValueError("backend 'mamba_ssm' returns hidden states only for d_state 1; use "
                         "'torch' or 'auto'")
    impl = get_backend(name if name in _STATE_BACKENDS else 'torch')
    h = impl.selective_scan_states(u, delta, A, B, delta_bias, delta_softplus).to(u.dtype)
    return h.squeeze(2) if A.shape[1] == 1 else h
