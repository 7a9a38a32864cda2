"""Region-scale batch segmentation of many scenes on Ray Data (`agriland batch`)."""
