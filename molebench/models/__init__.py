"""Text-to-image models: registered diffusers pipelines (real hub models and tiny offline variants)."""

from molebench.models.base import GenerationSettings, T2IModel

__all__ = ["GenerationSettings", "T2IModel"]
