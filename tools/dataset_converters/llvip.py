"""Convert LLVIP (official layout) to paired COCO json, one file per split.

    python tools/dataset_converters/llvip.py data/LLVIP [--out-dir data/LLVIP/annotations]

Writes ``llvip_train.json`` / ``llvip_test.json`` (paths relative to the LLVIP folder) and a
``*_report.json`` per split listing what was skipped and why. Exits with status 1, naming
the paths it expected, when a split has no usable pair. See docs/datasets.md.
"""
import argparse
import os.path as osp
import sys

from fusion_mamba.datasets.converters import convert_llvip, finish


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='LLVIP folder (holds visible/, infrared/, Annotations/)')
    parser.add_argument('--out-dir', help='output folder (default: <root>/annotations)')
    parser.add_argument('--skip-empty', action='store_true',
                        help='skip pairs whose annotation has no object (default: keep them)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    results = convert_llvip(args.root, skip_empty=args.skip_empty)
    return finish(results, args.out_dir or osp.join(args.root, 'annotations'))


if __name__ == '__main__':
    sys.exit(main())
