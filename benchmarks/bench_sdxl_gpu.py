#!/usr/bin/env python
"""Cost of generating one image with the real SDXL + T2I-Adapter-XL architecture on a GPU.

What is timed: the denoising loop of StableDiffusionXLAdapterPipeline, written out here step
by step (adapter once per image, then per step: scale input, UNet with the adapter's
residuals, classifier-free guidance, Euler step), plus the VAE decode separately. The models
are the real architectures with random weights, built from their configs written inline
(SDXL base 1.0 UNet and VAE, T2I-Adapter-XL); nothing is downloaded. Weights do not change
the cost.

Skipped: the two CLIP text encoders (a few ms per prompt) -- random prompt embeddings of
the right shapes stand in: encoder_hidden_states [B, 77, 2048], text_embeds [B, 1280],
time_ids [B, 6].

Settings, each at --resolution (default 1024 and 512 px, i.e. latents 128 and 64):
- ``cfg``    classifier-free guidance as the pipeline does it (UNet batch 2 per image),
- ``no-cfg`` guidance off (UNet batch 1 per image; half the UNet work, for reference).

    python benchmarks/bench_sdxl_gpu.py                           # CUDA, fp16, 30 steps
    python benchmarks/bench_sdxl_gpu.py --batch-size 4 --steps 30 --repeats 3
    python benchmarks/bench_sdxl_gpu.py --dry-run                 # no GPU: parameter counts (meta
                                                                  # device) + a tiny CPU smoke run
    python benchmarks/bench_sdxl_gpu.py --device cpu --tiny       # the smoke run only
"""

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

# stabilityai/stable-diffusion-xl-base-1.0, unet/config.json (the keys that differ from the
# UNet2DConditionModel defaults, plus the structural ones for the reader)
SDXL_UNET = dict(
    sample_size=128,
    in_channels=4,
    out_channels=4,
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    block_out_channels=[320, 640, 1280],
    layers_per_block=2,
    attention_head_dim=[5, 10, 20],
    transformer_layers_per_block=[1, 2, 10],
    cross_attention_dim=2048,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_embed_type_num_heads=64,
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,  # 6 time ids x 256 + pooled text 1280
    norm_num_groups=32,
    norm_eps=1e-5,
    flip_sin_to_cos=True,
    freq_shift=0,
)
SDXL_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[128, 256, 512, 512],
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=1024,
    scaling_factor=0.13025,
    force_upcast=False,  # as madebyollin/sdxl-vae-fp16-fix: decode in fp16
)
# TencentARC/t2i-adapter-lineart-sdxl-1.0
SDXL_ADAPTER = dict(
    in_channels=3,
    channels=[320, 640, 1280, 1280],
    num_res_blocks=2,
    downscale_factor=16,
    adapter_type="full_adapter_xl",
)
TEXT_DIM, POOLED_DIM = 2048, 1280

# --tiny: the same structure scaled down (CPU smoke test of this script)
TINY_UNET = {
    **SDXL_UNET,
    "block_out_channels": [32, 64, 64],
    "attention_head_dim": [2, 4, 4],
    "transformer_layers_per_block": [1, 1, 1],
    "cross_attention_dim": 64,
    "addition_time_embed_dim": 8,
    "addition_embed_type_num_heads": 4,
    "projection_class_embeddings_input_dim": 6 * 8 + 32,
}
TINY_VAE = {**SDXL_VAE, "block_out_channels": [32, 32, 32, 32], "layers_per_block": 1}
TINY_ADAPTER = {**SDXL_ADAPTER, "channels": [32, 64, 64, 64], "num_res_blocks": 1}
TINY_TEXT_DIM, TINY_POOLED_DIM = 64, 32


def scheduler():
    """SDXL base's scheduler: EulerDiscrete, scaled-linear betas, leading timestep spacing."""
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )


def build(device: str, dtype: torch.dtype, tiny: bool):
    """(unet, vae, adapter) with random weights, created directly on ``device`` in ``dtype``."""
    from diffusers import AutoencoderKL, T2IAdapter, UNet2DConditionModel
    from diffusers.utils import logging as dlogging

    dlogging.set_verbosity_error()  # .to(dtype) warns that no module needs float32: noise here
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(TINY_UNET if tiny else SDXL_UNET)
        vae = AutoencoderKL.from_config(TINY_VAE if tiny else SDXL_VAE)
        adapter = T2IAdapter.from_config(TINY_ADAPTER if tiny else SDXL_ADAPTER)
    return tuple(m.to(dtype=dtype).eval().requires_grad_(False) for m in (unet, vae, adapter))


def count(model) -> str:
    return f"{sum(p.numel() for p in model.parameters()) / 1e6:,.1f} M"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.inference_mode()
def denoise(unet, adapter, sched, cond, latents, prior, steps: int, cfg: bool, guidance: float = 7.5):
    """The adapter pipeline's denoising loop (diffusers' StableDiffusionXLAdapterPipeline, step 8)."""
    sched.set_timesteps(steps, device=latents.device)
    latents = latents * sched.init_noise_sigma
    state = adapter(prior)  # once per image
    if cfg:
        state = [torch.cat([s, s]) for s in state]
    for t in sched.timesteps:
        x = torch.cat([latents, latents]) if cfg else latents
        x = sched.scale_model_input(x, t)
        noise = unet(
            x,
            t,
            encoder_hidden_states=cond["emb"],
            added_cond_kwargs={"text_embeds": cond["pooled"], "time_ids": cond["time_ids"]},
            down_intrablock_additional_residuals=[s.clone() for s in state],
            return_dict=False,
        )[0]
        if cfg:
            uncond, text = noise.chunk(2)
            noise = uncond + guidance * (text - uncond)
        latents = sched.step(noise, t, latents, return_dict=False)[0]
    return latents


def inputs(batch: int, res: int, cfg: bool, dtype, device, tiny: bool, gen: torch.Generator):
    """Random prompt embeddings, latents and line-art prior of the right shapes."""
    n = 2 * batch if cfg else batch
    text, pooled = (TINY_TEXT_DIM, TINY_POOLED_DIM) if tiny else (TEXT_DIM, POOLED_DIM)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, device=device, dtype=torch.float32).to(dtype)

    cond = {
        "emb": rand(n, 77, text),
        "pooled": rand(n, pooled),
        "time_ids": torch.tensor([[res, res, 0, 0, res, res]] * n, device=device, dtype=dtype),
    }
    latents = rand(batch, 4, res // 8, res // 8)
    prior = (torch.rand(batch, 3, res, res, generator=gen, device=device) > 0.9).to(dtype)
    return cond, latents, prior


def timed(fn, device: str, repeats: int) -> float:
    """Best wall time of ``repeats`` calls (after the caller's warm-up), synchronised."""
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def run(args, device: str, dtype: torch.dtype) -> None:
    unet, vae, adapter = build(device, dtype, args.tiny)
    name = "tiny SDXL-structured models" if args.tiny else "SDXL base 1.0 UNet + VAE, T2I-Adapter-XL"
    where = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    print(f"{name} (random weights; UNet {count(unet)}, adapter {count(adapter)}, VAE {count(vae)} params)")
    print(
        f"device {where}, {str(dtype).replace('torch.', '')}, {args.steps} steps, Euler, batch {args.batch_size} "
        f"image(s) per call, best of {args.repeats} after {args.warmup} warm-up"
    )
    text, pooled = (TINY_TEXT_DIM, TINY_POOLED_DIM) if args.tiny else (TEXT_DIM, POOLED_DIM)
    print(
        f"text encoders skipped: random prompt embeddings [B,77,{text}], text_embeds [B,{pooled}], time_ids [B,6]; "
        "square images (a 768x1024 VOC image costs about 3/4 of 1024x1024)"
    )
    print(
        f"{'px':>5} {'latent':>6} {'mode':>6} {'UNet batch':>10} {'s/image':>8} {'images/s':>9} "
        f"{'+VAE s/img':>10} {'peak GiB':>8}"
    )
    gen = torch.Generator(device).manual_seed(0)
    for res in args.resolution:
        for cfg in (True, False):
            cond, latents, prior = inputs(args.batch_size, res, cfg, dtype, device, args.tiny, gen)
            sched = scheduler()

            def loop():
                return denoise(unet, adapter, sched, cond, latents, prior, args.steps, cfg)

            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            for _ in range(args.warmup):
                out = loop()
            dt = timed(loop, device, args.repeats)
            with torch.inference_mode():
                out = loop() if args.warmup == 0 else out
                decode = lambda: vae.decode(out / vae.config.scaling_factor, return_dict=False)[0]
                decode()
                dv = timed(decode, device, args.repeats)
            peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
            per = dt / args.batch_size
            print(
                f"{res:>5} {res // 8:>6} {'cfg' if cfg else 'no-cfg':>6} {(2 if cfg else 1) * args.batch_size:>10} "
                f"{per:>8.3f} {1 / per:>9.2f} {(dt + dv) / args.batch_size:>10.3f} {peak:>8.1f}"
            )


def dry_run() -> None:
    """Build the full-size models on the meta device (no memory, no GPU) and count parameters."""
    unet, vae, adapter = build("meta", torch.float16, tiny=False)
    print(
        f"dry run: full-size models build on the meta device: UNet {count(unet)}, adapter {count(adapter)}, "
        f"VAE {count(vae)} params (SDXL base UNet is 2,567.5 M)"
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (only with --tiny)")
    ap.add_argument("--tiny", action="store_true", help="scaled-down models: a smoke test of this script")
    ap.add_argument("--dry-run", action="store_true", help="meta-device build of the real sizes + tiny CPU run")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--resolution", type=int, nargs="+", default=[1024, 512])
    ap.add_argument("--batch-size", type=int, default=1, help="images per call")
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    if args.dry_run:
        dry_run()
        args.device, args.tiny, args.dtype = "cpu", True, "float32"
        args.steps, args.resolution, args.repeats = min(args.steps, 4), [128, 64], 1
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(
            "bench_sdxl_gpu: no CUDA device visible. This benchmark times the real SDXL on a GPU; "
            "run it on a GPU node, or check the script here with --dry-run (or --device cpu --tiny)."
        )
    if device == "cpu" and not args.tiny:
        sys.exit("bench_sdxl_gpu: the full-size SDXL UNet on CPU takes minutes per image; add --tiny for a smoke run")
    dtype = getattr(torch, args.dtype)
    if device == "cpu" and dtype != torch.float32:
        print(f"note: {args.dtype} on CPU is slow or unsupported; using float32")
        dtype = torch.float32
    run(args, device, dtype)


if __name__ == "__main__":
    main()
