"""Install the ``fusion_mamba`` package (sources in ``projects/fusion_mamba``).

mmcv with compiled ops must be installed first (``bash tools/setup_env.sh`` does it): it has
no wheel for current torch and pip cannot build it in an isolated environment.
"""
import os.path as osp
import re

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def read_version():
    with open(osp.join(ROOT, 'projects', 'fusion_mamba', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def read_requirements(name):
    with open(osp.join(ROOT, 'requirements', name)) as f:
        return [line.strip() for line in f
                if line.strip() and not line.startswith('#')]


setup(
    name='fusion_mamba',
    version=read_version(),
    description='Multispectral (RGB + thermal) object detection with state-space fusion '
    '(Fusion-Mamba) for MMDetection 3.x',
    long_description=open(osp.join(ROOT, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    package_dir={'': 'projects'},
    packages=find_packages('projects'),
    package_data={'fusion_mamba': ['ops/csrc/*.cpp']},
    install_requires=read_requirements('torch.txt') + read_requirements('runtime.txt')
    + ['mmcv>=2.0.0,<2.2.0'],
    extras_require={
        'tests': read_requirements('tests.txt') + read_requirements('deploy.txt'),
        'deploy': read_requirements('deploy.txt'),
        'cuda': read_requirements('optional.txt'),
    },
    zip_safe=False,
)
