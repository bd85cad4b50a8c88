"""The colorization pipeline: configuration, the TFX pipeline and the `colorizer` command."""
import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
