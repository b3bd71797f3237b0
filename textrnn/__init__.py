"""textrnn: RNN, LSTM and GRU text classifiers and generators on PyTorch.

    from textrnn import RNNClassifier, RNNLanguageModel
    clf = RNNClassifier.from_pretrained("runs/sst2_bilstm")
    clf.predict(["a gripping, funny film"])

The code is in layers, each a subpackage that imports only those below it::

    core      errors, config, runtime, ranks            (imports nothing of textrnn)
    data      tokenizers, datasets, labels, batching    (core)
    models    encoder, models, generation, checkpoints  (core, data)
    training  trainer, tasks, evaluation, run folders   (core, data, models)
    serving   HTTP server, ONNX export                  (core, data, models)
    cli       the `textrnn` command                     (everything)

Everything a user needs is importable from here.
"""

from .core import logs
from .core.config import ExperimentConfig, RNNConfig
from .core.config_files import load_config
from .core.errors import CheckpointError, ConfigError, DataError, TextRNNError, TrainingError
from .data.batching import BucketBatchSampler, ClassificationLoader, LMStreamLoader, pad_batch
from .data.loading import load_raw
from .data.tokenization import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, TextTokenizer, Vocab
from .models.base import ClassifierOutput, LMOutput, TextModel
from .models.classifier import ClassifierEnsemble, RNNClassifier
from .models.distillation import DistillLoss
from .models.encoder import RNNEncoder
from .models.generation_config import GenerationConfig
from .models.language_model import RNNLanguageModel
from .models.modules import (
    AttentionPooling,
    EmbeddingDropout,
    LastPooling,
    MaxPooling,
    MeanPooling,
    RNNBackbone,
    WordDropout,
)
from .models.registry import MODELS, build_model, load_model
from .training.api import evaluate, lr_find, prepare, train, tune
from .training.distill_config import DistillConfig
from .training.distillation import distill
from .training.registry import TASKS
from .training.task import Task

__version__ = "0.1.0"
logs.install()  # one stderr handler, rank 0 only (textrnn.core.logs)

__all__ = [
    "BOS_ID", "EOS_ID", "MODELS", "PAD_ID", "SPECIAL_TOKENS", "TASKS", "UNK_ID", "AttentionPooling",
    "BucketBatchSampler", "build_model", "CheckpointError", "ClassificationLoader", "ClassifierEnsemble",
    "ClassifierOutput", "LMOutput", "TextModel",
    "ConfigError", "DataError", "distill", "DistillConfig", "DistillLoss", "EmbeddingDropout", "evaluate",
    "ExperimentConfig", "GenerationConfig",
    "LastPooling", "LMStreamLoader", "load_config", "lr_find", "load_model", "load_raw", "MaxPooling", "MeanPooling",
    "pad_batch", "prepare", "RNNBackbone", "RNNClassifier", "RNNConfig", "RNNEncoder", "RNNLanguageModel", "Task",
    "TextRNNError", "TextTokenizer", "train", "tune", "TrainingError", "Vocab", "WordDropout",
]
