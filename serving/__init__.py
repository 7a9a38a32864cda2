"""Serving side of agriland: ONNX Runtime + BentoML. Never imports TensorFlow."""
