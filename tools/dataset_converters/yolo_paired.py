"""Convert paired visible / infrared images with YOLO txt labels to paired COCO json.

    python tools/dataset_converters/yolo_paired.py ROOT --visible DIR --infrared DIR \
        --labels DIR --classes NAMES|FILE --out FILE.json [--infrared-labels DIR]
        [--split-file LIST] [--skip-invalid]

Folders are relative to ROOT, and so are the image paths written (use ROOT as the config's
``data_root``). Images are paired by file stem; labels are ``class cx cy w h`` per line,
normalised, matched by stem (``--labels`` is the ground truth of both images; an optional
``--infrared-labels`` copy is checked against it). Images without a label file are negatives.
``--classes`` is ``person,car`` or a file with one name per line (optionally ``0 person``).
Writes FILE.json and FILE_report.json. Exits with status 1 on invalid label lines (each named
with file and line) or when no usable pair was found. See docs/datasets.md.
"""
import argparse
import os.path as osp
import sys

from fusion_mamba.datasets.converters import (ConversionError, convert_yolo_paired, fail,
                                              finish, read_classes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='dataset folder; the other folders are relative to it')
    parser.add_argument('--visible', required=True, help='folder of the visible images')
    parser.add_argument('--infrared', required=True, help='folder of the infrared images')
    parser.add_argument('--labels', required=True,
                        help='folder of the YOLO label files (ground truth of both images)')
    parser.add_argument('--infrared-labels',
                        help='folder of the infrared images\' own labels, checked against '
                        '--labels (differences reported, --labels written)')
    parser.add_argument('--classes', required=True,
                        help='class names "person,car", or a file with one per line '
                        '(optionally "0 person")')
    parser.add_argument('--out', required=True, help='output json (FILE.json)')
    parser.add_argument('--split-file',
                        help='pairs to convert, one stem or image path per line (default: '
                        'every stem of the image folders)')
    parser.add_argument('--skip-invalid', action='store_true',
                        help='skip pairs with invalid label lines instead of failing')
    args = parser.parse_args(argv)
    if not args.out.endswith('.json'):
        parser.error(f'--out must be a .json file, got {args.out}')
    if not osp.isdir(args.root):
        parser.error(f'ROOT {args.root} is not a folder')
    for option in ('visible', 'infrared', 'labels', 'infrared_labels'):
        folder = getattr(args, option)
        if folder is not None and osp.isabs(folder):
            parser.error(f'--{option.replace("_", "-")} must be relative to ROOT, got {folder}')
    if args.split_file and not osp.isfile(args.split_file):
        parser.error(f'--split-file {args.split_file} does not exist')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    name = osp.splitext(osp.basename(args.out))[0]
    try:
        classes = read_classes(args.classes)
        coco, report = convert_yolo_paired(
            args.root, args.visible, args.infrared, args.labels, classes,
            infrared_labels=args.infrared_labels, split_file=args.split_file,
            skip_invalid=args.skip_invalid, name=name, progress=True)
    except ConversionError as err:
        return fail(err)
    print(f'classes (category id = index + 1): {", ".join(classes)}')
    return finish({name: (coco, report)}, osp.dirname(args.out) or '.')


if __name__ == '__main__':
    sys.exit(main())
