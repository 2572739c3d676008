"""GPU compute and model memory: how many GPUs a model needs and how long training takes.

Self-hosted training is sized from first principles rather than a flat guess: a training step
costs about 6 x parameters FLOPs per token for a full fine-tune and about 4 x for LoRA/QLoRA
(no weight gradients for the frozen base; Kaplan et al. 2020, "Scaling Laws for Neural
Language Models", C = 6ND), delivered at the GPU's dense BF16 peak (NVIDIA datasheets, below)
times a model-FLOPs utilisation (MFU). The default MFU of 0.15 is an assumption typical of
single-GPU LoRA runs with short sequences; measure your own run and set
`serving.train_tokens_per_gpu_hour` to replace it.
"""

from __future__ import annotations

import math
import re

# Dense BF16 (FP16 for T4) tensor TFLOPS, without sparsity, from NVIDIA's datasheets.
GPU_TFLOPS = {
    "t4": 65.0,          # T4 datasheet: 65 TFLOPS FP16 tensor
    "l4": 121.0,         # L4 datasheet: 242 with sparsity
    "a10": 125.0,        # A10 datasheet: 250 with sparsity
    "a10g": 125.0,       # AWS's A10 variant; taken as the A10
    "l40s": 362.0,       # L40S datasheet: 733 with sparsity
    "a100": 312.0, "a100-40gb": 312.0, "a100-80gb": 312.0,  # A100 datasheet
    "h100": 989.0, "h100-sxm": 989.0,                        # H100 SXM datasheet
    "h100-pcie": 756.0,                                      # H100 PCIe datasheet
}
TFLOPS_SOURCE = "NVIDIA datasheets (dense BF16/FP16 tensor TFLOPS, no sparsity)"
# Bytes a training run keeps on the GPU per parameter: full = bf16 weights + grads + fp32 Adam
# moments and master weights (16 B); LoRA = bf16 frozen weights; QLoRA = 4-bit frozen weights.
TRAIN_BYTES_PER_PARAM = {"full": 16.0, "lora": 2.0, "qlora": 0.6}
FLOPS_PER_PARAM_TOKEN = {"full": 6.0, "lora": 4.0, "qlora": 4.0}
MEMORY_HEADROOM = 1.2  # KV cache / activations on top of the weights
DEFAULT_PARAMS_B = 8.0


def params_from_name(model: str) -> float | None:
    """Billions of parameters read from a name like 'llama-3.1-8b-instruct' (None if absent)."""
    hits = re.findall(r"(?<![\d.x])(\d+(?:\.\d+)?)b(?![a-z])", model.lower())
    return float(hits[-1]) if hits else None


def gpu_tflops(gpu: str) -> float | None:
    return GPU_TFLOPS.get(gpu.lower().partition("@")[0])


def serving_memory_gb(params_b: float, weight_bytes: float) -> float:
    """GPU memory to serve a model: its weights plus headroom for the KV cache."""
    return params_b * weight_bytes * MEMORY_HEADROOM


def training_gpus(params_b: float, method: str, gpu_memory_gb: float) -> int:
    """GPUs one training run needs so that weights, gradients and optimiser state fit."""
    need = params_b * TRAIN_BYTES_PER_PARAM[method] * MEMORY_HEADROOM
    return max(1, math.ceil(need / gpu_memory_gb))


def training_gpu_hours(tokens: float, params_b: float, method: str, tflops: float, mfu: float,
                       overhead_hours: float, gpus: int) -> float:
    """GPU-hours of one run: compute at `mfu` of peak, plus fixed setup/eval/export per GPU."""
    flops = FLOPS_PER_PARAM_TOKEN[method] * params_b * 1e9 * tokens
    return flops / (tflops * 1e12 * mfu) / 3600.0 + overhead_hours * gpus
