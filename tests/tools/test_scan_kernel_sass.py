"""scan_kernel_sass.py: the scan kernels of an SS2D training step compiled offline for sm_90
(needs Triton with its CUDA tools, not a GPU)."""
import importlib.util
import os.path as osp
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools/analysis_tools/scan_kernel_sass.py'


def load_tool():
    spec = importlib.util.spec_from_file_location('scan_kernel_sass', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sass_counts_of_fm_yolov8_l_p3_training_step(tmp_path):
    """The recorded launches are the ones a P3 DSSF call at batch 8 makes (segmented
    forward: summaries, then outputs; one 32-channel backward), and the backward's token
    loops sum dB and dC over 8 lanes: about 80 shuffles per two-token iteration of the
    reverse loop, where channels on all 32 lanes (the layout before 9f0f85b) needed 320.
    ``--inference``: one gradient-free forward launch (batch 16: no segments)."""
    triton = pytest.importorskip('triton')
    tools = osp.join(osp.dirname(triton.__file__), 'backends', 'nvidia', 'bin', 'cuobjdump')
    if not osp.exists(tools):
        pytest.skip("this Triton has no CUDA tools (cuobjdump)")
    out = tmp_path / 'sass.json'
    results = load_tool().main(['--out', str(out), '--dump', str(tmp_path / 'sass')])
    names = [r['kernel'].split()[0] for r in results]
    assert names == ['_scan_fwd_seq_kernel', '_scan_fwd_seq_kernel', '_scan_bwd_seq_kernel']
    assert 'SUMMARY=True' in results[0]['kernel'] and 'BD=32' in results[2]['kernel']
    assert out.exists() and len(list((tmp_path / 'sass').iterdir())) == 3
    backward = results[2]
    assert backward['reg'] > 0 and backward['instructions'] > 0
    # the loops: summary carry, recompute, reverse, and the chunk loop around the last two
    assert len(backward['loops']) >= 3
    shuffles = max(loop['shuffles'] for loop in backward['loops'])
    assert 0 < shuffles < 160, shuffles

    inference = load_tool().main(['--inference', '--batch', '16'])
    assert [r['kernel'].split()[0] for r in inference] == ['_scan_fwd_seq_kernel']
    assert 'SAVE_STATES=False' in inference[0]['kernel'] and inference[0]['loops']
