"""A deterministic stand-in for the camera: a person in front of a wall, as a numpy luma plane."""

from __future__ import annotations

import numpy as np


def portrait(width: int = 128, height: int = 72) -> np.ndarray:
    """Head and shoulders against a lit wall with a door frame; the same bytes on every run."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / width, y / height  # 0..1 across and down
    plane = 170 - 60 * v + 25 * np.sin(u * 7.0)  # a wall, lit from above, with a soft pattern
    plane[(u > 0.78) & (u < 0.82)] = 60  # a door frame on the right
    head = ((u - 0.47) / 0.13) ** 2 + ((v - 0.38) / 0.24) ** 2 < 1
    hair = head & (v < 0.27) | (((u - 0.47) / 0.14) ** 2 + ((v - 0.3) / 0.2) ** 2 < 1) & (v < 0.24)
    shoulders = ((u - 0.47) / 0.36) ** 2 + ((v - 1.05) / 0.42) ** 2 < 1
    plane[shoulders] = 55 + 20 * np.cos(u[shoulders] * 9)  # a dark jacket
    plane[head] = 200 - 50 * np.abs(u[head] - 0.47) / 0.13  # a face, shaded to the sides
    plane[hair] = 35
    for eye_u in (0.42, 0.52):
        plane[((u - eye_u) / 0.022) ** 2 + ((v - 0.38) / 0.035) ** 2 < 1] = 30
    plane[(np.abs(u - 0.47) < 0.035) & (np.abs(v - 0.5) < 0.012)] = 90  # the mouth
    return np.clip(plane, 0, 255).astype(np.uint8)
