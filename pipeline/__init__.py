"""The TFX pipeline: its configuration, `create_pipeline`, the local and Kubeflow runners,
the steps' entry point on Kubeflow, and the run's report and log."""
import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
