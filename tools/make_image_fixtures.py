#!/usr/bin/env python3
"""Writes the small image files and references that the codec and image-node tests read.

    python3 tools/make_image_fixtures.py          (writes into tests/data/images/)
    python3 tools/make_image_fixtures.py --only-bislerp   (only the bislerp_* files)

Decoding (tests/test_image_codec.cpp): PNG/JPEG/WebP files written by Pillow, each with
the pixels Pillow decodes from it (ImageOps.exif_transpose applied, as ComfyUI's
LoadImage does) in <file>.rgb / <file>.rgba, listed in manifest.json with the tolerance
the test allows (0 for lossless formats; JPEG and lossy WebP decoders may differ by an
IDCT/upsampling rounding between libjpeg-turbo/libwebp versions):

  rgb.png rgba.png grey.png grey_alpha.png palette_trns.png bits1.png   Pillow modes
  rgb16.png grey16.png    16-bit PNGs (Pillow cannot write 16-bit RGB: written here with
                          zlib); expected = the high byte of each sample, as Pillow
  photo.jpg grey.jpg progressive.jpg cmyk.jpg exif_orientation{2..8}.jpg (EXIF
                          Orientation tag 2..8 on a 24x16 image)
  lossless.webp lossy.webp

Refused files (expected messages are in the test): truncated PNG/JPEG/WebP, a PNG with a
broken IDAT CRC, bytes that are no image, and "bombs" whose headers claim 20000x20000
(PNG), 60000x60000 (JPEG) and 10000x10000 (WebP) pixels with almost no data behind them.

Image nodes (tests/workflow/test_image_nodes.cpp):
  scale_src.f32           a [1, 6, 10, 3] float image (little-endian f32)
  scale_<method>_<h>x<w>[_center].f32   ComfyUI's ImageScale on it: torch.nn.functional.
                          interpolate for nearest-exact/bilinear/area/bicubic, Pillow
                          LANCZOS on the uint8 image for lanczos (comfy.utils.lanczos),
                          crop "center" as comfy.utils.common_upscale
  latent_src.f32 / latent_up_<method>.f32   a [1, 4, 5, 7] NCHW latent and LatentUpscale's
                          interpolate to 9x12 (stored NHWC like darkroom's latents)
  bislerp_src.f32 / bislerp_<h>x<w>[_center].f32   a [2, 10, 13, 4] NHWC latent and
                          comfy.utils.bislerp of it (transcribed here) to 9x12, 14x8 and,
                          center-cropped, 8x8
  preview_src.f32 / preview.rgb            a [1, 6, 9, 4] NHWC model-space latent and the
                          uint8 RGB that ComfyUI's Latent2RGBPreviewer makes of it (SD1.5
                          factors) before resizing

  tiled_z.f32 / tiled_full.f32 / tiled_t64.f32   a [1, 36, 20, 4] NHWC latent, its
                          decode by the tiny test VAE (tests/data/models/sd15_tiny/diffusers/
                          vae, diffusers AutoencoderKL) whole, and ComfyUI's VAEDecodeTiled
                          with tile_size 64, overlap 64 (→ 16, latent tiles 32, overlap 8):
                          three tilings averaged with feathered blending, restated from
                          comfy/sd.py decode_tiled_ and comfy.utils.tiled_scale_multidim;
                          both as [0, 1] NHWC images

Needs Pillow, numpy, torch and diffusers (pip). Everything is seeded: the bytes are the same each run
for a given Pillow/libjpeg/libwebp.
"""
import io
import json
import pathlib
import struct
import sys
import zlib

import numpy as np
import torch
from PIL import Image, ImageOps

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "images"
RNG = np.random.default_rng(20260126)


def smooth(h, w, c):
    """A photo-like image: gradients plus a little noise (compresses realistically)."""
    y, x = np.mgrid[0:h, 0:w]
    chans = []
    for i in range(c):
        v = 128 + 90 * np.sin(x / (3.0 + i) + i) * np.cos(y / (4.0 + i))
        v += RNG.normal(0, 6, size=(h, w))
        chans.append(v)
    return np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)


manifest = []


def expect(name, img, tol):
    """Records what Pillow decodes `name` to (after exif_transpose, as LoadImage)."""
    im = Image.open(OUT / name)
    im = ImageOps.exif_transpose(im)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if im.mode in ("I;16", "I;16B", "I"):  # 16-bit grey: the high byte, as our decoder
        arr = np.asarray(im).astype(np.uint32) >> 8
        arr = np.repeat(arr[..., None].astype(np.uint8), 3, axis=-1)
    else:
        arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    if img is not None:
        arr = img
    ext = "rgba" if arr.shape[-1] == 4 else "rgb"
    (OUT / f"{name}.{ext}").write_bytes(arr.tobytes())
    manifest.append({"file": name, "width": int(arr.shape[1]), "height": int(arr.shape[0]),
                     "channels": int(arr.shape[2]), "has_alpha": bool(has_alpha),
                     "expected": f"{name}.{ext}", "tolerance": tol})


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width, height, bit_depth, color_type, rows: bytes):
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def write_pngs():
    rgb = smooth(7, 13, 3)
    Image.fromarray(rgb, "RGB").save(OUT / "rgb.png")
    expect("rgb.png", None, 0)
    rgba = np.concatenate([smooth(9, 11, 3), RNG.integers(0, 256, (9, 11, 1), dtype=np.uint8)], -1)
    rgba[0, :, 3] = 255  # some fully opaque and fully transparent pixels
    rgba[1, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(OUT / "rgba.png")
    expect("rgba.png", None, 0)
    Image.fromarray(smooth(5, 6, 1)[..., 0], "L").save(OUT / "grey.png")
    expect("grey.png", None, 0)
    la = np.concatenate([smooth(5, 6, 1), RNG.integers(0, 256, (5, 6, 1), dtype=np.uint8)], -1)
    Image.fromarray(la, "LA").save(OUT / "grey_alpha.png")
    expect("grey_alpha.png", None, 0)
    pal = Image.fromarray(smooth(6, 8, 3), "RGB").quantize(colors=7)
    pal.info["transparency"] = 2
    pal.save(OUT / "palette_trns.png", transparency=2)
    expect("palette_trns.png", None, 0)
    bits = Image.fromarray(RNG.integers(0, 2, (5, 9), dtype=np.uint8) * 255, "L").convert("1")
    bits.save(OUT / "bits1.png")
    expect("bits1.png", None, 0)

    # 16-bit RGB and grey, by hand (filter byte 0 before each row, big-endian samples).
    v16 = RNG.integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    rows = b"".join(b"\x00" + v16[y].astype(">u2").tobytes() for y in range(4))
    (OUT / "rgb16.png").write_bytes(raw_png(5, 4, 16, 2, rows))
    expect("rgb16.png", (v16 >> 8).astype(np.uint8), 0)
    g16 = RNG.integers(0, 65536, (3, 6), dtype=np.uint16)
    rows = b"".join(b"\x00" + g16[y].astype(">u2").tobytes() for y in range(3))
    (OUT / "grey16.png").write_bytes(raw_png(6, 3, 16, 0, rows))
    expect("grey16.png", np.repeat((g16 >> 8).astype(np.uint8)[..., None], 3, -1), 0)


def exif_with_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def write_jpegs():
    photo = smooth(24, 32, 3)
    Image.fromarray(photo, "RGB").save(OUT / "photo.jpg", quality=90)
    expect("photo.jpg", None, 2)
    Image.fromarray(smooth(16, 20, 1)[..., 0], "L").save(OUT / "grey.jpg", quality=90)
    expect("grey.jpg", None, 2)
    Image.fromarray(smooth(17, 23, 3), "RGB").save(OUT / "progressive.jpg", quality=85,
                                                   progressive=True)
    expect("progressive.jpg", None, 2)
    Image.fromarray(smooth(8, 8, 4), "CMYK").save(OUT / "cmyk.jpg", quality=95)
    expect("cmyk.jpg", None, 3)
    # Non-square so that a wrong rotation cannot pass.
    src = smooth(16, 24, 3)
    for orientation in range(2, 9):
        name = f"exif_orientation{orientation}.jpg"
        Image.fromarray(src, "RGB").save(OUT / name, quality=92,
                                         exif=exif_with_orientation(orientation))
        expect(name, None, 2)


def write_webps():
    rgba = np.concatenate([smooth(10, 12, 3), RNG.integers(0, 256, (10, 12, 1), dtype=np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(OUT / "lossless.webp", lossless=True)
    expect("lossless.webp", None, 0)  # the encoder zeroes RGB under alpha 0
    Image.fromarray(smooth(16, 16, 3), "RGB").save(OUT / "lossy.webp", quality=80)
    expect("lossy.webp", None, 3)


def write_refused():
    png = (OUT / "rgb.png").read_bytes()
    (OUT / "bad_truncated.png").write_bytes(png[: len(png) // 2])
    # Flip one byte of IDAT's CRC: the data inflates but the check fails.
    at = png.index(b"IDAT")
    length = struct.unpack(">I", png[at - 4:at])[0]
    i = at + 4 + length
    (OUT / "bad_crc.png").write_bytes(png[:i] + bytes([png[i] ^ 0x55]) + png[i + 1:])
    jpg = (OUT / "photo.jpg").read_bytes()
    (OUT / "bad_truncated.jpg").write_bytes(jpg[: len(jpg) * 2 // 3])
    webp = (OUT / "lossy.webp").read_bytes()
    (OUT / "bad_truncated.webp").write_bytes(webp[: len(webp) // 2])
    (OUT / "bad_not_image.png").write_bytes(b"this is not an image at all\n")

    # Bombs: valid headers that claim huge images and nothing (or too little) behind them.
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    (OUT / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
                                   png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) +
                                   png_chunk(b"IEND", b""))
    # JPEG: patch the SOF0 frame header's height and width of photo.jpg to 60000.
    j = bytearray(jpg)
    sof = j.index(b"\xff\xc0")
    struct.pack_into(">HH", j, sof + 5, 60000, 60000)
    (OUT / "bomb.jpg").write_bytes(bytes(j))
    # WebP lossless: VP8L header = 0x2f, then 14 bits width-1, 14 bits height-1, ...
    w = bytearray((OUT / "lossless.webp").read_bytes())
    at = w.index(b"VP8L") + 8
    assert w[at] == 0x2F
    bits = struct.unpack_from("<I", w, at + 1)[0]
    bits = (bits & ~((1 << 28) - 1)) | (9999) | (9999 << 14)
    struct.pack_into("<I", w, at + 1, bits)
    (OUT / "bomb.webp").write_bytes(bytes(w))


def f32(name, arr):
    (OUT / name).write_bytes(np.ascontiguousarray(arr, dtype="<f4").tobytes())


def common_upscale(samples, width, height, method, crop):
    """comfy.utils.common_upscale, restated: samples [B, C, H, W]."""
    if crop == "center":
        old_w, old_h = samples.shape[-1], samples.shape[-2]
        old_aspect, new_aspect = old_w / old_h, width / height
        x = y = 0
        if old_aspect > new_aspect:
            x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
        elif old_aspect < new_aspect:
            y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
        samples = samples.narrow(-2, y, old_h - y * 2).narrow(-1, x, old_w - x * 2)
    if method == "lanczos":
        out = []
        for image in samples:
            u8 = np.clip(255.0 * image.movedim(0, -1).numpy(), 0, 255).astype(np.uint8)
            im = Image.fromarray(u8).resize((width, height), resample=Image.Resampling.LANCZOS)
            out.append(torch.from_numpy(np.array(im).astype(np.float32) / 255.0).movedim(-1, 0))
        return torch.stack(out)
    return torch.nn.functional.interpolate(samples, size=(height, width), mode=method)


def write_scale():
    img = torch.from_numpy(RNG.random((1, 6, 10, 3), dtype=np.float32))
    f32("scale_src.f32", img.numpy())
    nchw = img.movedim(-1, 1)
    cases = []
    for method in ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]:
        for (h, w) in [(9, 15), (4, 7), (3, 23)]:
            cases.append((method, h, w, "disabled"))
        cases.append((method, 5, 5, "center"))
        cases.append((method, 8, 4, "center"))
    for method, h, w, crop in cases:
        out = common_upscale(nchw, w, h, method, crop).movedim(1, -1)
        suffix = "_center" if crop == "center" else ""
        f32(f"scale_{method}_{h}x{w}{suffix}.f32", out.numpy())

    lat = torch.from_numpy(RNG.normal(size=(1, 4, 5, 7)).astype(np.float32))
    f32("latent_src.f32", lat.movedim(1, -1).numpy())
    for method in ["nearest-exact", "bilinear", "area", "bicubic"]:
        out = torch.nn.functional.interpolate(lat, size=(9, 12), mode=method)
        f32(f"latent_up_{method}.f32", out.movedim(1, -1).numpy())


def bislerp(samples, width, height):
    """comfy.utils.bislerp, transcribed: samples [N, C, H, W] float32."""
    def slerp(b1, b2, r):
        c = b1.shape[-1]
        b1_norms = torch.norm(b1, dim=-1, keepdim=True)
        b2_norms = torch.norm(b2, dim=-1, keepdim=True)
        b1_normalized = b1 / b1_norms
        b2_normalized = b2 / b2_norms
        b1_normalized[b1_norms.expand(-1, c) == 0.0] = 0.0
        b2_normalized[b2_norms.expand(-1, c) == 0.0] = 0.0
        dot = (b1_normalized * b2_normalized).sum(1)
        omega = torch.acos(dot)
        so = torch.sin(omega)
        res = (torch.sin((1.0 - r.squeeze(1)) * omega) / so).unsqueeze(1) * b1_normalized + \
            (torch.sin(r.squeeze(1) * omega) / so).unsqueeze(1) * b2_normalized
        res *= (b1_norms * (1.0 - r) + b2_norms * r).expand(-1, c)
        res[dot > 1 - 1e-5] = b1[dot > 1 - 1e-5]
        res[dot < 1e-5 - 1] = (b1 * (1.0 - r) + b2 * r)[dot < 1e-5 - 1]
        return res

    def generate_bilinear_data(length_old, length_new):
        coords_1 = torch.arange(length_old, dtype=torch.float32).reshape((1, 1, 1, -1))
        coords_1 = torch.nn.functional.interpolate(coords_1, size=(1, length_new), mode="bilinear")
        ratios = coords_1 - coords_1.floor()
        coords_1 = coords_1.to(torch.int64)
        coords_2 = torch.arange(length_old, dtype=torch.float32).reshape((1, 1, 1, -1)) + 1
        coords_2[:, :, :, -1] -= 1
        coords_2 = torch.nn.functional.interpolate(coords_2, size=(1, length_new), mode="bilinear")
        coords_2 = coords_2.to(torch.int64)
        return ratios, coords_1, coords_2

    samples = samples.float()
    n, c, h, w = samples.shape
    h_new, w_new = (height, width)
    ratios, coords_1, coords_2 = generate_bilinear_data(w, w_new)
    coords_1 = coords_1.expand((n, c, h, -1))
    coords_2 = coords_2.expand((n, c, h, -1))
    ratios = ratios.expand((n, 1, h, -1))
    pass_1 = samples.gather(-1, coords_1).movedim(1, -1).reshape((-1, c))
    pass_2 = samples.gather(-1, coords_2).movedim(1, -1).reshape((-1, c))
    ratios = ratios.movedim(1, -1).reshape((-1, 1))
    result = slerp(pass_1, pass_2, ratios)
    result = result.reshape(n, h, w_new, c).movedim(-1, 1)
    ratios, coords_1, coords_2 = generate_bilinear_data(h, h_new)
    coords_1 = coords_1.reshape((1, 1, -1, 1)).expand((n, c, -1, w_new))
    coords_2 = coords_2.reshape((1, 1, -1, 1)).expand((n, c, -1, w_new))
    ratios = ratios.reshape((1, 1, -1, 1)).expand((n, 1, -1, w_new))
    pass_1 = result.gather(-2, coords_1).movedim(1, -1).reshape((-1, c))
    pass_2 = result.gather(-2, coords_2).movedim(1, -1).reshape((-1, c))
    ratios = ratios.movedim(1, -1).reshape((-1, 1))
    result = slerp(pass_1, pass_2, ratios)
    return result.reshape(n, h_new, w_new, c).movedim(-1, 1)


def write_bislerp():
    """LatentUpscale "bislerp": a [2, 4, 10, 13] NCHW latent (its own seed, so this case can
    be written alone) with the slerp edge cases planted: a zero vector, two equal
    neighbours (dot 1: the first vector is kept) and two opposite ones (a plain lerp)."""
    rng = np.random.default_rng(20261126)
    lat = torch.from_numpy(rng.normal(size=(2, 4, 10, 13)).astype(np.float32))
    lat[0, :, 0, 0] = 0.0
    lat[0, :, 3, 5] = lat[0, :, 3, 4]
    lat[1, :, 6, 8] = -lat[1, :, 6, 7]
    lat[1, :, 2, :] = lat[1, :, 1, :]
    f32("bislerp_src.f32", lat.movedim(1, -1).numpy())
    # (latent h, w, crop): what LatentUpscale asks common_upscale for.
    for (h, w, crop) in [(9, 12, "disabled"), (14, 8, "disabled"), (8, 8, "center")]:
        s = lat
        if crop == "center":  # comfy.utils.common_upscale's crop
            old_w, old_h = s.shape[-1], s.shape[-2]
            old_aspect, new_aspect = old_w / old_h, w / h
            x = y = 0
            if old_aspect > new_aspect:
                x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
            elif old_aspect < new_aspect:
                y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
            s = s.narrow(-2, y, old_h - y * 2).narrow(-1, x, old_w - x * 2)
        out = bislerp(s, w, h)
        suffix = "_center" if crop == "center" else ""
        f32(f"bislerp_{h}x{w}{suffix}.f32", out.movedim(1, -1).numpy())


def write_preview():
    # comfy/latent_formats.py SD15.latent_rgb_factors (rows: latent channels; cols: RGB)
    factors = torch.tensor([[0.3512, 0.2297, 0.3227],
                            [0.3250, 0.4974, 0.2350],
                            [-0.2829, 0.1762, 0.2721],
                            [-0.2120, -0.2616, -0.7177]])
    x0 = torch.from_numpy(RNG.normal(scale=1.2, size=(1, 6, 9, 4)).astype(np.float32))
    f32("preview_src.f32", x0.numpy())
    # latent_preview.Latent2RGBPreviewer: linear(x0[0] channels-last, factors^T), then
    # preview_to_image: ((x + 1) / 2).clamp(0, 1) * 255 → uint8 (truncation).
    rgb = torch.nn.functional.linear(x0[0], factors.transpose(0, 1))
    u8 = (((rgb + 1.0) / 2.0).clamp(0, 1).mul(0xFF)).to(torch.uint8)
    (OUT / "preview.rgb").write_bytes(u8.numpy().tobytes())


def tiled_decode(decode, z, tile_y, tile_x, overlap, scale):
    """One tiling: z [1, C, h, w] → [1, 3, h·scale, w·scale] raw decoder output."""
    h, w = z.shape[2], z.shape[3]
    if h <= tile_y and w <= tile_x:
        return decode(z)

    def starts(n, tile):
        if n <= tile:
            return [0]
        return [max(0, min(n - overlap, p)) for p in range(0, n - overlap, tile - overlap)]

    acc = torch.zeros(1, 3, h * scale, w * scale)
    div = torch.zeros_like(acc)
    feather = overlap * scale
    for y in starts(h, tile_y):
        for x in starts(w, tile_x):
            th, tw = min(tile_y, h - y), min(tile_x, w - x)
            out = decode(z[:, :, y:y + th, x:x + tw])
            weight = torch.ones_like(out)
            for dim in (2, 3):
                n = weight.shape[dim]
                if feather >= n:
                    continue
                for t in range(feather):
                    a = (t + 1) / feather
                    weight.narrow(dim, t, 1).mul_(a)
                    weight.narrow(dim, n - 1 - t, 1).mul_(a)
            acc[:, :, y * scale:y * scale + out.shape[2], x * scale:x * scale + out.shape[3]] += out * weight
            div[:, :, y * scale:y * scale + out.shape[2], x * scale:x * scale + out.shape[3]] += weight
    return acc / div


def write_tiled():
    from diffusers import AutoencoderKL
    vae_dir = OUT.parent / "models" / "sd15_tiny" / "diffusers" / "vae"
    vae = AutoencoderKL.from_pretrained(vae_dir).eval()
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(1, 4, 36, 20, generator=gen)
    f32("tiled_z.f32", z.permute(0, 2, 3, 1).numpy())
    with torch.no_grad():
        def decode(t):
            return vae.decode(t).sample
        full = ((decode(z) + 1) / 2).clamp(0, 1)
        f32("tiled_full.f32", full.permute(0, 2, 3, 1).numpy())
        # VAEDecodeTiled(tile_size=64, overlap=64): overlap > tile_size / 4 → 16; in latent
        # pixels (÷ scale 2): tile 32, overlap 8.
        tx = ty = 64 // scale
        ov = 16 // scale
        total = (tiled_decode(decode, z, ty * 2, tx // 2, ov, scale) +
                 tiled_decode(decode, z, ty // 2, tx * 2, ov, scale) +
                 tiled_decode(decode, z, ty, tx, ov, scale))
        tiled = ((total / 3.0 + 1) / 2).clamp(0, 1)
        f32("tiled_t64.f32", tiled.permute(0, 2, 3, 1).numpy())


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    # --only-bislerp: write just the bislerp fixtures (the others depend on the installed
    # Pillow/libjpeg/diffusers and stay as committed).
    if "--only-bislerp" in sys.argv[1:]:
        write_bislerp()
        return
    write_pngs()
    write_jpegs()
    write_webps()
    write_refused()
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_scale()
    write_preview()
    write_tiled()
    write_bislerp()


if __name__ == "__main__":
    main()
