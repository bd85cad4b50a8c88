"""The pipeline's Beam jobs and custom TFX components."""
import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
