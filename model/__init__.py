"""The colorizer model: the image facts that ingestion, training and serving share, the
record schema, the networks, training and the serving signature.

Importing this package is the one place that sets TF_USE_LEGACY_KERAS=1, so that
`tf.keras` is Keras 2 (tf-keras), which TFX's Trainer and TFMA need. The other
packages' `__init__` (`components`, `pipeline`) import `model` before anything else, so
their modules need not.
"""
import os
import sys

if 'tensorflow' in sys.modules and os.environ.get('TF_USE_LEGACY_KERAS') != '1':
  raise ImportError(
      'TensorFlow was imported before the colorizer packages; import `model` first '
      '(or export TF_USE_LEGACY_KERAS=1) so that tf.keras is Keras 2, as TFX needs.')
os.environ['TF_USE_LEGACY_KERAS'] = '1'
