"""Text to batches: tokenizers, datasets and splits, labels, classification encoding, LM token streams, batching;
the prepared-data cache that runs and ranks share, and streamed data.

Imports textrnn.core only."""
