"""The pipeline's Beam jobs and custom TFX components.

A pipeline step (a Kubeflow pod) imports its executor's module here and `model.trainer`:
they import the TFX modules they use, not `tfx.v1`, which also loads Vertex AI's SDK and
cost each step ~3 s more (docs/performance.md, "Start-up of a pipeline step")."""
import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
