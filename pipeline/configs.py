"""Defaults of the colorization pipeline, as plain constants (like TFX's templates).

The image facts (size, Lab scaling, quantization: `model.scaling`; decoding and its
limits: `model.decoding`) live in `model/`, which ingestion, training and serving all
import; the Trainer's hyperparameters (batch size,
learning rate, schedule, loss, epochs, seed, ...) in `model.hyperparameters`. This
module holds the run's other knobs.
"""
PIPELINE_NAME = 'colorizer'

# Ingestion
EVAL_PERCENT = 10                # share of photos (by content hash) in Split-eval
CROPS_PER_IMAGE = 1              # examples per photo: the centred square, then random crops

# Beam on the local machine: the DirectRunner's worker processes, one per core.
LOCAL_BEAM_ARGS = ('--direct_running_mode=multi_processing', '--direct_num_workers=0')

# Training steps (TrainArgs / EvalArgs; the hyperparameters are in model.hyperparameters)
TRAIN_STEPS = 2000
EVAL_STEPS = 50

# The Evaluator's gates and the push
MIN_IMPROVEMENT_OVER_GRAY = 0.05  # ab-MSE must be at least 5% under the gray baseline's
MAX_REGRESSION = 0.002            # and at most this much above the served model's
KEEP_VERSIONS = 3                 # pushed versions kept in the serving directory

# `colorizer serve`: concurrent requests' photos share one model call (docs/serving.md).
SERVE_MAX_BATCH = 8          # photos of 256x256 per call: the benchmark's 8 clients
SERVE_BATCH_TIMEOUT_MS = 20  # how long a batch waits for the clients just answered

# Kubeflow Pipelines / Vertex AI (`colorizer compile`)
PIPELINE_IMAGE = 'colorizer:latest'  # built from kubeflow/Dockerfile; --image names yours
IMAGE_PROJECT_DIR = '/colorizer'     # where kubeflow/Dockerfile puts this project
TRAINER_CPU_LIMIT = 8.0              # the Trainer's node; the other steps ask for nothing
TRAINER_MEMORY_LIMIT_GB = 30.0
TRAINER_GPU_COUNT = 1                # with --gpu-type
