"""The artifact contract shared by training, export and serving: manifest, radiometry, errors, atomic writes (no TensorFlow)."""
