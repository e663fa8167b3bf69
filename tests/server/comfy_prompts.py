"""ComfyUI's default text-to-image workflow in API format (the graph the frontend loads
first), used by the validation and queue tests. Node ids as in ComfyUI's default graph."""
import copy
import os

CKPT = "tiny.safetensors"

DEFAULT_PROMPT = {
    "3": {"class_type": "KSampler",
          "inputs": {"seed": 156680208700286, "steps": 2, "cfg": 8.0, "sampler_name": "euler",
                     "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                     "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode",
          "inputs": {"text": "a photo of a cat", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}


def default_prompt():
    return copy.deepcopy(DEFAULT_PROMPT)


def write_fake_checkpoint(base_dir):
    """Writes base_dir/models/checkpoints/CKPT as a few bytes that are no model (validation
    needs only the name; a run fails in the loader); returns its path."""
    path = os.path.join(str(base_dir), "models", "checkpoints", CKPT)
    with open(path, "wb") as f:
        f.write(b"not a real model")
    return path
