"""Training side of agriland (Keras only): data, synthetic scenes, annotations, DEC and U-Net."""

import os

# Must be set before TensorFlow is first imported: tf-keras (Keras 2) converts cleanly with tf2onnx,
# and segmentation-models must bind to tf.keras.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
