"""Convert FLIR-Aligned (the aligned FLIR ADAS v1 release) to paired COCO json.

    python tools/dataset_converters/flir_aligned.py data/FLIR_aligned/align [--out-dir DIR]

Reads align_train.txt / align_validation.txt (in the folder or its ImageSets/Main/) and
writes ``flir_aligned_train.json`` / ``flir_aligned_val.json`` (paths relative to the folder)
with a ``*_report.json`` each. Exits with status 1, naming the paths it expected, when a
split has no usable pair or a list is missing. See docs/datasets.md.
"""
import argparse
import os.path as osp
import sys

from fusion_mamba.datasets.converters import convert_flir_aligned, fail, finish


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='the release folder (holds JPEGImages/, Annotations/)')
    parser.add_argument('--out-dir', help='output folder (default: <root>/annotations)')
    parser.add_argument('--skip-empty', action='store_true',
                        help='skip pairs whose annotation has no object (default: keep them)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        results = convert_flir_aligned(args.root, skip_empty=args.skip_empty)
    except FileNotFoundError as err:
        return fail(err)
    return finish(results, args.out_dir or osp.join(args.root, 'annotations'))


if __name__ == '__main__':
    sys.exit(main())
