"""The analysis tools on a tiny FM-YOLOv8 and tiny demo data, each run in a subprocess:
``benchmark_detector.py``, ``get_flops.py``, ``demo/image_demo.py``, ``robustness_eval.py``
and ``tools/test.sh`` (evaluation; ``--benchmark`` on synthetic inputs with ``--run-slow``)."""
import importlib.util
import itertools
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import mmengine
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / 'configs/fusion_mamba/fm-yolov8_demo_1xb8-5e_demo-pairs.py'
GENERATOR = dict(num_train=1, num_val=4, img_size=(128, 128))
NUM_DSSF, D_STATE, SSM_RATIO = 1, 4, 2.0
LEVELS = ((32, 8), (64, 16), (128, 32))  # (channels, stride) of P3, P4, P5 at widen 0.125

TINY_CONFIG = """
_base_ = {base!r}
data_root = {root!r}
img_scale = (128, 128)
model = dict(
    backbone=dict(rgb_stream=dict(widen_factor=0.125), in_channels=[32, 64, 128],
                  fusion=dict(num_dssf={num_dssf}, ssm_ratio={ssm_ratio},
                              ssm_cfg=dict(d_state={d_state}))),
    neck=dict(widen_factor=0.125), bbox_head=dict(widen_factor=0.125))
test_pipeline = [
    dict(type='LoadPairedImagesFromFile'),
    dict(type='PairedResize', scale=img_scale, keep_ratio=True),
    dict(type='PairedPad', size=img_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackMultiModalDetInputs'),
]
test_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, generator={generator!r}, pipeline=test_pipeline))
test_evaluator = dict(ann_file=data_root + 'annotations/val.json')
"""
ADD_FUSION_CONFIG = """
_base_ = {base!r}
model = dict(backbone=dict(fusion=dict(_delete_=True, type='AddFusion')))
"""
FLOAT = r'[-+]?\d+(?:\.\d+)?'


def load_module(relative_path: str):
    """Import a tool script as a module (for its helper functions)."""
    path = REPO / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args, **env):
    """Run a command in the repository root; fail with its output when it fails.

    One OpenMP thread: on a busy 2-core machine spinning OpenMP threads slow the tiny model
    down a hundredfold.
    """
    proc = subprocess.run([str(a) for a in args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONUNBUFFERED='1',
                                                OMP_NUM_THREADS='1', **env))
    assert proc.returncode == 0, (f'{args} exited {proc.returncode}\n'
                                  f'stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}')
    return proc.stdout


def run_python(script: str, *args) -> str:
    return run([sys.executable, REPO / script, *args])


def table_rows(stdout: str) -> dict:
    """Markdown table rows ``| name | a | b |`` -> {name: [a, b]} (header rows skipped)."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if line.startswith('|') and not set(cells[0]) <= set('-:'):
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """Tiny demo data (4 val pairs of 128x128), tiny configs (FMB with 1 DSSF, d_state 4;
    AddFusion) and a randomly initialised checkpoint with the demo classes in its meta."""
    from mmengine.registry import init_default_scope

    from fusion_mamba.datasets import DemoPairsDataset, ensure_demo_dataset
    from mmdet.registry import MODELS
    folder = tmp_path_factory.mktemp('analysis_tools')
    data_root = folder / 'demo'
    ensure_demo_dataset(str(data_root), **GENERATOR)
    config = folder / 'tiny_fmb.py'
    config.write_text(TINY_CONFIG.format(base=str(DEMO_CONFIG), root=f'{data_root}/',
                                         generator=GENERATOR, num_dssf=NUM_DSSF,
                                         d_state=D_STATE, ssm_ratio=SSM_RATIO))
    add_config = folder / 'tiny_add.py'
    add_config.write_text(ADD_FUSION_CONFIG.format(base=str(config)))
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(mmengine.Config.fromfile(config).model)
    checkpoint = folder / 'tiny.pth'
    mmengine.runner.save_checkpoint(
        dict(state_dict=model.state_dict(),
             meta=dict(dataset_meta=dict(DemoPairsDataset.METAINFO))), str(checkpoint))
    return dict(folder=folder, data_root=data_root, config=config, add_config=add_config,
                checkpoint=checkpoint)


def test_benchmark_detector_on_cpu(tiny):
    from fusion_mamba.ops import available_backends
    out_json = tiny['folder'] / 'bench.json'
    stdout = run_python('tools/analysis_tools/benchmark_detector.py', tiny['config'],
                        tiny['checkpoint'], '--num-iters', 2, '--warmup', 1, '--batch-size', 1,
                        '--device', 'cpu', '--out', out_json)
    backend = re.search(r'scan backend: (\w+) \(requested', stdout)
    assert backend and backend.group(1) in available_backends(), stdout
    assert 'inputs: real: 4 pairs of the test set DemoPairsDataset' in stdout
    rows = table_rows(stdout)
    parts = ['detector (predict, incl. preprocess + NMS)', 'backbone + fusion']
    assert [p for p in parts if p in rows] == parts, stdout
    for part in parts:
        batch, mean, p50, p90, throughput, memory = rows[part]
        assert batch == '1' and memory == 'n/a'
        assert 0 < float(p50) <= float(p90) and float(mean) > 0
        assert float(throughput) == pytest.approx(1000 / float(mean), rel=0.02)
    results = json.loads(out_json.read_text())
    assert results['device'] == 'cpu' and results['num_iters'] == 2
    assert set(results['results']) == set(parts)
    assert results['results']['backbone + fusion']['peak_memory_mib'] is None


def test_benchmark_detector_compile_on_cpu(tiny, capsys):
    """--compile runs the network through torch.compile (the eager backend here: the tracing
    and the plumbing, not inductor's code generation) and records it in the JSON; --parts
    times the detector alone; --cuda-graph and --compile exclude each other."""
    out_json = tiny['folder'] / 'bench_compile.json'
    stdout = run_python('tools/analysis_tools/benchmark_detector.py', tiny['config'],
                        tiny['checkpoint'], '--num-iters', 1, '--warmup', 1, '--device', 'cpu',
                        '--compile', '--compile-backend', 'eager', '--parts', 'detector',
                        '--out', out_json)
    assert 'torch.compile: yes (backend eager, mode default)' in stdout
    rows = table_rows(stdout)
    assert [r for r in rows if r != 'part'] == ['detector (predict, incl. preprocess + NMS)'], \
        stdout
    assert float(rows['detector (predict, incl. preprocess + NMS)'][1]) > 0
    results = json.loads(out_json.read_text())
    assert results['compile'] == dict(mode=None, backend='eager')
    assert list(results['results']) == ['detector (predict, incl. preprocess + NMS)']
    tool = load_module('tools/analysis_tools/benchmark_detector.py')
    with pytest.raises(SystemExit):
        tool.parse_args([str(tiny['config']), '--cuda-graph', '--compile', '--device', 'cuda'])
    assert 'exclude each other' in capsys.readouterr().err


def test_benchmark_detector_amp_profile_on_cpu(tiny):
    """--amp runs both parts under bf16 autocast; --profile prints where the time goes (the
    groups' shares add up to the whole) and writes the traces beside --out."""
    out_json = tiny['folder'] / 'bench_amp.json'
    stdout = run_python('tools/analysis_tools/benchmark_detector.py', tiny['config'],
                        tiny['checkpoint'], '--num-iters', 2, '--warmup', 1, '--device', 'cpu',
                        '--amp', '--profile', 1, '--out', out_json)
    assert 'precision: autocast bf16' in stdout
    profiles = re.findall(r'profile of (.+?): 1 iterations, ([\d.]+) ms of CPU operators',
                          stdout)
    assert [name for name, _ in profiles] == ['detector (predict, incl. preprocess + NMS)',
                                             'backbone + fusion'], stdout
    for block in stdout.split('profile of ')[1:]:
        shares = re.findall(r'^\| [^|]+ \| [\d.]+ \| ([\d.]+)% \| \d+ \|$',
                            block.split('| kernel |')[0], flags=re.M)
        assert sum(map(float, shares)) == pytest.approx(100, abs=0.5), block
        assert re.search(r'^\| selective scan \| [\d.]+ \|', block, flags=re.M), block
    results = json.loads(out_json.read_text())
    assert results['precision'] == 'bf16' and len(results['profiles']) == 2
    assert len(list(tiny['folder'].glob('bench_amp.*.trace.json'))) == 2


def test_benchmark_train_on_cpu(tiny):
    """Training steps on synthetic pairs: the table's pairs/s is the batch over the mean step
    time, the JSON has the same numbers and finite losses; the profile and the saved
    activations (the fusion blocks' scans among them) are printed."""
    out_json = tiny['folder'] / 'train_bench.json'
    launches = []  # --launch-config is read (it changes nothing on a CPU)
    if importlib.util.find_spec('triton'):
        launches = ['--launch-config', tiny['folder'] / 'launch.json']
        launches[1].write_text(json.dumps({'16': {'seq_fwd_programs': 1024}}))
    stdout = run_python('tools/analysis_tools/benchmark_train.py', tiny['config'],
                        '--batch-size', 2, '--num-iters', 2, '--warmup', 1, '--shape', 96, 128,
                        '--device', 'cpu', '--profile', 1, '--saved-memory', '--tensor-memory',
                        '--out', out_json, *launches)
    if launches:
        assert f"Triton launches from {launches[1]}: {{16: {{'seq_fwd_programs': 1024}}}}" \
            in stdout
    assert 'profile of training step: 1 iterations' in stdout
    assert re.search(r'\| SS2D \| \d+ \|', stdout), stdout
    assert 'data loading excluded' in stdout
    row = table_rows(stdout)['tiny_fmb.py']
    batch, precision, mean, p50, p90, pairs, memory = row
    assert (batch, precision, memory) == ('2', 'fp32', 'n/a')
    assert float(pairs) == pytest.approx(2 / float(mean), rel=0.02)
    result = json.loads(out_json.read_text())['result']
    assert result['step_mean_s'] == pytest.approx(float(mean), abs=1e-4)
    assert all(map(math.isfinite, (result['first_loss'], result['last_loss'])))
    # --tensor-memory: the kinds at the step's peak add up to its total, weights and
    # activations among them; the same numbers are printed
    peak = result['tensor_memory_mib']
    assert peak['Parameter'] > 0 and peak['Activation'] > 0
    assert sum(v for k, v in peak.items() if k != 'Total') == pytest.approx(peak['Total'])
    assert f"| Total | {peak['Total']:.1f} |" in stdout


def expected_scan_flops(num_dssf: int, size: int = 128) -> int:
    """The SS2D scan count of the tiny FMB model (get_flops' formula, written out here):
    per level, 2 VSS + 2 per DSSF SS2D modules of D = 2C channels over (size / stride)^2
    tokens, each D * L * (4 * (5N + 4) + 3)."""
    total = 0
    for channels, stride in LEVELS:
        d_inner, length = int(SSM_RATIO * channels), (size // stride)**2
        total += (2 + 2 * num_dssf) * d_inner * length * (4 * (5 * D_STATE + 4) + 3)
    return total


def test_get_flops_counts_the_selective_scans(tiny):
    counts = {}
    for name, config, options in (('fmb1', tiny['config'], []),
                                  ('fmb2', tiny['config'],
                                   ['--cfg-options', 'model.backbone.fusion.num_dssf=2']),
                                  ('add', tiny['add_config'], [])):
        out_json = tiny['folder'] / f'flops_{name}.json'
        stdout = run_python('tools/analysis_tools/get_flops.py', config, '--shape', 128, 128,
                            '--out', out_json, *options)
        rows = table_rows(stdout)
        assert rows['total'] and all(re.fullmatch(FLOAT, v) for v in rows['total']), stdout
        counts[name] = {r['label']: r for r in json.loads(out_json.read_text())['rows']}
    fmb1, fmb2, add = counts['fmb1'], counts['fmb2'], counts['add']
    assert 'fusion P3 (FusionMambaBlock)' in fmb1 and 'fusion P5 (AddFusion)' in add

    # the scans are counted, exactly as the documented formula says
    assert fmb1['fusion: all levels']['flops_scan'] == expected_scan_flops(1)
    assert fmb2['fusion: all levels']['flops_scan'] == expected_scan_flops(2)
    assert fmb1['total']['flops_scan'] == expected_scan_flops(1)
    # (2 VSS + 2 * num_dssf) scans per level: 6 / 4 from one DSSF to two
    assert fmb2['total']['flops_scan'] * 4 == fmb1['total']['flops_scan'] * 6
    assert fmb2['fusion: all levels']['flops_mmengine'] > fmb1['fusion: all levels'][
        'flops_mmengine'] > 0

    # FMB = AddFusion + at least the scans; streams, neck and head are the same in all three
    assert fmb1['total']['flops'] - add['total']['flops'] >= fmb1['total']['flops_scan']
    assert add['total']['flops_scan'] == 0 and add['fusion: all levels']['params'] == 0
    for part in ('backbone: visible stream', 'backbone: infrared stream', 'neck', 'bbox_head'):
        assert fmb1[part]['flops'] == fmb2[part]['flops'] == add[part]['flops'] > 0
        assert fmb1[part]['flops_scan'] == 0
    parts = [r for label, r in fmb1.items() if label not in ('total', 'fusion: all levels')]
    assert sum(r['flops'] for r in parts) == fmb1['total']['flops']
    assert sum(r['params'] for r in parts) == fmb1['total']['params']


def test_scan_and_attention_counts_of_other_fusion_layers():
    """get_flops' hooks on CMSA's CrossModalSS2D (2L interleaved tokens) and its handle for
    scaled_dot_product_attention (CFT), which mmengine alone does not count."""
    from mmengine.analysis import FlopAnalyzer

    from fusion_mamba.models.fusion.cmsa import CrossModalSS2D
    tool = load_module('tools/analysis_tools/get_flops.py')
    scan = CrossModalSS2D(d_inner=8, d_state=3, backend='torch')
    x = torch.rand(2, 8, 4, 5)
    with torch.no_grad(), tool.ScanFlopCounter(scan) as counter:
        scan(x, x)
    assert counter.counts == {'': 2 * 8 * 40 * (4 * (5 * 3 + 4) + 3)}

    class Attention(torch.nn.Module):

        def forward(self, q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    analyzer = FlopAnalyzer(Attention(), (torch.rand(2, 4, 10, 6), torch.rand(2, 4, 12, 6),
                                          torch.rand(2, 4, 12, 5)))
    analyzer.set_op_handle('aten::scaled_dot_product_attention', tool.sdpa_flop_jit)
    assert analyzer.total() == 2 * 4 * 10 * 12 * (6 + 5)


def test_image_demo_draws_both_modalities(tiny):
    visible = tiny['data_root'] / 'visible/val/000000.jpg'
    infrared = tiny['data_root'] / 'infrared/val/000000.jpg'
    out_file = tiny['folder'] / 'image_demo' / '000000_pair.jpg'
    drawn = {}
    for thr in (0.3, 1.0):  # random weights: some boxes above 0.3, none above 1
        stdout = run_python('demo/image_demo.py', visible, infrared, tiny['config'],
                            tiny['checkpoint'], '--out-dir', out_file.parent, '--score-thr',
                            thr, '--device', 'cpu')
        count = int(re.search(rf'(\d+) detections with score > {thr} drawn to (\S+)',
                              stdout).group(1))
        assert f'drawn to {out_file}' in stdout
        detections = [line for line in stdout.splitlines()
                      if line.split() and line.split()[0] in ('person', 'car', 'sign', 'animal')]
        assert len(detections) == count and (count > 0) == (thr < 1)
        drawn[thr] = cv2.imread(str(out_file)).astype(float)
        assert drawn[thr].shape == (128, 2 * 128, 3)  # visible | infrared
    # nothing drawn: the halves are the two images (up to JPEG); boxes change them
    for half, path in ((slice(0, 128), visible), (slice(128, 256), infrared)):
        image = cv2.imread(str(path)).astype(float)
        assert abs(drawn[1.0][:, half] - image).mean() < 4
        assert abs(drawn[0.3][:, half] - image).mean() > 4 * abs(drawn[1.0][:, half] - image).mean()


def test_image_demo_errors_name_the_files(tiny, tmp_path):
    tool = load_module('demo/image_demo.py')
    visible = str(tiny['data_root'] / 'visible/val/000000.jpg')
    model = [str(tiny['config']), str(tiny['checkpoint']), '--device', 'cpu', '--out-dir',
             str(tmp_path)]
    with pytest.raises(FileNotFoundError, match='image file not found: .*missing.jpg'):
        tool.main([visible, str(tmp_path / 'missing.jpg'), *model])
    small = tmp_path / 'small_ir.jpg'
    cv2.imwrite(str(small), cv2.imread(visible)[:64, :96])
    with pytest.raises(ValueError, match=r'size mismatch: .* is 128x128, .*small_ir.jpg is 96x64'):
        tool.main([visible, str(small), *model])
    with pytest.raises(ValueError, match='--amp-dtype needs --amp'):
        tool.main([visible, visible, *model, '--amp-dtype', 'bf16'])
    with pytest.raises(ValueError, match='cuda_graph=True needs a CUDA device, got cpu'):
        tool.main([visible, visible, *model, '--cuda-graph'])


def test_image_demo_amp_and_validation_thresholds(tiny, tmp_path, capsys):
    """--amp runs under bf16 autocast; without --score-thr the checkpoint's per-class
    thresholds choose the detections (here: only cars, the other classes at 1.0)."""
    tool = load_module('demo/image_demo.py')
    checkpoint = mmengine.runner.CheckpointLoader.load_checkpoint(str(tiny['checkpoint']))
    checkpoint['meta']['score_thresholds'] = dict(person=1.0, car=0.3, sign=1.0, animal=1.0)
    with_thresholds = tmp_path / 'thr.pth'
    mmengine.runner.save_checkpoint(checkpoint, str(with_thresholds))
    pair = [str(tiny['data_root'] / f'{m}/val/000000.jpg') for m in ('visible', 'infrared')]
    for extra in ((), ('--amp', '--amp-dtype', 'bf16')):
        tool.main([*pair, str(tiny['config']), str(with_thresholds), '--device', 'cpu',
                   '--out-dir', str(tmp_path), *extra])
        stdout = capsys.readouterr().out
        drawn = [line.split()[0] for line in stdout.splitlines()
                 if line.split() and line.split()[0] in ('person', 'car', 'sign', 'animal')]
        assert drawn and set(drawn) == {'car'}, stdout
        assert (f'{len(drawn)} detections above the per-class validation thresholds (person '
                '1.000, car 0.300, sign 1.000, animal 1.000; 0.3 for other classes) drawn to '
                f'{tmp_path / "000000_pair.jpg"}') in stdout


def test_robustness_eval_blanks_each_modality(tiny):
    work_dir = tiny['folder'] / 'robustness'
    stdout = run_python('tools/analysis_tools/robustness_eval.py', tiny['config'],
                        tiny['checkpoint'], '--mode', 'mean', '--work-dir', work_dir)
    rows = table_rows(stdout)
    conditions = ['both', 'visible blanked', 'infrared blanked']
    assert [c for c in rows if c in conditions] == conditions, stdout
    for name in conditions:
        assert all(re.fullmatch(FLOAT, v) for v in rows[name]), rows[name]
    assert rows['both'][1] == rows['both'][3] == '+0.000'
    results = json.loads((work_dir / 'robustness_mean.json').read_text())['conditions']
    for name in conditions:
        r = results[name]
        assert 0 <= r['bbox_mAP'] <= 1 and 0 <= r['bbox_mAP_50'] <= 1
        assert r['delta_mAP'] == pytest.approx(r['bbox_mAP'] - results['both']['bbox_mAP'])
        assert (work_dir / name.replace(' ', '_')).is_dir()


def test_robustness_eval_inserts_dropout_before_packing(tiny):
    tool = load_module('tools/analysis_tools/robustness_eval.py')
    base = mmengine.Config.fromfile(tiny['config'])
    cfg = tool.with_dropout(base, 'infrared', 'noise')
    types = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    assert types[-2:] == ['RandomModalityDropout', 'PackMultiModalDetInputs']
    assert cfg.test_dataloader.dataset.pipeline[-2] == dict(
        type='RandomModalityDropout', prob=1.0, modalities=('infrared', ), mode='noise')
    assert 'RandomModalityDropout' not in [t['type'] for t in base.test_dataloader.dataset.pipeline]


def test_test_sh_evaluates(tiny):
    preds = tiny['folder'] / 'preds.pkl'
    stdout = run(['bash', REPO / 'tools/test.sh', tiny['config'], tiny['checkpoint'],
                  '--work-dir', tiny['folder'] / 'test_sh', '--out', preds],
                 PYTHON=sys.executable)
    assert re.search(rf'coco/bbox_mAP: {FLOAT}', stdout), stdout[-2000:]
    assert len(mmengine.load(str(preds))) == 4  # one result per val pair


@pytest.mark.slow
def test_test_sh_benchmarks_synthetic_inputs(tiny):
    stdout = run(['bash', REPO / 'tools/test.sh', tiny['config'], tiny['checkpoint'],
                  '--benchmark', '--synthetic', '--shape', 96, 128, '--num-iters', 2,
                  '--warmup', 0, '--device', 'cpu'], PYTHON=sys.executable)
    assert 'inputs: synthetic: random uint8 pairs of 96x128' in stdout
    assert set(table_rows(stdout)) >= {'detector (predict, incl. preprocess + NMS)',
                                       'backbone + fusion'}


def test_test_sh_usage():
    proc = subprocess.run(['bash', REPO / 'tools/test.sh', 'only_a_config.py'],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and 'usage:' in proc.stderr


def test_benchmark_scan_reads_tuned_launches(tmp_path, monkeypatch):
    """``benchmark_scan.py --launch-config`` (tune_scan.py's JSON) replaces the default launch
    of the d_states it lists and only those."""
    kernels = pytest.importorskip('fusion_mamba.ops.selective_scan.triton_kernels')
    monkeypatch.setattr(kernels, 'launch_config', kernels.default_config)
    table = tmp_path / 'best.json'
    table.write_text(json.dumps({'16': [16, 8, 2, 1, 8, 4]}))
    from fusion_mamba.ops.selective_scan import use_launch_config
    use_launch_config(table)
    assert kernels.launch_config(16, 512, 6400) == kernels.LaunchConfig(16, 8, 2, 1, 8, 4)
    assert kernels.launch_config(1, 512, 6400) == kernels.default_config(1, 512, 6400)
    assert kernels.default_config(16, 512, 6400) != kernels.LaunchConfig(16, 8, 2, 1, 8, 4)
    # a dict changes only the fields it names, at every size; unknown fields are refused
    table.write_text(json.dumps({'16': {'seq_fwd_programs': 2048, 'seq_bwd_block': 8}}))
    kernels.use_launch_table(table)
    for dim, length in ((512, 6400), (64, 7)):
        default = kernels.default_config(16, dim, length)
        assert kernels.launch_config(16, dim, length) == default._replace(
            seq_fwd_programs=2048, seq_bwd_block=8)
    table.write_text(json.dumps({'16': {'seq_warps': 2}}))
    with pytest.raises(ValueError, match=r"best.json: unknown launch fields \['seq_warps'\]"):
        kernels.use_launch_table(table)
    # a whole launch written before seq_warps became seq_fwd_block (11 fields, seq_warps 1)
    old = list(kernels.default_config(16, 512, 6400))[:8] + [1, 32, 16]
    table.write_text(json.dumps({'16': old}))
    with pytest.raises(ValueError, match='best.json: seq_fwd_block must be one of'):
        kernels.use_launch_table(table)
    table.write_text(json.dumps({'16': {'seq_chunk': 15}}))
    with pytest.raises(ValueError, match='best.json: seq_chunk must be even'):
        kernels.use_launch_table(table)


def test_tune_scan_sequential_candidates():
    """``tune_scan.py --sequential`` times every listed value of each sequential-kernel field
    (forward: channel block and segmenting grid; backward: saved-state interval, channel
    block and segmenting grid) with the rest at the defaults; where a backward over whole
    sequences would run the chunked kernels it is timed once; d_state 1, which the
    sequential kernels do not serve, is refused."""
    pytest.importorskip('triton')
    tune_scan = load_module('tools/analysis_tools/tune_scan.py')
    from fusion_mamba.ops.selective_scan import triton_kernels as kernels
    default = kernels.default_config(16, 512, 6400)._replace(seq_bwd_wide_block=0)
    pairs = list(tune_scan.sequential_candidates(16))
    fields = tune_scan.SEQUENTIAL_CANDIDATES
    forwards = [config for backward, config in pairs if not backward]
    backwards = [config for backward, config in pairs if backward]
    assert {(c.seq_fwd_block, c.seq_fwd_programs) for c in forwards} == {
        (block, programs) for block in fields['seq_fwd_block']
        for programs in fields['seq_fwd_programs']}
    backward_fields = tune_scan.BACKWARD_FIELDS
    assert {tuple(getattr(c, f) for f in backward_fields) for c in backwards} == set(
        itertools.product(*(fields[f] for f in backward_fields)))
    assert len(pairs) == len(set(pairs))
    tuned = ('seq_fwd_block', 'seq_fwd_programs') + backward_fields
    assert all(c._replace(**{f: getattr(default, f) for f in tuned}) == default
               for _, c in pairs)
    small = [c for backward, c in tune_scan.sequential_candidates(16, False) if backward]
    whole = default._replace(seq_bwd_programs=0)
    assert [c for c in small if not c.seq_bwd_programs] == [whole]
    assert len(small) == 1 + sum(1 for c in backwards if c.seq_bwd_programs)
    # batch 1 is too small for a whole-sequence backward at every level, batch 4 is not
    assert not tune_scan.sequential_backward(1, 16) and tune_scan.sequential_backward(4, 16)
    with pytest.raises(SystemExit, match='d_state 1'):
        list(tune_scan.sequential_candidates(1))


def test_tune_scan_times_the_layout_the_module_would_use():
    """``tune_scan.py --sequential`` times each candidate on the layout SS2D would hand the
    scan under it: channels-last where the sequential kernels run, else channel-major (at
    batch 1 only a segmented forward runs them; the backward needs batch >= 4 at P3)."""
    pytest.importorskip('triton')
    tune_scan = load_module('tools/analysis_tools/tune_scan.py')
    from fusion_mamba.ops.selective_scan import triton_kernels as kernels
    by_layout = {True: ['P3 last', 'P4 last', 'P5 last'],
                 False: ['P3 major', 'P4 major', 'P5 major']}
    both = kernels.default_config(16, 512, 6400)  # both passes cut small grids' sequences
    assert (both.seq_fwd_programs, both.seq_bwd_programs) == (2048, 1024)
    segmented = both._replace(seq_bwd_programs=0)  # the forward's only
    whole = segmented._replace(seq_fwd_programs=0)  # unsegmented sequences

    def layouts(config, batch, backward):
        levels = tune_scan.module_layouts(config, by_layout, 16, batch, backward)
        return [level.split()[1] for level in levels]

    assert layouts(whole, 1, False) == ['major'] * 3
    assert layouts(segmented, 1, False) == ['last'] * 3
    assert layouts(segmented, 1, True) == ['major'] * 3
    assert layouts(both, 1, True) == ['last'] * 3
    assert layouts(whole, 2, True) == ['major', 'last', 'last']  # P4 / P5: 1024 channels
    assert layouts(whole, 16, True) == layouts(whole, 16, False) == ['last'] * 3


def test_compare_detectors_on_cpu(tiny):
    """compare_detectors.py runs each row for both configs in their own processes and puts
    every figure beside the baseline's with their ratio, as the runs' own JSON give them; a
    run that fails (CUDA graphs on a CPU) is reported in its row and the others still run;
    a run out of time is reported as such."""
    out_json = tiny['folder'] / 'compare.json'
    stdout = run_python('tools/analysis_tools/compare_detectors.py', tiny['config'],
                        tiny['add_config'], '--rows', 'infer:2', 'infer:1:cuda-graph', 'train:1',
                        '--device', 'cpu', '--num-iters', 1, '--warmup', 1, '--shape', 96, 128,
                        '--out', out_json)
    report = json.loads(out_json.read_text())
    runs = report['runs']
    detector = load_module('tools/analysis_tools/benchmark_detector.py').PARTS['detector']
    assert report['rows'] == ['infer:2', 'infer:1:cuda-graph', 'train:1']
    rows = table_rows(stdout)
    assert rows['measurement'] == ['tiny_fmb', 'tiny_add', 'ratio']
    for name, key, label in (('infer:2', 'throughput_pairs_per_s', 'pairs/s'),
                             ('infer:2', 'latency_mean_ms', 'ms per pair'),
                             ('train:1', 'step_mean_s', 'step s')):
        got = [(run['result'] if name.startswith('train') else run['results'][detector])[key]
               for run in (runs[name]['config'], runs[name]['baseline'])]
        fm, add, ratio = rows[f'{name}: {label}']
        assert float(fm) == pytest.approx(got[0], rel=1e-3, abs=1e-4)
        assert float(add) == pytest.approx(got[1], rel=1e-3, abs=1e-4)
        assert float(ratio.rstrip('x')) == pytest.approx(got[0] / got[1], rel=0.02)
    for run in (*runs['infer:2'].values(), *runs['train:1'].values()):
        assert (run['num_iters'], run['warmup'], run['device']) == (1, 1, 'cpu')
    assert [run['batch_size'] for run in runs['infer:2'].values()] == [2, 2]
    assert runs['train:1']['baseline']['shape'] == [96, 128]
    assert '--cuda-graph needs --device cuda' in runs['infer:1:cuda-graph']['config']['output']
    assert rows['infer:1:cuda-graph'][:2] == ['exited with status 2'] * 2
    assert 'device: CPU' in stdout and 'precision fp32; inputs: real: 4 pairs' in stdout
    assert 'training: synthetic 96x128' in stdout

    stdout = run_python('tools/analysis_tools/compare_detectors.py', tiny['config'],
                        tiny['add_config'], '--rows', 'infer:1', '--device', 'cpu',
                        '--timeout', 0.5)
    assert table_rows(stdout)['infer:1'][:2] == ['timed out after 0.5 s'] * 2
    tool = load_module('tools/analysis_tools/compare_detectors.py')
    for spec in ('train:8:compile', 'infer:0', 'infer', 'detect:1'):
        with pytest.raises(ValueError, match=f'--rows {spec!r}: rows are KIND:BATCH'):
            tool.parse_row(spec)
