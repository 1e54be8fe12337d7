"""Generate the built-in demo dataset (procedural RGB / thermal pairs, paired COCO).

    python tools/dataset_converters/make_demo_data.py [--out-dir data/demo_pairs] [--seed 0]

Deterministic for a seed; about 5 s for the default 400 + 100 pairs. Training configs that
use ``DemoPairsDataset`` generate it themselves on first use. See docs/datasets.md.
"""
import argparse

from fusion_mamba.datasets.demo import DEFAULT_DEMO_ROOT, generate_demo_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out-dir', default=DEFAULT_DEMO_ROOT)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--img-size', type=int, nargs=2, default=(320, 256),
                        metavar=('W', 'H'))
    parser.add_argument('--night-ratio', type=float, default=0.5)
    parser.add_argument('--max-offset', type=int, default=2,
                        help='largest infrared registration offset in pixels')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    meta = generate_demo_dataset(args.out_dir, seed=args.seed, num_train=args.num_train,
                                 num_val=args.num_val, img_size=tuple(args.img_size),
                                 night_ratio=args.night_ratio, max_offset=args.max_offset)
    counts = ', '.join(f'{split}: {c["images"]} pairs / {c["boxes"]} boxes'
                       for split, c in meta['counts'].items())
    print(f'demo data in {args.out_dir} ({counts}) in {meta["seconds"]} s')


if __name__ == '__main__':
    main()
