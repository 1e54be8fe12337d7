"""SavedActivationCounter: the bytes autograd keeps, attributed to the saving module."""
import torch
import torch.nn as nn

from fusion_mamba.utils.profiling import SavedActivationCounter, kernel_group


class _SaveInput(torch.autograd.Function):
    """Saves its input, a view of it and the extra tensor: one storage per distinct tensor."""

    @staticmethod
    def forward(ctx, x, extra):
        ctx.save_for_backward(x, x[:1], extra)
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * 2, None


class Saver(nn.Module):
    def __init__(self, extra_shape):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))
        self.extra_shape = extra_shape

    def forward(self, x):
        # the parameter is saved too (multiplication by a parameter): not an activation
        x = x * self.weight
        return _SaveInput.apply(x, torch.zeros(self.extra_shape, dtype=torch.float16))


def test_saved_bytes_by_module_class_and_path():
    model = nn.Sequential(Saver((5, )), nn.Sequential(Saver((7, 2))))
    x = torch.randn(4, 3, requires_grad=True)
    with SavedActivationCounter(model, path_depth=1) as counter:
        model(x).sum().backward()
    # first Saver: x (4x3 float32, saved by the multiplication), x * w (4x3, its view counted
    # once) and 5 float16; the second: its input (the first one's output) and x * w, 14 float16
    first = 4 * 3 * 4 + 4 * 3 * 4 + 5 * 2
    second = 4 * 3 * 4 + 4 * 3 * 4 + 14 * 2
    assert counter.by_path == {'0': first, '1': second}
    assert counter.by_class == {'Saver': first + second}
    assert counter.total_bytes == first + second
    assert 'activations saved for backward: 0 MiB' in counter.summary()
    # the hooks are gone after the context
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        model(x)
    assert counter.total_bytes == first + second


def test_kernel_groups():
    assert kernel_group('_scan_bwd_kernel') == 'selective scan'
    assert kernel_group('sm90_xmma_gemm_bf16bf16_bf16f32') == 'matmul (GEMM)'
    assert kernel_group('void at::native::vectorized_elementwise_kernel<4, ...>') == \
        'elementwise / reduce'
    assert kernel_group('multi_tensor_apply_kernel<...AdamW...>') == 'optimizer'
    # the NMS's two kernels, not a layout copy for the keep-list gather
    assert kernel_group('nms_cuda(int, float, int, float const*, unsigned long long*)') == 'NMS'
    assert kernel_group('gather_keep_from_mask(bool*, unsigned long long const*, int)') == 'NMS'
