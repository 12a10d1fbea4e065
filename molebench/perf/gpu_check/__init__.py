"""`make gpu-check`: what a user needs to know before a GPU run, measured on one GPU in minutes.

Per real model (its weights from molebench.perf.gpu_check.sources, its own resolution and GPU dtype, a few steps):
load time, s/step, images/s at the best batch size that fits, peak GPU memory, the harness's throughput against the
model's raw pipeline call, and the paper protocol's GPU-hours (2 benchmarks × 3,000 prompts × 3 repeats, generation
at the default steps plus scoring with HPS v1 and ImageReward). Per full-size scorer: images/s batched against the
reference package's per-image loop, and the score difference between float16 and float32. One JSON record, and the
README rows naming the device. On a machine without CUDA it runs in reduced mode (each family's tiny model, tiny
scorers, bfloat16 for the low-precision comparison) so the code path is tested everywhere
(tests/project/test_gpu_check.py); reduced-mode figures never go into README.
"""
