"""Text to batches: tokenizers, datasets and splits, labels, classification encoding, LM token streams, batching.

Imports textrnn.core only."""
