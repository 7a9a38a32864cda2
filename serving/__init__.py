"""The HTTP service of agriland on BentoML: endpoints, request schemas and bounded body readers over the inference library."""
