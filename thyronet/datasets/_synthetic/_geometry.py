"""Per-patient rendering parameters of the synthetic nodules and their outlines (in mm).

:func:`render_parameters` turns the image truth into everything the renderer needs
(field of view, axes, outline harmonics, capsule depth, calcification positions), in
mm and fractions, so that it does not depend on the image size;
:func:`outline_radius` is the nodule outline in one section.
"""

from __future__ import annotations

import numpy as np

from thyronet.datasets._synthetic._params import (
    _FOV_FACTOR,
    _MAX_CLUSTER,
    _MAX_MICRO,
    _MIN_FOV_MM,
)
from thyronet.schema import VIEW_COLUMNS


def render_parameters(rng, t: dict) -> dict:
    """Per-patient rendering parameters from the truth ``t`` (drawn from ``rng`` in order)."""
    n = t["size"].size
    fov = np.maximum(_FOV_FACTOR * t["size"], _MIN_FOV_MM)
    a_ap = t["d_ap"] / 2
    g = {
        "fov": fov,
        "axes": {"longitudinal": (t["d_cc"] / 2, a_ap), "transverse": (t["d_lat"] / 2, a_ap)},
        "spic": t["spic"],
        "lob": t["lob"],
        "blur": t["blur"],
        "echo": t["echo"],
        "spic_k": rng.integers(7, 11, n).astype(float),
        "spic_phase": rng.uniform(0, 2 * np.pi, n),
        "lob_k": rng.integers(5, 8, n).astype(float),
        "lob_phase": rng.uniform(0, 2 * np.pi, n),
        "capsule_gap": t["capsule_gap"],
        "capsule_break": t["cap_break"],
        "medial_gap": t["medial_gap"],
    }
    # shared low-amplitude irregularity, independent per section
    for view in VIEW_COLUMNS:
        g[f"{view}_harm"] = rng.uniform(0.0, 0.06, (n, 2))
        g[f"{view}_harm_phase"] = rng.uniform(0, 2 * np.pi, (n, 2))
        g[f"{view}_offset_x"] = rng.uniform(-0.75, 0.75, n)
        g[f"{view}_tilt"] = rng.uniform(-0.06, 0.06, n)
        g[f"{view}_break_half"] = rng.uniform(0.35, 0.7, n)
    # depth of the anterior capsule (shared), posterior fascia
    depth_room = fov * 0.94 - 2 * a_ap - t["capsule_gap"]
    cap_y = np.minimum(rng.uniform(0.08, 0.2, n) * fov, depth_room)
    g["capsule_y"] = cap_y
    g["center_y"] = cap_y + t["capsule_gap"] + a_ap
    g["posterior_gap"] = rng.uniform(0.4, 3.0, n)
    _micro_parameters(rng, t, g)
    _cluster_parameters(rng, t, g)
    _coarse_parameters(rng, t, g)
    return g


def _micro_parameters(rng, t: dict, g: dict) -> None:
    """Shared microcalcifications on the antero-posterior axis: in-plane offset per view, ap."""
    n, a_ap = t["size"].size, t["d_ap"] / 2
    g["micro_valid"] = np.arange(_MAX_MICRO)[None, :] < t["n_micro"][:, None]
    g["micro_ap"] = rng.uniform(-0.55, 0.55, (n, _MAX_MICRO)) * a_ap[:, None]
    g["micro_x"] = {
        "longitudinal": rng.uniform(-0.2, 0.2, (n, _MAX_MICRO)) * (t["d_cc"] / 2)[:, None],
        "transverse": rng.uniform(-0.2, 0.2, (n, _MAX_MICRO)) * (t["d_lat"] / 2)[:, None],
    }
    g["micro_amp"] = rng.uniform(3.5, 6.0, (n, _MAX_MICRO))


def _cluster_parameters(rng, t: dict, g: dict) -> None:
    """Longitudinal-only cluster: half-way to a pole, off the transverse plane."""
    n, a_ap, a_cc = t["size"].size, t["d_ap"] / 2, t["d_cc"] / 2
    side = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
    cx = side * rng.uniform(0.3, 0.5, n) * a_cc
    cy = rng.uniform(-0.3, 0.3, n) * a_ap
    spread = 0.13 * np.minimum(a_cc, a_ap)
    fx = cx[:, None] + rng.normal(0, 1, (n, _MAX_CLUSTER)) * spread[:, None]
    fy = cy[:, None] + rng.normal(0, 1, (n, _MAX_CLUSTER)) * spread[:, None]
    # keep the foci well inside the (spiculated) outline
    theta = np.arctan2(fy, fx)
    r_out = outline_radius(
        theta, a_cc[:, None], a_ap[:, None], g, "longitudinal", np.arange(n)[:, None]
    )
    rho = np.hypot(fx, fy)
    shrink = np.minimum(1.0, 0.72 * r_out / np.maximum(rho, 1e-9))
    g["cluster_x"], g["cluster_y"] = fx * shrink, fy * shrink
    g["cluster_valid"] = np.arange(_MAX_CLUSTER)[None, :] < t["n_cluster"][:, None]
    g["cluster_amp"] = rng.uniform(3.5, 6.0, (n, _MAX_CLUSTER))


def _coarse_parameters(rng, t: dict, g: dict) -> None:
    """Coarse calcification on the antero-posterior axis (both sections), with a shadow."""
    n, a_ap = t["size"].size, t["d_ap"] / 2
    g["coarse"] = t["has_coarse"]
    g["coarse_ap"] = rng.uniform(-0.45, 0.1, n) * a_ap
    g["coarse_x"] = {v: rng.uniform(-0.15, 0.15, n) * g["axes"][v][0] for v in VIEW_COLUMNS}
    g["coarse_len"] = rng.uniform(0.35, 0.6, n) * np.minimum(t["d_cc"], t["d_lat"]) / 2


_SPIKE_POWER = 4
_SPIKE_MEAN = 70 / 256  # mean of ((1 + cos) / 2) ** 4 over a period
_SPIC_GAIN = 1.0  # spiculation 0.55 -> spicule tips 40 % beyond the core ellipse
_LOB_GAIN = 0.6  # lobulation 0.55 -> lobes and notches +-17 % of the core radius
MAX_OUTGROWTH = 1 + 0.55 * max(_SPIC_GAIN * (1 - _SPIKE_MEAN), _LOB_GAIN * 0.5)
"""Largest outline radius / core-ellipse radius (spicule tips)."""


def outline_radius(theta, ax, ay, g, view, idx):
    """Radius of the nodule outline (mm) at polar angle ``theta`` (y pointing deeper)."""
    dtype = theta.dtype

    def p(a):
        return np.asarray(a, dtype=dtype)

    ax, ay = p(ax), p(ay)
    cos, sin = np.cos(theta), np.sin(theta)
    r = ax * ay / np.sqrt((ay * cos) ** 2 + (ax * sin) ** 2)
    harm = p(g[f"{view}_harm"][idx])
    phase = p(g[f"{view}_harm_phase"][idx])
    m = (
        1
        - harm[..., 0] * 0.5 * (1 + np.cos(2 * theta + phase[..., 0]))
        - harm[..., 1] * 0.5 * (1 + np.cos(3 * theta + phase[..., 1]))
    )
    if view == "longitudinal":
        # thin spicules radiating from the poles, shallow valleys between them; zero mean
        # over the angle, so spiculation changes the outline, not the nodule's area
        k, ph, amp = p(g["spic_k"][idx]), p(g["spic_phase"][idx]), p(g["spic"][idx])
        spike = (0.5 * (1 + np.cos(k * theta + ph))) ** _SPIKE_POWER
        m = m * (1 + amp * cos**2 * (spike - _SPIKE_MEAN) * _SPIC_GAIN)
    else:
        # rounded lobes and notches of equal area on the lateral / postero-lateral surface
        k, ph, amp = p(g["lob_k"][idx]), p(g["lob_phase"][idx]), p(g["lob"][idx])
        lobes = 0.5 * (1 + np.cos(k * theta + ph))
        weight = np.abs(cos) ** 1.2 * (0.75 + 0.25 * sin)
        m = m * (1 + amp * weight * (lobes - 0.5) * _LOB_GAIN)
    return r * m
