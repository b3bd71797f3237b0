"""textrnn: RNN, LSTM and GRU text classifiers and generators on PyTorch.

    from textrnn import RNNClassifier, RNNLanguageModel
    clf = RNNClassifier.from_pretrained("runs/sst2_bilstm")
    clf.predict(["a gripping, funny film"])
"""

from .config import ExperimentConfig, RNNConfig, load_config
from .batching import BucketBatchSampler, ClassificationLoader, LMStreamLoader, pad_batch
from .data import load_raw
from .encoder import RNNEncoder
from .errors import CheckpointError, ConfigError, DataError, TextRNNError, TrainingError
from .model import ClassifierEnsemble, RNNClassifier, RNNLanguageModel
from .registry import TASKS, build_model, load_model
from .tokenization import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, TextTokenizer, Vocab
from .trainer import train

__version__ = "0.1.0"

__all__ = [
    "BOS_ID", "EOS_ID", "PAD_ID", "SPECIAL_TOKENS", "UNK_ID",
    "BucketBatchSampler", "CheckpointError", "ClassificationLoader", "ClassifierEnsemble", "ConfigError", "DataError",
    "ExperimentConfig", "LMStreamLoader", "RNNClassifier", "RNNConfig", "RNNEncoder", "RNNLanguageModel",
    "TASKS", "TextRNNError", "TextTokenizer", "TrainingError", "Vocab", "load_config", "load_model", "load_raw",
    "build_model", "pad_batch", "train",
]
