#!/usr/bin/env python3
"""Writes the reference data of darkroom's sampling tests to tests/data/sampling/.

    pip install torch numpy scipy safetensors torchsde torchdiffeq tqdm
    pip install --no-deps k-diffusion==0.1.1.post1
    python tools/make_sampling_fixtures.py [--out tests/data/sampling]

Needs an x86-64 CPU with AVX2 (torch then runs its AVX2 randn kernel, the one ComfyUI
users on x86 get); the scalar kernel's references are made in a child process with
ATEN_CPU_CAPABILITY=default.

Where each reference comes from (independent of darkroom's C++):
  rng.safetensors       torch.randn itself (PyPI torch, CPU generator); ComfyUI's
                        prepare_noise transcribed below (it is four lines of torch calls);
                        numpy's SeedSequence.generate_state; and torchsde's BrownianTree
                        through k-diffusion's BrownianTreeNoiseSampler, queried with the
                        sigma pairs ComfyUI's dpmpp_2m_sde and dpmpp_sde ask for.
  schedule.safetensors  the sigma table and the schedulers: karras and exponential from
                        k-diffusion (PyPI); the others (normal, sgm_uniform, simple,
                        ddim_uniform, beta via scipy.stats.beta.ppf, linear_quadratic,
                        kl_optimal), ModelSamplingDiscrete and KSampler's sigma selection
                        are transcribed here from ComfyUI (comfy/samplers.py,
                        comfy/model_sampling.py), which no package ships.
  samplers.safetensors  20-step runs of every sampler with an analytic denoiser (the
                        exact denoiser of Gaussian data), from k-diffusion's sample_*
                        functions (PyPI) where they exist: euler (also ComfyUI's "ddim"),
                        euler_ancestral, heun, dpm_2, dpm_2_ancestral, lms,
                        dpmpp_2s_ancestral, dpmpp_sde, dpmpp_2m, dpmpp_2m_sde (midpoint
                        and heun). lcm and uni_pc (bh1, bh2) are not in k-diffusion: they
                        are transcribed here from ComfyUI (comfy/k_diffusion/sampling.py,
                        comfy/extra_samplers/uni_pc.py).
                        Ancestral noise comes from ComfyUI's default noise sampler on the
                        CPU (a torch.Generator seeded with seed + 1); dpmpp_sde and
                        dpmpp_2m_sde use k-diffusion's BrownianTreeNoiseSampler (torchsde),
                        whose noise is recorded so that the C++ test can inject it.

Differences between k-diffusion 0.1.1 and ComfyUI that the C++ mirrors (ComfyUI's side)
and that change results only by float rounding: ComfyUI's euler_ancestral sets
x = denoised on the last step instead of x + d·dt, and its dpmpp_sde/dpmpp_2m_sde are
written in half-log-SNR form (equal for ε models, α = 1). One real difference: ComfyUI's
lms ends with x = denoised at σ = 0 where k-diffusion 0.1.1 takes a multistep step; the
reference runs k-diffusion to the last non-zero sigma and then ComfyUI's final step.
"""
import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import types

import numpy as np
import scipy.stats
import torch
from safetensors.numpy import save_file

# ---------------------------------------------------------------------------------------
# k-diffusion's sampling module without its package __init__ (which pulls in torchvision,
# PIL, wandb and clean-fid for training code). sampling.py needs only utils.append_dims.


def load_k_diffusion_sampling():
    spec = importlib.util.find_spec("k_diffusion")
    root = spec.submodule_search_locations[0]
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = [root]
    utils = types.ModuleType("k_diffusion.utils")

    def append_dims(x, target_dims):
        return x[(...,) + (None,) * (target_dims - x.ndim)]

    utils.append_dims = append_dims
    pkg.utils = utils
    sys.modules["k_diffusion"] = pkg
    sys.modules["k_diffusion.utils"] = utils
    sspec = importlib.util.spec_from_file_location("k_diffusion.sampling",
                                                    os.path.join(root, "sampling.py"))
    mod = importlib.util.module_from_spec(sspec)
    sys.modules["k_diffusion.sampling"] = mod
    sspec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------------
# RNG

RNG_SEEDS = [0, 1, 42, 123456789, 2**32 + 5, 2**64 - 1]
# Each case: consecutive torch.randn calls on one freshly seeded generator.
RNG_CALLS = [
    [[1]], [[5]], [[15]], [[16]], [[17]], [[1000]], [[2, 4, 8, 8]], [[3, 5, 7]],
    [[5], [3]],                      # the scalar path's cached second value carries over
    [[3], [17], [1], [16], [2]],     # mixed paths keep one stream
    [[31], [33]],
]
BIG_SHAPE = [1, 4, 64, 64]  # an SD1.5 512x512 latent, for one seed


def rng_cases(kind):
    """[(name, seed, calls, values)] for the running process's randn kernel."""
    out = []
    for si, seed in enumerate(RNG_SEEDS):
        for ci, calls in enumerate(RNG_CALLS):
            g = torch.Generator().manual_seed(seed)
            vals = [torch.randn(shape, generator=g).flatten() for shape in calls]
            out.append((f"{kind}.s{si}.c{ci}", seed, calls, torch.cat(vals).numpy()))
    g = torch.Generator().manual_seed(42)
    calls = [BIG_SHAPE]
    out.append((f"{kind}.big", 42, calls, torch.randn(BIG_SHAPE, generator=g).flatten().numpy()))
    return out


def comfy_prepare_noise(shape, seed, noise_inds=None):
    """comfy.sample.prepare_noise on a latent of `shape` (NCHW)."""
    generator = torch.manual_seed(seed)
    if noise_inds is None:
        return torch.randn(shape, dtype=torch.float32, generator=generator, device="cpu")
    unique_inds, inverse = np.unique(noise_inds, return_inverse=True)
    noises = []
    for i in range(unique_inds[-1] + 1):
        noise = torch.randn([1] + list(shape)[1:], dtype=torch.float32, generator=generator,
                            device="cpu")
        if i in unique_inds:
            noises.append(noise)
    noises = [noises[i] for i in inverse]
    return torch.cat(noises, axis=0)


def make_rng(out_dir, ksd):
    cap = torch.backends.cpu.get_cpu_capability()
    if cap not in ("AVX2", "AVX512"):
        sys.exit(f"this needs an x86 CPU with AVX2 (torch reports {cap})")
    tensors, meta = {}, {}
    for name, seed, calls, vals in rng_cases("avx2"):
        tensors[name] = vals.astype(np.float32)
        meta[name] = {"seed": str(seed), "calls": calls}
    # The scalar kernel: a child process with torch's DEFAULT CPU capability.
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    child = subprocess.run([sys.executable, __file__, "--scalar-rng-child"], env=env,
                           capture_output=True, check=True)
    scalar = np.load(__import__("io").BytesIO(child.stdout), allow_pickle=False)
    for name in scalar.files:
        tensors[name] = scalar[name].astype(np.float32)
    meta.update(json.loads(child.stderr.decode().strip().splitlines()[-1]))

    noise_cases = [
        ("noise.plain", [3, 4, 8, 8], 7, None),
        ("noise.inds", [3, 4, 5, 5], 7, [2, 0, 2]),  # 100 values per item: tail path
        ("noise.inds2", [2, 4, 8, 8], 123, [1, 3]),
    ]
    for name, shape, seed, inds in noise_cases:
        tensors[name] = comfy_prepare_noise(shape, seed, inds).numpy()
        meta[name] = {"seed": str(seed), "shape": shape, "batch_index": inds}
    seedseq, brownian_meta = make_seed_sequences(), {}
    make_brownian(ksd, tensors, brownian_meta)
    save_file(tensors, os.path.join(out_dir, "rng.safetensors"),
              metadata={"cases": json.dumps(meta), "seed_sequences": json.dumps(seedseq),
                        "brownian": json.dumps(brownian_meta)})


def make_seed_sequences():
    """numpy.random.SeedSequence.generate_state for entropies and spawn keys like
    torchsde's (seed, (spawn_key, depth)) with its pool size 24."""
    out = []
    for entropy in (0, 5, 1234, 2**32 + 7, 2**64 - 1):
        for spawn_key in ((), (0, 0), (3, 2), (2**33 + 1, 34)):
            for pool in (4, 24):
                state = np.random.SeedSequence(entropy=entropy, spawn_key=spawn_key,
                                               pool_size=pool).generate_state(4)
                out.append({"entropy": str(entropy), "spawn_key": [str(k) for k in spawn_key],
                            "pool_size": pool, "state": [int(v) for v in state]})
    return out


def comfy_sde_sigma_s1(sigma, sigma_next, r=0.5):
    """sigma_s_1 of ComfyUI's dpmpp_sde, in its float32 tensor arithmetic."""
    lambda_s, lambda_t = sigma.log().neg(), sigma_next.log().neg()
    h = lambda_t - lambda_s
    return (lambda_s + r * h).neg().exp()


def make_brownian(ksd, tensors, meta):
    """ComfyUI's BrownianTreeNoiseSampler (k-diffusion's, which builds the same
    torchsde.BrownianTree on the CPU) queried with the sigma pairs ComfyUI's samplers ask
    for."""
    s = ModelSamplingDiscrete()
    scheds = make_schedulers(ksd)
    cases = []
    sig = scheds["karras"](s, 20)
    cases.append(("2m_sde", 1234, [1, 4, 8, 8], sig,
                  [(sig[i], sig[i + 1]) for i in range(len(sig) - 1) if sig[i + 1] > 0]))
    sig = scheds["normal"](s, 20)
    calls = []
    for i in range(len(sig) - 1):
        if sig[i + 1] > 0:
            calls += [(sig[i], comfy_sde_sigma_s1(sig[i], sig[i + 1])), (sig[i], sig[i + 1])]
    cases.append(("sde", 99, [1, 4, 8, 8], sig, calls))
    sig = scheds["exponential"](s, 6)
    cases.append(("big_seed", 2**64 - 1, [1, 4, 5, 5], sig,
                  [(sig[0], sig[1]), (sig[2], sig[1]), (sig[1], sig[3]), (sig[4], sig[5])]))
    for name, seed, shape, sig, calls in cases:
        x = torch.zeros(shape)
        sigma_min, sigma_max = sig[sig > 0].min(), sig.max()
        sampler = ksd.BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed=seed)
        noise, w = [], []
        for a, b in calls:
            # The signed increment (before ComfyUI divides by sqrt(|b - a|)), then the noise.
            w.append(sampler.tree(torch.as_tensor(a), torch.as_tensor(b)))
            noise.append(sampler(a, b))
        tensors[f"brownian.{name}.w"] = torch.stack(w).numpy()
        tensors[f"brownian.{name}.noise"] = torch.stack(noise).numpy()
        tensors[f"brownian.{name}.sigmas"] = np.array([[float(a), float(b)] for a, b in calls],
                                                      dtype=np.float32)
        meta[name] = {"seed": str(seed), "shape": shape, "sigma_min": float(sigma_min),
                      "sigma_max": float(sigma_max)}


def scalar_rng_child():
    assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
    import io
    arrays, meta = {}, {}
    for name, seed, calls, vals in rng_cases("scalar"):
        arrays[name] = vals
        meta[name] = {"seed": str(seed), "calls": calls}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    sys.stdout.buffer.write(buf.getvalue())
    sys.stderr.write(json.dumps(meta) + "\n")


# ---------------------------------------------------------------------------------------
# ComfyUI's ModelSamplingDiscrete and schedulers (transcribed).


class ModelSamplingDiscrete:
    def __init__(self, linear_start=0.00085, linear_end=0.012, timesteps=1000):
        betas = torch.linspace(linear_start ** 0.5, linear_end ** 0.5, timesteps,
                               dtype=torch.float64) ** 2
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        self.sigmas = sigmas.float()
        self.log_sigmas = sigmas.log().float()

    @property
    def sigma_min(self):
        return self.sigmas[0]

    @property
    def sigma_max(self):
        return self.sigmas[-1]

    def timestep(self, sigma):
        log_sigma = sigma.log()
        dists = log_sigma - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape)

    def sigma(self, timestep):
        t = torch.clamp(timestep.float(), min=0, max=(len(self.sigmas) - 1))
        low_idx = t.floor().long()
        high_idx = t.ceil().long()
        w = t.frac()
        log_sigma = (1 - w) * self.log_sigmas[low_idx] + w * self.log_sigmas[high_idx]
        return log_sigma.exp()


def simple_scheduler(s, steps):
    sigs = []
    ss = len(s.sigmas) / steps
    for x in range(steps):
        sigs += [float(s.sigmas[-(1 + int(x * ss))])]
    sigs += [0.0]
    return torch.FloatTensor(sigs)


def ddim_scheduler(s, steps):
    x = 1
    if math.isclose(float(s.sigmas[x]), 0, abs_tol=0.00001):
        steps += 1
        sigs = []
    else:
        sigs = [0.0]
    ss = max(len(s.sigmas) // steps, 1)
    while x < len(s.sigmas):
        sigs += [float(s.sigmas[x])]
        x += ss
    return torch.FloatTensor(sigs[::-1])


def normal_scheduler(s, steps, sgm=False):
    start = s.timestep(s.sigma_max)
    end = s.timestep(s.sigma_min)
    append_zero = True
    if sgm:
        timesteps = torch.linspace(start, end, steps + 1)[:-1]
    else:
        if math.isclose(float(s.sigma(end)), 0, abs_tol=0.00001):
            steps += 1
            append_zero = False
        timesteps = torch.linspace(start, end, steps)
    sigs = [float(s.sigma(ts)) for ts in timesteps]
    if append_zero:
        sigs += [0.0]
    return torch.FloatTensor(sigs)


def beta_scheduler(s, steps, alpha=0.6, beta=0.6):
    total_timesteps = len(s.sigmas) - 1
    ts = 1 - np.linspace(0, 1, steps, endpoint=False)
    ts = np.rint(scipy.stats.beta.ppf(ts, alpha, beta) * total_timesteps)
    sigs, last_t = [], -1
    for t in ts:
        if t != last_t:
            sigs += [float(s.sigmas[int(t)])]
        last_t = t
    sigs += [0.0]
    return torch.FloatTensor(sigs)


def linear_quadratic_schedule(s, steps, threshold_noise=0.025, linear_steps=None):
    if steps == 1:
        sigma_schedule = [1.0, 0.0]
    else:
        if linear_steps is None:
            linear_steps = steps // 2
        linear_sigma_schedule = [i * threshold_noise / linear_steps for i in range(linear_steps)]
        threshold_noise_step_diff = linear_steps - threshold_noise * steps
        quadratic_steps = steps - linear_steps
        quadratic_coef = threshold_noise_step_diff / (linear_steps * quadratic_steps ** 2)
        linear_coef = threshold_noise / linear_steps - 2 * threshold_noise_step_diff / (quadratic_steps ** 2)
        const = quadratic_coef * (linear_steps ** 2)
        quadratic_sigma_schedule = [quadratic_coef * (i ** 2) + linear_coef * i + const
                                    for i in range(linear_steps, steps)]
        sigma_schedule = linear_sigma_schedule + quadratic_sigma_schedule + [1.0]
        sigma_schedule = [1.0 - x for x in sigma_schedule]
    return torch.FloatTensor(sigma_schedule) * s.sigma_max.cpu()


def kl_optimal_scheduler(n, sigma_min, sigma_max):
    adj_idxs = torch.arange(n, dtype=torch.float).div_(n - 1)
    sigmas = adj_idxs.new_zeros(n + 1)
    sigmas[:-1] = (adj_idxs * math.atan(sigma_min) + (1 - adj_idxs) * math.atan(sigma_max)).tan_()
    return sigmas


def make_schedulers(ksd):
    return {
        "simple": simple_scheduler,
        "sgm_uniform": lambda s, n: normal_scheduler(s, n, sgm=True),
        "karras": lambda s, n: ksd.get_sigmas_karras(n, float(s.sigma_min), float(s.sigma_max)),
        "exponential": lambda s, n: ksd.get_sigmas_exponential(n, float(s.sigma_min), float(s.sigma_max)),
        "ddim_uniform": ddim_scheduler,
        "beta": beta_scheduler,
        "normal": normal_scheduler,
        "linear_quadratic": linear_quadratic_schedule,
        "kl_optimal": lambda s, n: kl_optimal_scheduler(n, float(s.sigma_min), float(s.sigma_max)),
    }


DISCARD_PENULTIMATE = {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"}


def ksampler_sigmas(s, schedulers, scheduler, sampler, steps, denoise=1.0):
    """comfy.samplers.KSampler.set_steps / calculate_sigmas."""
    def calc(n):
        if sampler in DISCARD_PENULTIMATE:
            sig = schedulers[scheduler](s, n + 1)
            return torch.cat([sig[:-2], sig[-1:]])
        return schedulers[scheduler](s, n)
    if denoise is None or denoise > 0.9999:
        return calc(steps)
    if denoise <= 0.0:
        return torch.FloatTensor([])
    return calc(int(steps / denoise))[-(steps + 1):]


def make_schedule(out_dir, ksd):
    s = ModelSamplingDiscrete()
    scheds = make_schedulers(ksd)
    tensors = {"sigmas": s.sigmas.numpy(), "log_sigmas": s.log_sigmas.numpy()}
    ts = torch.tensor([0.0, 0.5, 1.25, 10.0, 123.456, 500.0, 998.75, 999.0, -3.0, 1200.0])
    tensors["sigma_at.t"] = ts.numpy()
    tensors["sigma_at.sigma"] = s.sigma(ts).numpy()
    qs = torch.tensor([0.0292, 0.03, 0.1, 1.0, 3.3, 7.77, 14.6, 14.6146, 20.0], dtype=torch.float32)
    tensors["timestep_of.sigma"] = qs.numpy()
    tensors["timestep_of.t"] = s.timestep(qs).float().numpy()
    for name, fn in scheds.items():
        for steps in (20, 7, 3):
            tensors[f"sched.{name}.{steps}"] = fn(s, steps).float().numpy()
    ks_cases = [("normal", "dpm_2", 20, 1.0), ("karras", "euler", 20, 0.6),
                ("simple", "uni_pc", 10, 0.5), ("exponential", "lms", 5, 0.0)]
    for sched, sampler, steps, denoise in ks_cases:
        tensors[f"ksampler.{sched}.{sampler}.{steps}.{denoise}"] = \
            ksampler_sigmas(s, scheds, sched, sampler, steps, denoise).float().numpy()
    save_file(tensors, os.path.join(out_dir, "schedule.safetensors"))


# ---------------------------------------------------------------------------------------
# Samplers

DENOISER_S = 0.7  # data std
DENOISER_MU = [0.5, -0.3, 0.2, 0.1]  # data mean per channel
SAMPLER_SEED = 1234
SAMPLER_SHAPE = [1, 4, 8, 8]  # NCHW


def gaussian_denoiser(x, sigma):
    """The exact denoiser of N(mu_c, s^2) data: (x s^2 + mu sigma^2) / (s^2 + sigma^2)."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1, 1, 1, 1)
    mu = torch.tensor(DENOISER_MU, dtype=torch.float32).reshape(1, -1, 1, 1)
    s2 = DENOISER_S ** 2
    return (x * s2 + mu * sigma ** 2) / (s2 + sigma ** 2)


def comfy_default_noise_sampler(x, seed):
    """ComfyUI's default_noise_sampler for a CPU latent."""
    generator = torch.Generator(device=x.device)
    generator.manual_seed(seed + 1)
    return lambda sigma, sigma_next: torch.randn(x.size(), dtype=x.dtype, layout=x.layout,
                                                 device=x.device, generator=generator)


class RecordingNoise:
    def __init__(self, inner):
        self.inner, self.noise, self.sigmas = inner, [], []

    def __call__(self, sigma, sigma_next):
        n = self.inner(sigma, sigma_next)
        self.noise.append(n.clone())
        self.sigmas.append([float(sigma), float(sigma_next)])
        return n


def comfy_sample_lcm(model, x, sigmas, noise_sampler):
    """ComfyUI's sample_lcm (s_noise = 1, EPS noise_scaling)."""
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        x = denoised
        if sigmas[i + 1] > 0:
            x = noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] + x
    return x


class SigmaConvert:
    """comfy/extra_samplers/uni_pc.py SigmaConvert."""

    def marginal_log_mean_coeff(self, sigma):
        return 0.5 * torch.log(1 / ((sigma * sigma) + 1))

    def marginal_alpha(self, t):
        return torch.exp(self.marginal_log_mean_coeff(t))

    def marginal_std(self, t):
        return torch.sqrt(1. - torch.exp(2. * self.marginal_log_mean_coeff(t)))

    def marginal_lambda(self, t):
        log_mean_coeff = self.marginal_log_mean_coeff(t)
        log_std = 0.5 * torch.log(1. - torch.exp(2. * log_mean_coeff))
        return log_mean_coeff - log_std


def comfy_sample_unipc(model, noise, sigmas, variant):
    """ComfyUI's sample_unipc (UniPC multistep, data prediction, bh1/bh2), transcribed."""
    ns = SigmaConvert()
    timesteps = sigmas.clone()
    if sigmas[-1] == 0:
        timesteps[-1] = 0.001

    def model_fn(x, t):
        sigma = t.reshape(-1, 1, 1, 1)
        inp = x * ((sigma ** 2 + 1.0) ** 0.5)
        eps = (inp - model(inp, t)) / sigma
        alpha_t, sigma_t = ns.marginal_alpha(t), ns.marginal_std(t)
        return (x - sigma_t.reshape(-1, 1, 1, 1) * eps) / alpha_t.reshape(-1, 1, 1, 1)

    def update(x, model_prev_list, t_prev_list, t, order, use_corrector=True):
        t_prev_0 = t_prev_list[-1]
        lambda_prev_0 = ns.marginal_lambda(t_prev_0)
        lambda_t = ns.marginal_lambda(t)
        model_prev_0 = model_prev_list[-1]
        sigma_prev_0, sigma_t = ns.marginal_std(t_prev_0), ns.marginal_std(t)
        alpha_t = torch.exp(ns.marginal_log_mean_coeff(t))
        h = lambda_t - lambda_prev_0
        rks, D1s = [], []
        for i in range(1, order):
            t_prev_i = t_prev_list[-(i + 1)]
            model_prev_i = model_prev_list[-(i + 1)]
            rk = ((ns.marginal_lambda(t_prev_i) - lambda_prev_0) / h)[0]
            rks.append(rk)
            D1s.append((model_prev_i - model_prev_0) / rk)
        rks.append(1.)
        rks = torch.tensor(rks)
        hh = -h[0]
        h_phi_1 = torch.expm1(hh)
        B_h = hh if variant == "bh1" else torch.expm1(hh)
        hh64 = hh.double()
        h_phi_k64 = torch.expm1(hh64) / hh64 - 1
        B_h64 = hh64 if variant == "bh1" else torch.expm1(hh64)
        factorial_i = 1
        R, b = [], []
        for i in range(1, order + 1):
            R.append(torch.pow(rks, i - 1))
            b.append(h_phi_k64 * factorial_i / B_h64)
            factorial_i *= (i + 1)
            h_phi_k64 = h_phi_k64 / hh64 - 1 / factorial_i
        R = torch.stack(R)
        b = torch.tensor(b, dtype=hh.dtype)
        if len(D1s) > 0:
            D1s = torch.stack(D1s, dim=1)
            rhos_p = torch.tensor([0.5]) if order == 2 else torch.linalg.solve(R[:-1, :-1], b[:-1])
        else:
            D1s = None
        if use_corrector:
            rhos_c = torch.tensor([0.5]) if order == 1 else torch.linalg.solve(R, b)
        x_t_ = (sigma_t / sigma_prev_0).reshape(-1, 1, 1, 1) * x - \
            (alpha_t * h_phi_1).reshape(-1, 1, 1, 1) * model_prev_0
        pred_res = torch.einsum('k,bkchw->bchw', rhos_p, D1s) if D1s is not None else 0
        x_t = x_t_ - (alpha_t * B_h).reshape(-1, 1, 1, 1) * pred_res
        model_t = None
        if use_corrector:
            model_t = model_fn(x_t, t)
            corr_res = torch.einsum('k,bkchw->bchw', rhos_c[:-1], D1s) if D1s is not None else 0
            D1_t = model_t - model_prev_0
            x_t = x_t_ - (alpha_t * B_h).reshape(-1, 1, 1, 1) * (corr_res + rhos_c[-1] * D1_t)
        return x_t, model_t

    x = noise / torch.sqrt(1.0 + timesteps[0] ** 2.0)
    order = min(3, len(timesteps) - 2)
    steps = len(timesteps) - 1
    for step_index in range(steps):
        if step_index == 0:
            vec_t = timesteps[0].expand((x.shape[0]))
            model_prev_list = [model_fn(x, vec_t)]
            t_prev_list = [vec_t]
        elif step_index < order:
            init_order = step_index
            vec_t = timesteps[init_order].expand(x.shape[0])
            x, model_x = update(x, model_prev_list, t_prev_list, vec_t, init_order, True)
            if model_x is None:
                model_x = model_fn(x, vec_t)
            model_prev_list.append(model_x)
            t_prev_list.append(vec_t)
        else:
            extra_final_step = 1 if step_index == steps - 1 else 0
            for step in range(step_index, step_index + 1 + extra_final_step):
                vec_t = timesteps[step].expand(x.shape[0])
                step_order = min(order, steps + 1 - step)
                x, model_x = update(x, model_prev_list, t_prev_list, vec_t, step_order,
                                    use_corrector=step != steps)
                for i in range(order - 1):
                    t_prev_list[i] = t_prev_list[i + 1]
                    model_prev_list[i] = model_prev_list[i + 1]
                t_prev_list[-1] = vec_t
                if step < steps:
                    if model_x is None:
                        model_x = model_fn(x, vec_t)
                    model_prev_list[-1] = model_x
    return x / ns.marginal_alpha(timesteps[-1])


def run_sampler(ksd, name, x, sigmas):
    """Returns (final x, recorded noise or None)."""
    model = gaussian_denoiser
    ancestral = comfy_default_noise_sampler(x, SAMPLER_SEED)
    if name in ("euler", "ddim"):
        return ksd.sample_euler(model, x, sigmas, disable=True), None
    if name == "heun":
        return ksd.sample_heun(model, x, sigmas, disable=True), None
    if name == "dpm_2":
        return ksd.sample_dpm_2(model, x, sigmas, disable=True), None
    if name == "lms":
        # ComfyUI's lms ends with x = denoised when the last sigma is 0, where k-diffusion
        # 0.1.1 takes one more multistep step: run k-diffusion up to the last non-zero
        # sigma, then do ComfyUI's final step.
        assert float(sigmas[-1]) == 0
        x = ksd.sample_lms(model, x, sigmas[:-1], disable=True)
        return model(x, sigmas[-2] * x.new_ones([x.shape[0]])), None
    if name == "dpmpp_2m":
        return ksd.sample_dpmpp_2m(model, x, sigmas, disable=True), None
    if name == "euler_ancestral":
        return ksd.sample_euler_ancestral(model, x, sigmas, disable=True, noise_sampler=ancestral), None
    if name == "dpm_2_ancestral":
        return ksd.sample_dpm_2_ancestral(model, x, sigmas, disable=True, noise_sampler=ancestral), None
    if name == "dpmpp_2s_ancestral":
        return ksd.sample_dpmpp_2s_ancestral(model, x, sigmas, disable=True,
                                             noise_sampler=ancestral), None
    if name == "lcm":
        return comfy_sample_lcm(model, x, sigmas, ancestral), None
    if name in ("uni_pc", "uni_pc_bh2"):
        return comfy_sample_unipc(model, x, sigmas, "bh1" if name == "uni_pc" else "bh2"), None
    sigma_min, sigma_max = sigmas[sigmas > 0].min(), sigmas.max()
    brownian = RecordingNoise(ksd.BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed=SAMPLER_SEED))
    if name == "dpmpp_sde":
        out = ksd.sample_dpmpp_sde(model, x, sigmas, disable=True, noise_sampler=brownian)
    elif name == "dpmpp_2m_sde":
        out = ksd.sample_dpmpp_2m_sde(model, x, sigmas, disable=True, noise_sampler=brownian)
    elif name == "dpmpp_2m_sde_heun":
        out = ksd.sample_dpmpp_2m_sde(model, x, sigmas, disable=True, noise_sampler=brownian,
                                      solver_type="heun")
    else:
        raise ValueError(name)
    return out, brownian


SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms",
            "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_2m_sde_heun",
            "lcm", "ddim", "uni_pc", "uni_pc_bh2"]
SAMPLER_SCHEDULERS = ["normal", "karras"]
SAMPLER_STEPS = 20


def make_samplers(out_dir, ksd):
    s = ModelSamplingDiscrete()
    scheds = make_schedulers(ksd)
    noise = comfy_prepare_noise(SAMPLER_SHAPE, SAMPLER_SEED)
    tensors, meta = {"initial_noise": noise.numpy()}, {}
    for sched in SAMPLER_SCHEDULERS:
        for name in SAMPLERS:
            sigmas = ksampler_sigmas(s, scheds, sched, name, SAMPLER_STEPS)
            # KSAMPLER's noise_scaling with max_denoise (sigmas[0] is sigma_max here).
            x = noise * torch.sqrt(1.0 + sigmas[0] ** 2.0)
            with torch.no_grad():
                out, rec = run_sampler(ksd, name, x.clone(), sigmas.clone())
            key = f"{name}.{sched}"
            tensors[f"{key}.sigmas"] = sigmas.numpy()
            tensors[f"{key}.x0"] = x.numpy()
            tensors[f"{key}.out"] = out.float().numpy()
            if rec is not None:
                tensors[f"{key}.noise"] = torch.stack(rec.noise).float().numpy()
                tensors[f"{key}.noise_sigmas"] = np.array(rec.sigmas, dtype=np.float32)
            meta[key] = {"sampler": name, "scheduler": sched}
    info = {"seed": SAMPLER_SEED, "shape_nchw": SAMPLER_SHAPE, "denoiser_s": DENOISER_S,
            "denoiser_mu": DENOISER_MU, "runs": meta}
    save_file(tensors, os.path.join(out_dir, "samplers.safetensors"), metadata={"info": json.dumps(info)})


def main():
    if "--scalar-rng-child" in sys.argv:
        scalar_rng_child()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "sampling"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    ksd = load_k_diffusion_sampling()
    make_rng(args.out, ksd)
    make_schedule(args.out, ksd)
    make_samplers(args.out, ksd)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
