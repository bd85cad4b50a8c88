"""The benchmarks (`make bench`): each stage against the raw TensorFlow or Beam operation
under it. Run from a clone; not part of the installed package or the image."""
import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
