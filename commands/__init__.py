"""What users run: the `colorizer` command (cli.py) and the jobs behind it that are not
the TFX pipeline: colorize, serve, evaluate, submit."""
import model  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
