"""Single tiles: image bytes to model RGB, and odd-size tiles fitted to the model size and back."""
