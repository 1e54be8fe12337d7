"""``tools/dist_train.sh CONFIG 2`` and ``tools/dist_test.sh`` on a CPU-only machine: two
processes over gloo keep identical weights, and evaluation with 2 processes gives the
metrics of 1."""
import re
import socket
import subprocess
import sys

import pytest
import torch

from test_train_test import REPO, write_tiny_config

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason='torch.distributed is not available')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_script(script, *args, cwd):
    env = dict(PATH='/usr/bin:/bin', PYTHON=sys.executable, PORT=str(free_port()),
               OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1', HOME=str(cwd))
    proc = subprocess.run(['bash', str(REPO / 'tools' / script), *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    return log


def coco_metrics(log: str) -> str:
    found = re.findall(r'bbox_mAP_copypaste: ([-\d. ]+)', log)
    assert found, log[-3000:]
    return found[-1].strip()


def test_two_process_training_keeps_ranks_in_sync_and_test_matches(tmp_path):
    config = write_tiny_config(tmp_path, tmp_path / 'demo_pairs', epochs=2)
    config.write_text(config.read_text() + (
        "custom_hooks = [dict(type='RankSyncCheckHook', interval=1)]\n"
        "model = dict(test_cfg=dict(score_thr=0.0))\n"))
    work = tmp_path / 'work'
    log = run_script('dist_train.sh', config, 2, '--work-dir', work, cwd=tmp_path)
    final = re.findall(r'weights after training \(world size 2\): rank 0 (\w+), rank 1 (\w+)',
                       log)
    assert len(final) == 1 and final[0][0] == final[0][1], log[-3000:]
    assert len(re.findall(r'weights at iteration \d+ \(world size 2\)', log)) >= 2

    ckpt = work / 'epoch_2.pth'
    assert (work / 'best_coco_bbox_mAP_epoch_2.pth').is_file(), sorted(work.iterdir())
    one = coco_metrics(run_script('dist_test.sh', config, ckpt, 1, '--work-dir',
                                  tmp_path / 'test1', cwd=tmp_path))
    two = coco_metrics(run_script('dist_test.sh', config, ckpt, 2, '--work-dir',
                                  tmp_path / 'test2', cwd=tmp_path))
    assert one == two


def test_cpu_set_up_needs_the_pytorch_launcher():
    from fusion_mamba.engine import init_cpu_distributed
    assert init_cpu_distributed('none') is False
    if torch.cuda.is_available():
        assert init_cpu_distributed('slurm') is False  # mmengine's own set-up applies
    else:
        with pytest.raises(RuntimeError, match='--launcher slurm needs CUDA'):
            init_cpu_distributed('slurm')
