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
WINDOW_SPANS = 4                 # the newest spans trained on (docs/pipeline.md, "New data")
RECORD_CACHE_DIR = 'record_cache'  # under the pipeline root: each photo decoded once

# Beam on the local machine: the DirectRunner's worker processes, one per core.
LOCAL_BEAM_ARGS = ('--direct_running_mode=multi_processing', '--direct_num_workers=0')

# Training steps (TrainArgs / EvalArgs; the hyperparameters are in model.hyperparameters)
TRAIN_STEPS = 2000
EVAL_STEPS = 50

# The Evaluator's gates and the push
MIN_IMPROVEMENT_OVER_GRAY = 0.05  # ab-MSE must be at least 5% under the gray baseline's
MAX_REGRESSION = 0.0              # and at most this share above the served model's
KEEP_VERSIONS = 3                 # pushed versions kept in the serving directory

# `colorizer serve`: concurrent requests' photos share one model call (docs/serving.md).
SERVE_HOST, SERVE_PORT = '127.0.0.1', 8501  # this machine only; TF Serving's REST port
SERVE_MAX_UPLOAD_MB = 20     # a larger request body is answered 413
SERVE_POLL_SECONDS = 2.0     # how often the serving folder is looked at for a new version
SERVE_MAX_BATCH = 8          # photos of 256x256 per call: the benchmark's 8 clients
SERVE_BATCH_TIMEOUT_MS = 20  # how long a batch waits for the clients just answered

# Kubeflow Pipelines / Vertex AI (`colorizer compile`)
PIPELINE_IMAGE = 'colorizer:latest'  # built from kubeflow/Dockerfile; --image names yours
IMAGE_PROJECT_DIR = '/colorizer'     # where kubeflow/Dockerfile puts this project
# What each step asks for: (vCPUs, memory in GB). Beam inside a step runs one worker per
# vCPU, and each ingestion or Evaluator worker holds TensorFlow and Inception-ResNet-v2
# (about 2 GB, docs/performance.md). With Dataflow a Beam step only launches the job.
TRAINER_CPU_LIMIT = 8.0
TRAINER_MEMORY_LIMIT_GB = 30.0
INGEST_RESOURCES = (4, 16)
EVALUATOR_RESOURCES = (2, 12)
PUSHER_RESOURCES = (1, 4)
DATAFLOW_LAUNCHER_RESOURCES = (1, 4)
TRAINER_GPU_COUNT = 1                # with --gpu-type
# --gpu-type takes Vertex AI's accelerator names (google.cloud.aiplatform_v1
# AcceleratorType). On open-source KFP the Trainer asks Kubernetes for the
# NVIDIA device plugin's resource, and a node selector picks the model: GKE labels
# its GPU nodes cloud.google.com/gke-accelerator=<the name in lower case, '-' for '_'>.
GPU_TYPES = ('NVIDIA_TESLA_T4', 'NVIDIA_L4', 'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P100',
             'NVIDIA_TESLA_P4', 'NVIDIA_TESLA_A100', 'NVIDIA_A100_80GB', 'NVIDIA_H100_80GB',
             'NVIDIA_H100_MEGA_80GB', 'NVIDIA_H200_141GB', 'NVIDIA_B200')
KUBERNETES_GPU_RESOURCE = 'nvidia.com/gpu'
GKE_ACCELERATOR_LABEL = 'cloud.google.com/gke-accelerator'
