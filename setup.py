"""Installs the colorization pipeline and its `colorizer` command.

Also the file Dataflow workers install (`--setup_file`; `colorizer compile` points it at
the copy inside the image, /colorizer/setup.py), so it lists every package that Beam
stages import. Exact versions come from constraints.txt:
`pip install -c constraints.txt -e .`
"""
import setuptools

setuptools.setup(
    name='colorizer-pipeline',
    version='0.1.0',
    description='A TFX pipeline that colorizes black-and-white photographs.',
    python_requires='>=3.9,<3.11',
    packages=['components', 'model', 'pipeline'],
    install_requires=[
        'absl-py>=1.4,<2',
        'apache-beam[gcp]==2.59.0',
        'fastapi>=0.110',
        'google-cloud-storage>=2,<3',
        'pillow>=10',
        'tensorflow==2.16.2',
        'tensorflow-io==0.37.1',
        'tf-keras>=2.16,<2.17',
        'tfx[kfp]==1.16.0',
        'tqdm>=4.60',
        'uvicorn>=0.29',
    ],
    # The browser test drives Debian's chromium (make test installs it) with Playwright.
    extras_require={'test': ['playwright>=1.40', 'pytest>=8']},
    package_data={'pipeline': ['serve_page.html']},
    entry_points={'console_scripts': ['colorizer=pipeline.cli:main']},
)
