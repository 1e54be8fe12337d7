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
    """The recorded launches are the ones a P3 DSSF call at batch 8 makes (one whole-sequence
    forward that saves states, one 32-channel backward), and the backward's token
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
    assert names == ['_scan_fwd_seq_kernel', '_scan_bwd_seq_kernel']
    assert 'SUMMARY=False' in results[0]['kernel'] and 'BD=32' in results[1]['kernel']
    assert out.exists() and len(list((tmp_path / 'sass').iterdir())) == 2
    backward = results[1]
    assert backward['reg'] > 0 and backward['instructions'] > 0
    # the loops: summary carry, recompute, reverse, and the chunk loop around the last two
    assert len(backward['loops']) >= 3
    shuffles = max(loop['shuffles'] for loop in backward['loops'])
    assert 0 < shuffles < 160, shuffles

    inference = load_tool().main(['--inference', '--batch', '16'])
    assert [r['kernel'].split()[0] for r in inference] == ['_scan_fwd_seq_kernel']
    assert 'SAVE_STATES=False' in inference[0]['kernel'] and inference[0]['loops']


@pytest.mark.parametrize('batch,fwd_segments,bwd_segments',
                         [(8, 1, 1), (4, 2, 1), (2, 4, 2), (1, 8, 4)])
def test_training_forward_fills_the_backward_wave(batch, fwd_segments, bwd_segments):
    """A forward that saves states for a backward cuts its sequences for the backward's
    ``seq_bwd_programs`` (1024), not for the gradient-free forward's ``seq_fwd_programs``
    (2048): at batch 8 a P3 DSSF call (2 x 512 channels, 4 directions) has 1024 forward
    programs of 32 channels and walks whole sequences; at batch 4 it has 512 programs in 2
    segments. The gradient-free forward of batch 8 still cuts its sequences in 2. Counted
    from the recorded launches (meta tensors: no GPU): grid (channel blocks, batch x
    segments, directions), plus one summary launch where a pass is cut."""
    pytest.importorskip('triton')
    tool = load_tool()
    launches = tool.record_ss2d_step(tool.parse_args(['--batch', str(batch)]))
    names = [launch.kernel.__name__ for launch in launches]
    forwards = [launch for launch, name in zip(launches, names) if name == '_scan_fwd_seq_kernel']
    backward = launches[-1]
    assert backward.kernel.__name__ == '_scan_bwd_seq_kernel'
    assert forwards[-1].grid[1] == batch * fwd_segments
    assert len(forwards) == (2 if fwd_segments > 1 else 1)
    assert backward.grid[1] == batch * bwd_segments
    assert ('_scan_bwd_seq_summary_kernel' in names) == (bwd_segments > 1)
    # the forward's programs: about one wave of the backward's target, never more than twice
    programs = forwards[-1].grid[0] * forwards[-1].grid[1] * forwards[-1].grid[2]
    assert programs >= 1024 / 2 and (fwd_segments == 1 or programs < 2 * 1024)


def test_gradient_free_forward_keeps_its_own_segments():
    """The gradient-free forward of a batch-8 P3 DSSF call (1024 programs) still cuts its
    sequences for ``seq_fwd_programs`` (2048): a summary launch and two segments."""
    pytest.importorskip('triton')
    tool = load_tool()
    inference = tool.record_ss2d_step(tool.parse_args(['--batch', '8', '--inference']))
    assert len(inference) == 2 and inference[-1].grid[1] == 8 * 2
