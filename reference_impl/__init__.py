"""gemini-workshop reference implementation: models, training, data, generation, utils."""

__version__ = "0.1.0"
