"""Text to batches: tokenizers, datasets, labels, encoding, LM streams, batching, the shared cache, streaming.

Imports textrnn.core only."""
