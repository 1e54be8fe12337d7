"""The Triton kernels' logic on the CPU, through Triton's interpreter (slow; needs triton)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r'''
import torch
from ops_testing import (assert_close, assert_grads_close, detached_copy, explicit_ss2d,
                         grads_of, scan_inputs, ss2d_inputs)
from fusion_mamba.ops import selective_scan, ss2d_selective_scan

inputs = scan_inputs(2, 4, 3, 70, groups=2)
ours = selective_scan(**inputs, delta_softplus=True, backend='triton')
ref_inputs = detached_copy(inputs)
ref = selective_scan(**ref_inputs, delta_softplus=True, backend='reference')
assert_close(ours, ref, torch.float32)
assert_grads_close(grads_of(ours, inputs), grads_of(ref, ref_inputs), torch.float32)
inputs = ss2d_inputs(1, 3, 2, 3, 5)
ours = ss2d_selective_scan(**inputs, backend='triton')
ref_inputs = detached_copy(inputs)
ref = explicit_ss2d(**ref_inputs)
assert_close(ours, ref, torch.float32)
assert_grads_close(grads_of(ours, inputs), grads_of(ref, ref_inputs), torch.float32)
print('interpreter ok')
'''


@pytest.mark.slow
def test_triton_kernels_in_interpreter():
    pytest.importorskip('triton')
    here = Path(__file__).resolve().parent
    env = dict(os.environ, TRITON_INTERPRET='1',
               PYTHONPATH=os.pathsep.join([str(here), str(here.parents[1] / 'projects'),
                                           os.environ.get('PYTHONPATH', '')]))
    result = subprocess.run([sys.executable, '-c', SCRIPT], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'interpreter ok' in result.stdout
