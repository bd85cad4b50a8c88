"""Reference formulas and comparisons that the image tests check the code against."""
import numpy as np


def reference_lab(rgb01: np.ndarray) -> np.ndarray:
  """CIE Lab (D65) from sRGB, written out from the standard's formulas."""
  rgb = np.asarray(rgb01, np.float64)
  linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
  m = np.array([[0.412453, 0.357580, 0.180423],
                [0.212671, 0.715160, 0.072169],
                [0.019334, 0.119193, 0.950227]])
  xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
  f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
  return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                   200 * (f[..., 1] - f[..., 2])], -1)


def close_to(decoded: np.ndarray, expected: np.ndarray, tolerance: float) -> bool:
  return np.abs(decoded.astype(np.int32) - expected.astype(np.int32)).mean() <= tolerance


def reference_linear_rgb(lab: np.ndarray) -> np.ndarray:
  """Linear RGB from CIE Lab (D65), written out from the standard's formulas, unclipped."""
  lab = np.asarray(lab, np.float64)
  fy = (lab[..., 0] + 16) / 116
  f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
  xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * [0.95047, 1.0, 1.08883]
  m = np.array([[3.240479, -1.537150, -0.498535],
                [-0.969256, 1.875992, 0.041556],
                [0.055648, -0.204043, 1.057311]])
  return xyz @ m.T


def reference_rgb8(lab: np.ndarray) -> np.ndarray:
  """8-bit sRGB from CIE Lab (D65), written out from the standard's formulas, clipped."""
  linear = np.clip(reference_linear_rgb(lab), 0, 1)
  srgb = np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear)
  return np.round(srgb * 255).astype(np.int32)
