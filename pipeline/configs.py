"""Defaults of the colorization pipeline, as plain constants (like TFX's templates).

The image facts (size, Lab scaling, quantization) live in `model.preprocessing`, which
ingestion, training and serving all import; this module holds the run's knobs.
"""
PIPELINE_NAME = 'colorizer'

# Ingestion
EMBEDDING_WEIGHTS = 'imagenet'   # or 'none' (random, tests), or an .h5 path or gs:// uri
DEMO_EMBEDDING_WEIGHTS = 'auto'  # ImageNet when cached or downloadable, else random
EVAL_PERCENT = 10                # share of photos (by content hash) in Split-eval
MAX_MEGAPIXELS = 50.0            # larger photos are rejected from their header
CROPS_PER_IMAGE = 1              # examples per photo: the centred square, then random crops

# Beam on the local machine: the DirectRunner's worker processes, one per core.
LOCAL_BEAM_ARGS = ('--direct_running_mode=multi_processing', '--direct_num_workers=0')

# Training (the Trainer's custom_config; steps come from TrainArgs / EvalArgs)
TRAIN_STEPS = 2000
EVAL_STEPS = 50
BATCH_SIZE = 8
LEARNING_RATE = 1e-3
LR_SCHEDULE = 'constant'         # or 'cosine': warm-up, then decay to 0 (model/trainer.py)
LOSS = 'mse'                     # or 'rarity': weighted towards rare colours (model/losses.py)
EPOCHS = 10                      # train_steps are spread over this many epochs (checkpoints)
SHUFFLE_BUFFER = 256
SEED = 0                         # of weights, shuffling and flips: a rerun trains alike

# The Evaluator's gates and the push
MIN_IMPROVEMENT_OVER_GRAY = 0.05  # ab-MSE must be at least 5% under the gray baseline's
MAX_REGRESSION = 0.002            # and at most this much above the served model's
KEEP_VERSIONS = 3                 # pushed versions kept in the serving directory

# Kubeflow Pipelines / Vertex AI (`colorizer compile`)
PIPELINE_IMAGE = 'colorizer:latest'  # built from kubeflow/Dockerfile; --image names yours
IMAGE_PROJECT_DIR = '/colorizer'     # where kubeflow/Dockerfile puts this project
TRAINER_CPU_LIMIT = 8.0              # the Trainer's node; the other steps ask for nothing
TRAINER_MEMORY_LIMIT_GB = 30.0
TRAINER_GPU_COUNT = 1                # with --gpu-type
