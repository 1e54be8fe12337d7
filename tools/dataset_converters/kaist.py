"""Convert KAIST multispectral pedestrians to paired COCO json.

    python tools/dataset_converters/kaist.py data/kaist \
        --train-list data/kaist/imageSets/train-all-02.txt [--train-ann-dir DIR] \
        --test-json data/kaist/kaist_annotations_test20.json

Writes ``kaist_train.json`` (bbGt text annotations of the listed frames; --train-ann-dir
selects e.g. the sanitized ones) and ``kaist_test.json`` (the improved test annotations, or
--test-list with the text annotations), with a ``*_report.json`` each. Images and boxes carry
the fields of the MR^-2 protocol (condition, height, occlusion, ignore); image ids are
KAIST's (the improved annotations' ids, or the 0-based position in a frame list), so results
line up with published ones. Exits with status 1, naming the paths it expected, when a split
has no usable pair. See docs/datasets.md.
"""
import argparse
import os.path as osp
import sys

from fusion_mamba.datasets.converters import (ConversionError, convert_kaist_json,
                                              convert_kaist_txt, fail, finish)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='KAIST folder (holds images/ and annotations/)')
    parser.add_argument('--out-dir', help='output folder (default: <root>/annotations-coco)')
    parser.add_argument('--train-list', help='frame list of the training split')
    parser.add_argument('--train-ann-dir', help='bbGt folder (default: <root>/annotations)')
    parser.add_argument('--test-json', help='improved test annotations (json)')
    parser.add_argument('--test-list', help='frame list of the test split (bbGt annotations)')
    parser.add_argument('--test-ann-dir', help='bbGt folder for --test-list')
    args = parser.parse_args(argv)
    if args.test_json and args.test_list:
        parser.error('give --test-json or --test-list, not both')
    if not (args.train_list or args.test_json or args.test_list):
        parser.error('nothing to convert: give --train-list and / or --test-json / --test-list')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    results = {}
    try:
        if args.train_list:
            results['train'] = convert_kaist_txt(args.root, args.train_list,
                                                 args.train_ann_dir, name='kaist_train')
        if args.test_json:
            results['test'] = convert_kaist_json(args.root, args.test_json, name='kaist_test')
        elif args.test_list:
            results['test'] = convert_kaist_txt(args.root, args.test_list, args.test_ann_dir,
                                                name='kaist_test')
    except (FileNotFoundError, ConversionError) as err:
        return fail(err)
    return finish(results, args.out_dir or osp.join(args.root, 'annotations-coco'))


if __name__ == '__main__':
    sys.exit(main())
