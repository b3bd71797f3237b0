"""Taking a trained model elsewhere: the HTTP server, its page, its micro-batcher and request guards; ONNX export.

Imports core, data and models."""
