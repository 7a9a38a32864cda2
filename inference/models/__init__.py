"""Model artifacts on ONNX Runtime: sessions, the loaded model, micro-batching, test-time rotations, CPU budget."""
