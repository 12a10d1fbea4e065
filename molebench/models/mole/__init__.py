"""MoLE (Mixture of Low-rank Experts, NeurIPS 2024) as a diffusers-native component: layer, loader, models."""
