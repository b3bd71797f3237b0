"""Taking a trained model elsewhere: the HTTP server and its page, ONNX export.

Imports core, data and models."""
