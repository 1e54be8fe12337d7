"""AutocastLayerNorm: bf16 in, bf16 out under bf16 autocast, statistics accurate to float32,
nn.LayerNorm otherwise (float16 autocast, no autocast)."""
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer

from fusion_mamba.models.layers import STATE_SPACE_NORM, AutocastLayerNorm

EPS = 1e-6


def layer_norm_f64(x, weight, bias):
    """Layer norm over the last axis, written out in float64."""
    x = x.double()
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).square().mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + EPS) * weight.double() + bias.double()


def random_norm(channels, seed=0):
    gen = torch.Generator().manual_seed(seed)
    norm = AutocastLayerNorm(channels, eps=EPS)
    with torch.no_grad():
        norm.weight.copy_(1 + 0.5 * torch.randn(channels, generator=gen))
        norm.bias.copy_(0.5 * torch.randn(channels, generator=gen))
    return norm


def offset_rows(dtype, offset, channels=256, seed=1):
    """(2, 3, 5, C) rows of mean ``offset`` and spread 1 (far from zero mean, summed in 16
    bits, their mean and variance would be lost to rounding)."""
    gen = torch.Generator().manual_seed(seed)
    return (offset + torch.randn(2, 3, 5, channels, generator=gen)).to(dtype)


DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)]


@pytest.mark.parametrize('device', DEVICES)
def test_under_bf16_autocast_normalises_in_bf16_with_accurate_statistics(device):
    bf16 = torch.bfloat16
    norm = random_norm(256).to(device)
    x = offset_rows(bf16, 100).to(device)
    with torch.autocast(device, dtype=bf16):
        out = norm(x)
        plain = nn.LayerNorm(256, eps=EPS).to(device)(x)
    assert out.dtype == bf16
    if device == 'cuda':  # CUDA autocast runs nn.LayerNorm in float32 (CPU autocast does not)
        assert plain.dtype == torch.float32
    ref = layer_norm_f64(x, norm.weight.detach(), norm.bias.detach())
    # one bf16 rounding of an output of magnitude ~3
    torch.testing.assert_close(out.double(), ref, rtol=1e-2, atol=3e-2)

    # gradients, at a mean of a few units (at 100 the bf16 weight gradient of torch's CPU
    # kernel is off by 6 %)
    x = offset_rows(bf16, 3).to(device).requires_grad_()
    with torch.autocast(device, dtype=bf16):
        out = norm(x)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(2)).to(device)
    out.backward(grad.to(bf16))
    x64 = x.detach().double().requires_grad_()
    w64 = norm.weight.detach().double().requires_grad_()
    b64 = norm.bias.detach().double().requires_grad_()
    layer_norm_f64(x64, w64, b64).backward(grad.to(bf16).double())
    assert norm.weight.grad.dtype == torch.float32  # the parameters stay float32
    for got, want in ((x.grad, x64.grad), (norm.weight.grad, w64.grad),
                      (norm.bias.grad, b64.grad)):
        scale = want.abs().max().item()
        torch.testing.assert_close(got.double(), want, rtol=2e-2, atol=2e-2 * scale)


@pytest.mark.parametrize('device', DEVICES)
def test_float32_inputs_get_float32_statistics_and_a_bf16_output(device):
    """A float32 input (a float32 residual, say) is normalised before the cast to bf16: at
    a mean of 1000 a cast first would leave steps of 4 between neighbouring values."""
    norm = random_norm(256).to(device)
    x = offset_rows(torch.float32, 1000).to(device)
    with torch.autocast(device, dtype=torch.bfloat16):
        out = norm(x)
    assert out.dtype == torch.bfloat16
    ref = layer_norm_f64(x, norm.weight.detach(), norm.bias.detach())
    torch.testing.assert_close(out.double(), ref, rtol=1e-2, atol=3e-2)


@pytest.mark.parametrize('device', DEVICES)
def test_under_fp16_autocast_is_nn_layer_norm(device):
    """float16 keeps autocast's float32 layer norm: a float16 one would write the weight and
    bias gradients, sums over every row of loss-scaled gradients, in float16."""
    norm = random_norm(256).to(device)
    plain = nn.LayerNorm(256, eps=EPS).to(device)
    plain.load_state_dict(norm.state_dict())
    x = offset_rows(torch.float16, 3).to(device)
    with torch.autocast(device, dtype=torch.float16):
        out, want = norm(x), plain(x)
    assert out.dtype == want.dtype and torch.equal(out, want)


def test_without_autocast_is_nn_layer_norm():
    norm = random_norm(64)
    plain = nn.LayerNorm(64, eps=EPS)
    plain.load_state_dict(norm.state_dict())  # the same state dict
    x = torch.randn(4, 7, 64)
    assert torch.equal(norm(x), plain(x))
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=False):
        assert norm(x).dtype == torch.float32


def test_default_norm_of_the_state_space_modules_builds_without_a_registry_scope():
    name, norm = build_norm_layer(STATE_SPACE_NORM, 32)
    assert isinstance(norm, AutocastLayerNorm) and name == 'ln' and norm.eps == EPS


def test_configs_name_it_autocast_ln():
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    _, norm = build_norm_layer(dict(type='AutocastLN', eps=EPS), 32)
    assert type(norm) is AutocastLayerNorm
    assert MODELS.get('AutocastLN') is AutocastLayerNorm
