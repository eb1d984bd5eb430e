"""sne-deploy: distil a teacher ANN into a gated Spiking Neural Ensemble and deploy it through NIR."""
__version__ = "0.1.0"
