"""The fused scan kernels as PyTorch custom operators (``torch.ops.fusion_mamba``): schema,
fake (meta) kernels and autograd pass ``torch.library.opcheck``, and ``torch.compile``
traces SS2D and the SS2D module without graph breaks, with eager's values and gradients."""
import pytest
import torch

from fusion_mamba.ops import available_backends, ss2d_selective_scan
from ops_testing import (assert_close, assert_grads_close, detached_copy, explicit_ss2d,
                         grads_of, scan_inputs, ss2d_inputs)

needs_cpp = pytest.mark.skipif('cpp' not in available_backends(),
                               reason='the compiled CPU scan could not be built here')


@needs_cpp
@pytest.mark.parametrize('groups', [1, 2])
def test_cpu_scan_op_passes_opcheck(groups):
    inputs = scan_inputs(2, 4, 3, 70, groups=groups, extras=False)
    args = tuple(inputs[k] for k in ('u', 'delta', 'A', 'B', 'C'))
    args = (*args[:3], *(t if t.dim() == 4 else t.unsqueeze(1) for t in args[3:]))
    torch.library.opcheck(torch.ops.fusion_mamba.cpu_scan_forward, args)


@pytest.mark.parametrize('backend', [
    'torch', pytest.param('cpp', marks=needs_cpp)])
def test_ss2d_compiles_without_graph_breaks(backend):
    """Dynamo sees one graph (the backend resolution is a trace-time constant, the kernels
    are opaque operators with fake kernels), and the compiled function (AOT autograd) gives
    the explicit SS2D's output and gradients."""
    inputs = ss2d_inputs(2, 3, 4, 5, 6)

    def fn(**kwargs):
        return ss2d_selective_scan(**kwargs, backend=backend)

    explanation = torch._dynamo.explain(fn)(**detached_copy(inputs))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    torch._dynamo.reset()
    compiled = torch.compile(fn, backend='aot_eager', fullgraph=True)
    ours = compiled(**inputs)
    ref_inputs = detached_copy(inputs)
    ref = explicit_ss2d(**ref_inputs)
    assert_close(ours, ref, torch.float32)
    assert_grads_close(grads_of(ours, inputs), grads_of(ref, ref_inputs), torch.float32)


def test_ss2d_module_compiles_in_one_graph():
    """The SS2D layer as a model uses it (projections, scan constants, backend 'auto')."""
    from fusion_mamba.models.layers.ss2d import SS2D
    torch.manual_seed(0)
    layer = SS2D(8, d_state=4, d_model=4)
    x = torch.randn(2, 8, 5, 7)
    explanation = torch._dynamo.explain(layer)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    torch._dynamo.reset()
    compiled = torch.compile(layer, backend='aot_eager', fullgraph=True)
    torch.testing.assert_close(compiled(x), layer(x), rtol=1e-5, atol=1e-5)
