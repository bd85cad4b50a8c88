"""AutoGraph leaves Keras 2 (`tf_keras`) alone, as it leaves Keras.

AutoGraph converts the Python of every function a `tf.function` calls, except in the
modules its rules skip. TensorFlow 2.16 skips `keras` but not `tf_keras`
(tensorflow/python/autograph/core/config.py, CONVERSION_RULES), so tracing a function
that calls a Keras 2 model re-writes tf_keras's own layer code, layer by layer: about
three quarters of exporting Inception-ResNet-v2 into the serving graph, and part of
every training and evaluation trace. Later TensorFlow adds `DoNotConvert("tf_keras")`
to the same rules; this adds it to 2.16's. Keras 2 ran unconverted under the name
`keras` for years, and layers that users subclass are still converted (tf_keras
converts their `call` itself: `Layer._autographed_call`).
"""
from tensorflow.python.autograph.core import config  # pylint: disable=g-direct-tensorflow-import

TF_KERAS = 'tf_keras'


def leave_tf_keras_alone() -> None:
  """Adds the rule once; a TensorFlow that has it already is left as it is."""
  if not any(rule.matches(f'{TF_KERAS}.src') for rule in config.CONVERSION_RULES
             if isinstance(rule, config.DoNotConvert)):
    config.CONVERSION_RULES = (*config.CONVERSION_RULES, config.DoNotConvert(TF_KERAS))


leave_tf_keras_alone()
