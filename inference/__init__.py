"""agriland's inference library: ONNX models, tiles and scenes of any size to masks, fields and polygons (no TensorFlow, no HTTP)."""
