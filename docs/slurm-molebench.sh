#!/usr/bin/env bash
# molebench on a Slurm cluster: generation on all nodes of the allocation, then scoring on the first node.
# One Slurm task per node; each runs `accelerate launch`, which starts one process per GPU (torchrun underneath).
#
#   sbatch --nodes=4 docs/slurm-molebench.sh                  # defaults below
#   MODEL=sd15 BENCHMARK=tiny-human SEEDS=0-3 sbatch --nodes=2 docs/slurm-molebench.sh
#
# Rerunning the same job after a failure or a time limit resumes: finished images and scores are kept.
#SBATCH --job-name=molebench
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --output=molebench-%j.log
set -euo pipefail

export MODEL=${MODEL:-sd15}
export BENCHMARK=${BENCHMARK:-tiny-human}
export SEEDS=${SEEDS:-0-3}
export GPUS_PER_NODE=${GPUS_PER_NODE:-8}
# The run folder must be on a filesystem that every node sees (NFS, Lustre, GPFS ...).
export RUN_DIR=${RUN_DIR:-$PWD/results/${MODEL}__${BENCHMARK}}
export MAIN_IP=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export MAIN_PORT=${MAIN_PORT:-29500}
# No hub access on compute nodes: weights come from the (shared) Hugging Face cache or MOLEBENCH_WEIGHTS_<NAME>.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

# 1) generation, all nodes. $SLURM_NODEID is expanded by each task, on its own node.
srun --kill-on-bad-exit=1 bash -c '
  accelerate launch --multi_gpu --num_machines "$SLURM_NNODES" \
    --num_processes $((SLURM_NNODES * GPUS_PER_NODE)) --machine_rank "$SLURM_NODEID" \
    --main_process_ip "$MAIN_IP" --main_process_port "$MAIN_PORT" --rdzv_backend static --same_network \
    --mixed_precision no --dynamo_backend no \
    -m molebench run --model "$MODEL" --benchmark "$BENCHMARK" --seeds "$SEEDS" --out "$RUN_DIR" --no-score'

# 2) scoring, first node only (scorers are small; more GPUs than this rarely pay off).
srun --nodes=1 --ntasks=1 bash -c '
  accelerate launch --multi_gpu --num_processes "$GPUS_PER_NODE" --num_machines 1 \
    --main_process_port "$MAIN_PORT" --mixed_precision no --dynamo_backend no \
    -m molebench score "$RUN_DIR"'
