"""Whole scenes, windowed: GeoTIFF sources, the blending engine, ground resolution, sinks, polygons, clusters."""
