"""Codecs at the edges: request bytes -> images; saliency maps -> arrays, heatmap and overlay PNGs."""
