"""Convert M3FD (detection release) to paired COCO json with a reproducible split.

    python tools/dataset_converters/m3fd.py data/M3FD_Detection [--seed 0]
        [--train-size 3368 --val-size 831 | --train-list T.txt --val-list V.txt]

Writes ``m3fd_train.json`` / ``m3fd_val.json`` (paths relative to the folder), their
``*_report.json`` and the stems of each split in ``m3fd_{train,val}.txt`` (pass them back
with --train-list / --val-list to reproduce a split exactly). Exits with status 1, naming
the paths it expected, when a split has no usable pair. See docs/datasets.md.
"""
import argparse
import os.path as osp
import sys

from fusion_mamba.datasets.converters import convert_m3fd, fail, finish
from fusion_mamba.datasets.converters.m3fd import M3FD_TRAIN_SIZE, M3FD_VAL_SIZE


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='M3FD folder (holds Vis/, Ir/, Annotation/)')
    parser.add_argument('--out-dir', help='output folder (default: <root>/annotations)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the split (default 0)')
    parser.add_argument('--train-size', type=int, default=M3FD_TRAIN_SIZE)
    parser.add_argument('--val-size', type=int, default=M3FD_VAL_SIZE)
    parser.add_argument('--train-list', help='file of train stems (use with --val-list)')
    parser.add_argument('--val-list', help='file of val stems (use with --train-list)')
    parser.add_argument('--skip-empty', action='store_true',
                        help='skip pairs whose annotation has no object (default: keep them)')
    args = parser.parse_args(argv)
    if bool(args.train_list) != bool(args.val_list):
        parser.error('--train-list and --val-list go together')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out_dir = args.out_dir or osp.join(args.root, 'annotations')
    lists = dict(train=args.train_list, val=args.val_list) if args.train_list else None
    try:
        results, splits = convert_m3fd(args.root, seed=args.seed, train_size=args.train_size,
                                       val_size=args.val_size, split_lists=lists,
                                       skip_empty=args.skip_empty)
    except FileNotFoundError as err:
        return fail(err)
    status = finish(results, out_dir)
    for split, stems in splits.items():
        with open(osp.join(out_dir, f'm3fd_{split}.txt'), 'w') as f:
            f.writelines(f'{stem}\n' for stem in stems)
    print(f'split lists: {", ".join(f"{k} {len(v)}" for k, v in splits.items())} -> {out_dir}')
    return status


if __name__ == '__main__':
    sys.exit(main())
