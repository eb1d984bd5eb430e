"""Exporters: a trained sne_deploy ensemble -> NIR graphs, ONNX host parts and a manifest (a bundle)."""
