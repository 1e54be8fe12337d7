"""Fusion-Mamba Block: channel swap, DSSF cross terms, ablation switches, errors."""
import pytest
import torch

from fusion_mamba.models.fusion.fusion_mamba_block import DSSF, FusionMambaBlock, channel_swap
from fusion_mamba.models.fusion.simple_fusion import AddFusion, ConcatConvFusion

SSM = dict(type='SS2D', d_state=4, dt_rank='auto', backend='torch')


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def test_channel_swap_exact_groups():
    r = torch.arange(8.).view(1, 8, 1, 1)
    i = 100 + torch.arange(8.).view(1, 8, 1, 1)
    t_r, t_i = channel_swap(r, i)
    assert t_r.flatten().tolist() == [0, 1, 102, 103, 4, 5, 106, 107]
    assert t_i.flatten().tolist() == [100, 101, 2, 3, 104, 105, 6, 7]


@pytest.mark.parametrize('width', [6, 10])
def test_width_not_divisible_by_4_is_refused(width):
    with pytest.raises(ValueError, match=rf'at P4.*width {width}.*divisible by 4'):
        FusionMambaBlock(width, stage_name='P4', ssm_cfg=SSM)
    FusionMambaBlock(width, stage_name='P4', use_sscs=False, num_dssf=1, ssm_cfg=SSM)


def test_forward_backward_shapes_and_enhancement():
    torch.manual_seed(0)
    block = FusionMambaBlock(8, num_dssf=2, ssm_cfg=SSM)
    f_r = torch.randn(2, 8, 5, 7, requires_grad=True)
    f_i = torch.randn(2, 8, 5, 7, requires_grad=True)
    fused, r, i = block(f_r, f_i)
    assert fused.shape == r.shape == i.shape == (2, 8, 5, 7)
    torch.testing.assert_close(fused, r + i)
    fused.sum().backward()
    assert f_r.grad.abs().sum() > 0 and f_i.grad.abs().sum() > 0
    assert all(p.grad is not None for p in block.parameters())


def test_ablation_switches_change_parameters_as_stated():
    full = FusionMambaBlock(8, num_dssf=2, ssm_cfg=SSM)
    no_sscs = FusionMambaBlock(8, num_dssf=2, use_sscs=False, ssm_cfg=SSM)
    sscs_only = FusionMambaBlock(8, num_dssf=0, ssm_cfg=SSM)
    four = FusionMambaBlock(8, num_dssf=4, ssm_cfg=SSM)
    shared = FusionMambaBlock(8, num_dssf=2, share_weights=True, ssm_cfg=SSM)
    one_dssf = num_params(DSSF(8, SSM))
    assert num_params(full) == num_params(sscs_only) + 2 * one_dssf
    assert num_params(four) == num_params(full) + 2 * one_dssf
    assert num_params(no_sscs) == 2 * one_dssf
    assert num_params(shared) * 2 == num_params(full)
    cross_off = FusionMambaBlock(8, num_dssf=2, ir_to_rgb=False, ssm_cfg=SSM)
    assert num_params(cross_off) == num_params(full)  # Eq. 9/10 terms have no weights
    d_state_8 = FusionMambaBlock(8, num_dssf=2, ssm_cfg=dict(SSM, d_state=8))
    assert num_params(d_state_8) > num_params(full)
    ratio_1 = FusionMambaBlock(8, num_dssf=2, ssm_ratio=1.0, ssm_cfg=SSM)
    assert num_params(ratio_1) < num_params(full)


@pytest.mark.parametrize('ir_to_rgb,rgb_to_ir', [(False, True), (True, False)])
def test_dssf_cross_terms_route_information_as_stated(ir_to_rgb, rgb_to_ir):
    """Without the IR->RGB term the RGB update cannot see IR (and vice versa)."""
    torch.manual_seed(0)
    dssf = DSSF(8, SSM, ir_to_rgb=ir_to_rgb, rgb_to_ir=rgb_to_ir)
    f_r = torch.randn(1, 8, 4, 4, requires_grad=True)
    f_i = torch.randn(1, 8, 4, 4, requires_grad=True)
    out_r, out_i = dssf(f_r, f_i)
    g_r_from_i, = torch.autograd.grad(out_r.sum(), f_i, retain_graph=True, allow_unused=True)
    g_i_from_r, = torch.autograd.grad(out_i.sum(), f_r, allow_unused=True)
    # ``None``: the output does not depend on the other modality at all.
    assert (g_r_from_i is not None and bool(g_r_from_i.abs().sum() > 0)) == ir_to_rgb
    assert (g_i_from_r is not None and bool(g_i_from_r.abs().sum() > 0)) == rgb_to_ir


def test_shared_weights_treat_modalities_symmetrically():
    """With shared weights and no channel swap the block is symmetric in its inputs."""
    torch.manual_seed(0)
    block = FusionMambaBlock(8, num_dssf=1, use_sscs=False, share_weights=True,
                             ssm_cfg=SSM).eval()
    a, b = torch.randn(1, 8, 3, 5), torch.randn(1, 8, 3, 5)
    _, r_ab, i_ab = block(a, b)
    _, r_ba, i_ba = block(b, a)
    torch.testing.assert_close(r_ab, i_ba)
    torch.testing.assert_close(i_ab, r_ba)


def test_gradient_checkpointing_matches():
    torch.manual_seed(0)
    block = FusionMambaBlock(8, num_dssf=2, ssm_cfg=SSM)
    x = (torch.randn(1, 8, 4, 6, requires_grad=True), torch.randn(1, 8, 4, 6))
    block(*x)[0].sum().backward()
    grads = [p.grad.clone() for p in block.parameters()]
    block.zero_grad()
    block.with_cp = True
    block(*x)[0].sum().backward()
    for g, p in zip(grads, block.parameters()):
        torch.testing.assert_close(p.grad, g)


def test_simple_fusions():
    r, i = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    fused, r_out, i_out = AddFusion(8)(r, i)
    torch.testing.assert_close(fused, r + i)
    assert r_out is r and i_out is i
    fused, _, _ = ConcatConvFusion(8)(r, i)
    assert fused.shape == (2, 8, 4, 4)
    assert num_params(AddFusion(8)) == 0
