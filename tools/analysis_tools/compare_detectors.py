"""Two paired detectors measured side by side, row by row, in one run on one device.

    python tools/analysis_tools/compare_detectors.py CONFIG BASELINE_CONFIG \
        [--rows infer:16 infer:16:compile backbone:16:compile infer:1:cuda-graph \
                infer:1:compile-ro train:8] [--device cuda|cpu] [--amp [--amp-dtype bf16|fp16]] \
        [--shape H W] [--synthetic] [--num-iters N] [--warmup N] [--timeout S] \
        [--out results.json] [--cfg-options key=value ...]

A row is ``KIND:BATCH[:MODE]``:

- ``infer``: the whole detector (preprocessing, both streams, fusion, neck, head, NMS;
  ``benchmark_detector.py --parts detector``): ms per pair, pairs/s, peak GPU memory;
- ``backbone``: both streams and the fusion (``--parts backbone``): the same figures;
- ``train``: ``model.train_step`` on synthetic pairs (``benchmark_train.py``): step time,
  pairs/s, peak GPU memory, and the steps an fp16 loss scaler skipped;
- MODE, for ``infer`` / ``backbone``: ``eager`` (default), ``cuda-graph``, ``compile``
  (torch.compile, default mode) or ``compile-ro`` (mode ``reduce-overhead``).

The default rows are the README's GPU table. For every row the two configs run one after the
other, each in its own process (so neither inherits the other's compiled code, allocator
state or peak-memory statistics) under ``--timeout``; a run that fails or runs out of time
is reported with the end of its output, and the comparison goes on. Each row's figures are
printed beside the baseline's with their ratio (CONFIG / BASELINE), under a header naming
the device, torch and the commit; every run's full JSON is written to ``--out`` after each
run, so an interrupted comparison keeps what it measured.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, NamedTuple, Optional

TOOLS = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(TOOLS))
DEFAULT_ROWS = ('infer:16', 'infer:16:compile', 'backbone:16:compile', 'infer:1:cuda-graph',
                'infer:1:compile-ro', 'train:8')
KINDS = ('infer', 'backbone', 'train')
MODE_ARGS = {'eager': [], 'cuda-graph': ['--cuda-graph'], 'compile': ['--compile'],
             'compile-ro': ['--compile', '--compile-mode', 'reduce-overhead']}
OUTPUT_TAIL = 2000  # characters of a failed run's output kept in the report
ROLES = ('config', 'baseline')  # the two runs of a row, in the table's column order


class Row(NamedTuple):
    """One measurement of both detectors."""
    kind: str
    batch: int
    mode: str

    @property
    def name(self) -> str:
        return f'{self.kind}:{self.batch}' + ('' if self.mode == 'eager' else f':{self.mode}')


class Metric(NamedTuple):
    """A figure of a run's JSON: ``key`` in its result dict, shown as ``label``."""
    key: str
    label: str
    fmt: str


INFERENCE_METRICS = (Metric('latency_mean_ms', 'ms per pair', '.2f'),
                     Metric('throughput_pairs_per_s', 'pairs/s', '.2f'),
                     Metric('peak_memory_mib', 'peak MiB', '.0f'))
TRAIN_METRICS = (Metric('step_mean_s', 'step s', '.4f'), Metric('pairs_per_s', 'pairs/s', '.2f'),
                 Metric('peak_memory_mib', 'peak MiB', '.0f'),
                 Metric('skipped_timed_steps', 'skipped steps (fp16 scaler)', 'd'))


def parse_row(spec: str) -> Row:
    """``'KIND:BATCH[:MODE]'`` -> Row; a ValueError that names the spec and what it allows."""
    parts = spec.split(':')
    allowed = (f'rows are KIND:BATCH[:MODE] with KIND in {", ".join(KINDS)} and MODE in '
               f'{", ".join(MODE_ARGS)} (infer / backbone only)')
    if len(parts) not in (2, 3) or parts[0] not in KINDS or not parts[1].isdigit() \
            or int(parts[1]) < 1:
        raise ValueError(f'--rows {spec!r}: {allowed}')
    mode = parts[2] if len(parts) == 3 else 'eager'
    if mode not in MODE_ARGS or (parts[0] == 'train' and mode != 'eager'):
        raise ValueError(f'--rows {spec!r}: {allowed}')
    return Row(parts[0], int(parts[1]), mode)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Two paired detectors measured side by side, with ratios.')
    parser.add_argument('config', help='config of the detector to compare')
    parser.add_argument('baseline', help='config of the baseline detector')
    parser.add_argument('--rows', nargs='+', default=list(DEFAULT_ROWS), metavar='ROW',
                        help='KIND:BATCH[:MODE] (default: the README table: '
                        f'{" ".join(DEFAULT_ROWS)})')
    parser.add_argument('--device', default=None,
                        help='cuda, cuda:N or cpu (default cuda when available)')
    parser.add_argument('--amp', action='store_true', help='mixed precision in every row')
    parser.add_argument('--amp-dtype', choices=('bf16', 'fp16'),
                        help='autocast dtype of --amp (default: bf16 where supported)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=(640, 640),
                        help='image size of the synthetic pairs (default 640 640)')
    parser.add_argument('--synthetic', action='store_true',
                        help='inference on synthetic pairs even when the test data exists '
                        '(training always uses synthetic pairs)')
    parser.add_argument('--num-iters', type=int,
                        help="timed iterations per run (default: each tool's own)")
    parser.add_argument('--warmup', type=int,
                        help="untimed iterations per run (default: each tool's own)")
    parser.add_argument('--timeout', type=float, default=900,
                        help='seconds each run may take, start-up included (default 900)')
    parser.add_argument('--out', help='write every run (and the table) to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', metavar='KEY=VALUE',
                        help='override settings of both configs (passed on to each run)')
    args = parser.parse_args(argv)
    if args.amp_dtype and not args.amp:
        parser.error('--amp-dtype needs --amp')
    try:
        args.rows = [parse_row(spec) for spec in args.rows]
    except ValueError as err:
        parser.error(str(err))
    return args


def run_command(row: Row, config: str, out_json: str, args) -> List[str]:
    """The benchmark command of one row for one config."""
    script = 'benchmark_train.py' if row.kind == 'train' else 'benchmark_detector.py'
    cmd = [sys.executable, osp.join(TOOLS, script), osp.abspath(config), '--batch-size',
           str(row.batch),
           '--shape', *map(str, args.shape), '--out', out_json]
    if row.kind != 'train':
        cmd += ['--parts', 'detector' if row.kind == 'infer' else 'backbone', *MODE_ARGS[row.mode]]
        if args.synthetic:
            cmd.append('--synthetic')
    if args.device:
        cmd += ['--device', args.device]
    if args.amp:
        cmd.append('--amp')
        if args.amp_dtype:
            cmd += ['--amp-dtype', args.amp_dtype]
    for flag, value in (('--num-iters', args.num_iters), ('--warmup', args.warmup)):
        if value is not None:
            cmd += [flag, str(value)]
    if args.cfg_options:
        cmd += ['--cfg-options', *args.cfg_options]
    return cmd


def run_one(cmd: List[str], out_json: str, timeout: float) -> dict:
    """Run one benchmark; its JSON with ``seconds`` added, or ``{'error': ...}`` with the end
    of its output when it failed or ran out of time."""
    start = time.perf_counter()
    # a session of its own, so that a run out of time is stopped with the processes it
    # started (torch.compile's workers)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED='1'),
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return dict(error=f'timed out after {timeout:g} s', output=output[-OUTPUT_TAIL:],
                    seconds=time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not osp.exists(out_json):
        error = (f'exited with status {proc.returncode}' if proc.returncode
                 else 'exited without writing its JSON')
        return dict(error=error, output=output[-OUTPUT_TAIL:], seconds=seconds)
    with open(out_json) as f:
        return dict(json.load(f), seconds=seconds)


def figures(row: Row, run: dict) -> Dict[str, Optional[float]]:
    """The row's metrics of one run (None where the run failed or has no such figure)."""
    if 'error' in run:
        return {}
    result = run['result'] if row.kind == 'train' else next(iter(run['results'].values()))
    return {m.key: result.get(m.key) for m in metrics_of(row)}


def metrics_of(row: Row):
    return TRAIN_METRICS if row.kind == 'train' else INFERENCE_METRICS


def _cell(value, fmt: str) -> str:
    return 'n/a' if value is None else format(value, fmt)


def markdown_table(rows: List[Row], runs: Dict[str, Dict[str, dict]], names) -> str:
    """One line per row and metric: the two figures and their ratio; a failed run gives its
    error in place of its figures."""
    lines = [f'| measurement | {names[0]} | {names[1]} | ratio |', '|---|---:|---:|---:|']
    for row in rows:
        pair = runs.get(row.name, {})
        if len(pair) < 2:
            continue
        a, b = (figures(row, pair[role]) for role in ROLES)
        errors = [pair[role].get('error') for role in ROLES]
        if any(errors):
            cells = [e or 'ok' for e in errors]
            lines.append(f'| {row.name} | {cells[0]} | {cells[1]} | |')
            continue
        for metric in metrics_of(row):
            x, y = a.get(metric.key), b.get(metric.key)
            if x is None and y is None:
                continue
            ratio = f'{x / y:.2f}x' if x is not None and y else ''
            lines.append(f'| {row.name}: {metric.label} | {_cell(x, metric.fmt)} | '
                         f'{_cell(y, metric.fmt)} | {ratio} |')
    return '\n'.join(lines)


def git_commit() -> Optional[str]:
    """The checkout's commit, ``+dirty`` when tracked files differ from it; None outside git."""
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ('+dirty' if dirty else '')


def header(runs: Dict[str, Dict[str, dict]], rows: List[Row], commit: Optional[str],
           args) -> str:
    """Device, torch, precision, the inputs the runs used, commit and date."""
    kinds = {row.name: row.kind for row in rows}
    finished = [(kinds[name], run) for name, pair in runs.items() for run in pair.values()
                if 'error' not in run]
    commit = commit or 'unknown'
    if not finished:
        return f'no run finished; commit {commit}'
    first = finished[0][1]
    inputs = sorted({run['inputs'] for kind, run in finished if kind != 'train'})
    if any(kind == 'train' for kind, _ in finished):
        inputs.append('training: synthetic {}x{}'.format(*args.shape))
    return (f'device: {first["device_name"]}; torch {first["torch"]}; precision '
            f'{first["precision"]}; inputs: {"; ".join(inputs)}; commit {commit}; '
            f'{datetime.date.today().isoformat()}')


def write_json(path: str, runs, header_line: str, table: str, args) -> None:
    """All runs so far, atomically (a reader never sees half a file)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump(dict(config=args.config, baseline=args.baseline, header=header_line,
                       rows=[row.name for row in args.rows], runs=runs, table=table), f,
                  indent=2)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    names = [osp.splitext(osp.basename(c))[0] for c in (args.config, args.baseline)]
    commit = git_commit()
    runs: Dict[str, Dict[str, dict]] = {}
    total = len(args.rows) * len(ROLES)
    with tempfile.TemporaryDirectory() as tmp:
        for i, row in enumerate(args.rows):
            for j, (role, config) in enumerate(zip(ROLES, (args.config, args.baseline))):
                out_json = osp.join(tmp, f'{i}_{role}.json')
                cmd = run_command(row, config, out_json, args)
                print(f'[{len(ROLES) * i + j + 1}/{total}] {row.name} {names[j]} ...',
                      flush=True)
                run = run_one(cmd, out_json, args.timeout)
                run['command'] = shlex.join(cmd[1:])
                runs.setdefault(row.name, {})[role] = run
                print(f'  {run.get("error", "done")} in {run["seconds"]:.0f} s', flush=True)
                if 'error' in run:
                    print('  ' + run['output'][-600:].replace('\n', '\n  '), flush=True)
                if args.out:  # after every run: an interrupted comparison keeps it
                    write_json(args.out, runs, header(runs, args.rows, commit, args),
                               markdown_table(args.rows, runs, names), args)
    print(f'\n{header(runs, args.rows, commit, args)}\n'
          f'{markdown_table(args.rows, runs, names)}')
    if args.out:
        print(f'results written to {args.out}')


if __name__ == '__main__':
    main()
