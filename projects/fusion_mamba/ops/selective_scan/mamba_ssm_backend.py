"""Adapter for mamba-ssm's CUDA ``selective_scan_fn`` (imported only when this backend is used)."""


def load():
    """Import and return mamba-ssm's ``selective_scan_fn``; raises when it does not import."""
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    return selective_scan_fn


def _f32(t):
    return None if t is None else t.float()


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False):
    """mamba-ssm selective scan; returns ``(y (B, D, L), last_state or None)``."""
    out = load()(u, delta, A.float(), B, C, _f32(D), z, _f32(delta_bias), delta_softplus,
                 return_last_state)
    return out if return_last_state else (out, None)
