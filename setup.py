"""Install clap_plugin: CLAP joint camera + LiDAR pre-training as an mmdet3d 1.x plugin."""
from setuptools import find_namespace_packages, setup

setup(
    name='clap_plugin',
    version='0.1.0',
    description='CLAP: joint image + point cloud pre-training by differentiable rendering (mmdet3d plugin)',
    long_description=open('README.md', encoding='utf-8').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    # `projects` is a PEP 420 namespace package (no projects/__init__.py), as in mmdetection3d: an upstream
    # checkout's projects/BEVFusion and this package's projects/PPKT, SimIPU, CMCR import side by side.
    packages=find_namespace_packages(include=['clap_plugin', 'clap_plugin.*', 'projects.*'],
                                     exclude=['projects.*.configs', 'projects.*.configs.*', '*.__pycache__']),
    python_requires='>=3.8',
    install_requires=[],  # the pinned stack is installed by tools/install.sh (requirements/)
    license='Apache-2.0',
)
