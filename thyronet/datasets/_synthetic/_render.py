"""Rendering one section of the synthetic nodules as B-mode-like images.

:func:`render_view` draws, for a batch of patients, the echo map of the tissue
layers and the nodule, a speckle envelope filtered by the scanner's point-spread
function, the calcifications, then the scanner's display chain; it also returns the
nodule masks and ROI boxes. Each patient's noise comes from its own generator, so
images do not depend on the batch size.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from thyronet.datasets._synthetic._geometry import MAX_OUTGROWTH, outline_radius
from thyronet.schema import VIEW_COLUMNS


def _smooth_noise(rngs, shape_lo: int, size: int) -> np.ndarray:
    """Smooth random fields with unit variance, one per generator, (B, size, size) float32.

    A ``shape_lo x shape_lo`` grid of Gaussian values interpolated with Gaussian
    radial weights (separable, so it is two small matrix products per image).
    """
    lo = np.stack([r.standard_normal((shape_lo + 2, shape_lo + 2)) for r in rngs])
    centres = (np.arange(shape_lo + 2) - 0.5) * size / shape_lo
    pix = np.arange(size) + 0.5
    w = np.exp(-0.5 * ((pix[:, None] - centres[None, :]) / (0.7 * size / shape_lo)) ** 2)
    w /= np.sqrt((w**2).sum(axis=1, keepdims=True))  # unit variance at every pixel
    return np.einsum("yi,bij,xj->byx", w, lo, w, optimize=True).astype(np.float32)


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def _col(a) -> np.ndarray:
    """Per-patient values as a (B, 1, 1) float32 column."""
    return np.asarray(a, dtype=np.float32)[:, None, None]


def render_view(view, g, idx, size, seeds, looks):
    """Render one view for the patients ``idx``: images (B,S,S) float32, masks, ROI boxes."""
    k = VIEW_COLUMNS.index(view)
    rngs = [
        np.random.default_rng(np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, k)))
        for s in seeds
    ]
    geo = _frame_geometry(view, g, idx, size)
    echo_map = _echo_map(view, g, idx, geo, rngs, size)
    env, psf = _speckle(echo_map, looks, geo["ppm"], size, rngs)
    env = _calcifications(view, g, idx, geo, env, psf, size)
    img = _display(env, geo, looks, size)
    return list(img), list(geo["mask"]), _roi_boxes(geo["mask"], size)


def _frame_geometry(view, g, idx, size) -> dict:
    """Pixel grid in mm, nodule centre, polar coordinates, outline, soft inside and mask."""
    fov = g["fov"][idx]
    ppm = size / fov  # pixels per mm
    ax, ay = (a[idx] for a in g["axes"][view])
    # nodule centre in mm within the frame
    margin = 0.04 * fov
    room_x = np.maximum(fov / 2 - MAX_OUTGROWTH * ax - margin, 0.0)
    cx = fov / 2 + g[f"{view}_offset_x"][idx] * room_x
    cy = g["center_y"][idx]

    coords = (np.arange(size, dtype=np.float32) + 0.5)[None, :]
    xmm = coords / _col(ppm)[:, 0]  # (B, S)
    dx = (xmm - _col(cx)[:, 0])[:, None, :]  # (B, 1, S)
    ymm = coords / _col(ppm)[:, 0]  # (B, S)
    dy = (ymm - _col(cy)[:, 0])[:, :, None]  # (B, S, 1)
    theta = np.arctan2(dy, dx)
    rho = np.hypot(dx, dy)
    r_out = outline_radius(theta, _col(ax), _col(ay), g, view, idx[:, None, None])
    r_out = r_out.astype(np.float32)
    # edge width in mm: margin blur, never sharper than ~0.6 pixel
    edge = _col(np.maximum(0.03 + 0.22 * g["blur"][idx], 0.6 / ppm))
    return {
        "fov": fov,
        "ppm": ppm,
        "ax": ax,
        "ay": ay,
        "cx": cx,
        "cy": cy,
        "rho": rho,
        "r_out": r_out,
        "inside": _sigmoid((r_out - rho) / edge),
        "mask": rho <= r_out,
        "ygrid": ymm[:, :, None],  # (B, S, 1) depth in mm
        "xgrid": xmm[:, None, :],  # (B, 1, S)
        "px": _col(1.0 / ppm),  # one pixel in mm
    }


def _echo_map(view, g, idx, geo, rngs, size) -> np.ndarray:
    """Mean echo of every pixel: tissue layers, capsules, the nodule and its halo.

    In a transverse view the medial capsule also flattens the nodule: ``geo["inside"]``
    and ``geo["mask"]`` are updated.
    """
    xgrid, ygrid, px, cx, cy = geo["xgrid"], geo["ygrid"], geo["px"], geo["cx"], geo["cy"]
    tex = _smooth_noise(rngs, 6, size)
    echo_map = 1.0 + 0.12 * tex
    tilt = _col(g[f"{view}_tilt"][idx])
    cap_line_y = _col(g["capsule_y"][idx]) + tilt * (xgrid - _col(cx))
    above = _sigmoid((cap_line_y - ygrid) / px)
    phase = _col(np.array([r.uniform(0, 2 * np.pi) for r in rngs]))
    stria = 0.1 * (1 + 0.5 * np.sin(2 * np.pi * ygrid / 0.55 + phase + 1.5 * tex))
    echo_map = echo_map * (1 - above) + stria * above
    post_y = _col(cy + geo["ay"] + g["posterior_gap"][idx])
    below = _sigmoid((ygrid - post_y) / px)
    echo_map = echo_map * (1 - below) + 0.15 * (1 + 0.2 * tex) * below
    line_w = np.maximum(0.11, 0.8 * px)
    if view == "transverse":
        xb = _col(cx - geo["ax"] - g["medial_gap"][idx]) + 0.08 * (ygrid - _col(cy)) ** 2 / _col(
            geo["ay"]
        )
        beyond = _sigmoid((xb - xgrid) / px)
        echo_map = echo_map * (1 - beyond) + 0.06 * (1 + 0.2 * tex) * beyond
        echo_map = echo_map + 2.5 * np.exp(-(((xgrid - xb) / line_w) ** 2))
        geo["inside"] = geo["inside"] * _sigmoid((xgrid - xb) / px)
        geo["mask"] = geo["mask"] & (xgrid > xb)
    inside = geo["inside"]
    # nodule, halo for (near) iso-echoic ones
    nod_echo = _col(g["echo"][idx] ** 2) * (1 + 0.15 * _smooth_noise(rngs, 5, size))
    halo = np.exp(-(((geo["rho"] - geo["r_out"]) / np.maximum(0.12, 1.2 * px)) ** 2))
    halo_amp = _col(np.clip((g["echo"][idx] - 0.7) * 2.0, 0.0, 0.7))
    echo_map = echo_map * (1 - halo_amp * halo)
    echo_map = echo_map * (1 - inside) + nod_echo * inside
    # capsule lines (anterior: interrupted where broken or crossed by the nodule)
    cap_line = np.exp(-(((ygrid - cap_line_y) / line_w) ** 2))
    broken = _col(g["capsule_break"][idx]) * (
        np.abs(xgrid - _col(cx)) < _col(g[f"{view}_break_half"][idx] * geo["ax"])
    )
    echo_map = echo_map + 3.0 * cap_line * (1 - broken) * (1 - inside)
    echo_map = echo_map + 1.2 * np.exp(-(((ygrid - post_y) / line_w) ** 2))
    return np.maximum(echo_map, 0.02).astype(np.float32)


def _speckle(echo_map, looks, ppm, size, rngs):
    """PSF-filtered complex scatterer field -> Rayleigh envelope; and the PSF in pixels."""
    noise = np.stack([r.standard_normal((2, size, size), dtype=np.float32) for r in rngs])
    field = (noise[:, 0] + 1j * noise[:, 1]).astype(np.complex64) * np.sqrt(echo_map / 2)
    sx = np.array([lk.lateral_psf_mm for lk in looks]) * ppm
    sy = np.array([lk.axial_psf_mm for lk in looks]) * ppm
    f = sfft.fftfreq(size).astype(np.float32)
    transfer = np.exp(
        -2 * np.pi**2 * (_col(sy**2) * f[None, :, None] ** 2 + _col(sx**2) * f[None, None, :] ** 2)
    )
    norm = np.sqrt(np.mean(transfer**2, axis=(1, 2), keepdims=True))
    env = np.abs(sfft.ifft2(sfft.fft2(field, axes=(1, 2)) * transfer, axes=(1, 2))) / norm
    return env.astype(np.float32), (sx, sy)


def _blobs(xs_mm, ys_mm, amps, sig_mm_x, sig_mm_y, ppm, psf, size):
    """Sum of separable Gaussian blobs (B, S, S); positions and amplitudes are (B, K)."""
    psf_x, psf_y = _col(psf[0])[:, 0], _col(psf[1])[:, 0]
    sgx = np.sqrt((sig_mm_x * ppm[:, None]) ** 2 + psf_x**2)
    sgy = np.sqrt((sig_mm_y * ppm[:, None]) ** 2 + psf_y**2)
    pxs = xs_mm * ppm[:, None]
    pys = ys_mm * ppm[:, None]
    grid = np.arange(size, dtype=np.float32) + 0.5
    gx = np.exp(-0.5 * ((grid[None, None, :] - pxs[:, :, None]) / sgx[:, :, None]) ** 2)
    gy = np.exp(-0.5 * ((grid[None, None, :] - pys[:, :, None]) / sgy[:, :, None]) ** 2)
    return np.einsum(
        "bky,bkx->byx", (gy * amps[:, :, None]).astype(np.float32), gx.astype(np.float32)
    )


def _calcifications(view, g, idx, geo, env, psf, size):
    """Bright point reflectors; a coarse calcification is a bright arc with a shadow."""
    cx, cy, ppm = geo["cx"], geo["cy"], geo["ppm"]
    xs = [cx[:, None] + g["micro_x"][view][idx]]
    ys = [cy[:, None] + g["micro_ap"][idx]]
    am = [g["micro_amp"][idx] * g["micro_valid"][idx]]
    if view == "longitudinal":
        xs.append(cx[:, None] + g["cluster_x"][idx])
        ys.append(cy[:, None] + g["cluster_y"][idx])
        am.append(g["cluster_amp"][idx] * g["cluster_valid"][idx])
    xs, ys, am = np.concatenate(xs, 1), np.concatenate(ys, 1), np.concatenate(am, 1)
    env = env + _blobs(xs, ys, am, 0.06, 0.06, ppm, psf, size)
    coarse = g["coarse"][idx].astype(np.float32)
    if coarse.any():
        ccx = cx + g["coarse_x"][view][idx]
        ccy = cy + g["coarse_ap"][idx]
        half = g["coarse_len"][idx]
        arc = _blobs(
            ccx[:, None],
            ccy[:, None],
            (5.0 * coarse)[:, None],
            half[:, None] / 2,
            np.full((idx.size, 1), 0.12),
            ppm,
            psf,
            size,
        )
        shadow_x = np.exp(-0.5 * ((geo["xgrid"] - _col(ccx)) / _col(half / 1.6)) ** 4)
        shadow = (
            _col(coarse) * 0.7 * shadow_x * _sigmoid((geo["ygrid"] - _col(ccy) - 0.1) / geo["px"])
        )
        env = env * (1 - shadow) + arc
    return env


def _display(env, geo, looks, size) -> np.ndarray:
    """Residual depth attenuation, log compression, gain and display smoothing, in [0, 1]."""
    att = _col([lk.depth_attenuation for lk in looks])
    env = env * np.exp(-att * (geo["ygrid"] / _col(geo["fov"])))
    ref = np.sqrt(np.pi) / 2  # mean Rayleigh envelope of unit-power parenchyma
    db = 20 * np.log10(np.maximum(env / ref, 1e-6))
    img = _col([lk.gain for lk in looks]) + db / _col([lk.dynamic_range_db for lk in looks])
    blur_px = np.array([lk.post_blur_px224 for lk in looks]) * size / 224
    if np.any(blur_px > 0):
        for b in np.unique(blur_px[blur_px > 0]):
            sel = blur_px == b
            img[sel] = ndimage.gaussian_filter(img[sel], sigma=(0, b, b), mode="reflect")
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _roi_boxes(mask, size) -> list[tuple[int, int, int, int]]:
    """End-exclusive bounding box of each nodule mask (the centre pixel when empty)."""
    boxes = []
    for m in mask:
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        if rows.size == 0:  # nodule smaller than a pixel: box the centre pixel
            c = size // 2
            boxes.append((c, c, c + 1, c + 1))
        else:
            boxes.append((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))
    return boxes
