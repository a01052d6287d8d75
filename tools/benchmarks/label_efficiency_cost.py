"""What a fine-tuning iteration costs under each model variant of the label-efficiency benchmark, side by side.

    OMP_NUM_THREADS=1 python tools/benchmarks/label_efficiency_cost.py --data-root data/nuscenes/ \
        [--iters 4] [--out work_dirs/iteration_cost.json]

See clap_plugin/benchmarks/label_efficiency/iteration_cost.py for what is measured.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data-root', required=True, help='a nuScenes tree with its info files (a synthetic set)')
    p.add_argument('--version', default='v1.0-trainval', help='nuScenes version of the info files')
    p.add_argument('--config', default='configs/bevfusion_lidar-cam_finetune_nus_cpu-tiny.py')
    p.add_argument('--iters', type=int, default=4, help='timed iterations per variant (after one warm-up)')
    p.add_argument('--out', help='also write the figures here as JSON')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import clap_plugin  # noqa: F401
    from clap_plugin.benchmarks.label_efficiency.iteration_cost import measure, to_json, to_markdown
    from clap_plugin.utils.atomic_write import write_json_atomic
    root = args.data_root if args.data_root.endswith('/') else args.data_root + '/'
    costs = measure(args.config, root, args.version, iters=args.iters)
    print('\n'.join(to_markdown(costs)))
    if args.out:
        write_json_atomic(args.out, to_json(costs))
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
