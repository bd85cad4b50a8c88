"""What ingestion stores of a photo: its crops (`crop_boxes`), each in Lab at the
model's size and quantized (`photo_to_records`), or the reason it is refused.
"""
import math
from typing import List, NamedTuple

import numpy as np
import tensorflow as tf

from model import colour_space
from model import decoding
from model import scaling

MIN_COLOURFULNESS = 5.0
"""Photos whose Hasler-Suesstrunk colourfulness (on the 256x256 crop) is below this are
rejected as having no colour. Gray photos, also when saved as RGB JPEGs, score under 1;
the least colourful bundled photos (the Hubble deep field, a wood grain) score 9.6 and
13, and a sepia-toned photo 13 to 23, so 5 rejects gray and faintly tinted scans
without rejecting muted colour."""


def center_crop_square(image: tf.Tensor) -> tf.Tensor:
  """The largest centred square of an [H, W, C] image.

  Ingestion crops rather than pads: padding would add flat gray borders whose ab is 0
  and teach the model to paint gray; a crop loses the edges of the photo but every
  pixel the model sees is real.
  """
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  side = tf.minimum(height, width)
  return tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2,
                                       side, side)


MIN_CROP_SCALE = 0.5
"""The smallest extra crop (`--crops-per-image` > 1) has sides of this times the
photo's short side."""


class CropBox(NamedTuple):
  top: int
  left: int
  side: int


def crop_boxes(height: int, width: int, count: int, seed: str) -> List[CropBox]:
  """The squares ingestion cuts from a photo of height x width, `count` of them.

  The first is the largest centred square, the one crop of `--crops-per-image 1`. Each
  other one has a side drawn uniformly between MIN_CROP_SCALE and 1 times the short side
  and a position drawn uniformly over the photo: new framings and scales of the same
  scene, each later resized to scaling.IMAGE_SIZE. They are drawn from `seed` (the
  photo's content hash), so re-ingesting a photo writes the same crops.
  """
  short = min(height, width)
  boxes = [CropBox((height - short) // 2, (width - short) // 2, short)]
  rng = np.random.default_rng(int(seed[:16], 16))
  for _ in range(count - 1):
    side = max(1, int(round(short * rng.uniform(MIN_CROP_SCALE, 1.0))))
    boxes.append(CropBox(int(rng.integers(0, height - side + 1)),
                         int(rng.integers(0, width - side + 1)), side))
  return boxes


def photo_crops(data: bytes, sha256: str,
                max_megapixels: float = decoding.DEFAULT_MAX_MEGAPIXELS, crops_per_image: int = 1):
  """What ingestion stores for one file: its DecodedPhoto and `photo_to_records` of each
  of its `crop_boxes`. Raises PhotoRejected as `decoding.decode_photo` does, and with
  'no_colour' when the centred square's colourfulness is under MIN_COLOURFULNESS."""
  # Extra crops may be down to MIN_CROP_SCALE of the short side: JPEGs are decoded large
  # enough that those still have scaling.IMAGE_SIZE pixels.
  scale = 1.0 if crops_per_image == 1 else MIN_CROP_SCALE
  photo = decoding.decode_photo(data, max_megapixels,
                              draft_size=math.ceil(scaling.IMAGE_SIZE / scale))
  height, width = photo.rgb.shape[:2]
  crops = [photo_to_records(photo.rgb[box.top:box.top + box.side, box.left:box.left + box.side])
           for box in crop_boxes(height, width, crops_per_image, sha256)]
  colourfulness = float(crops[0]['colourfulness'])
  if colourfulness < MIN_COLOURFULNESS:
    raise decoding.PhotoRejected('no_colour', f'colourfulness {colourfulness:.1f} is under '
                               f'{MIN_COLOURFULNESS:g}: a gray photo would teach gray')
  return photo, crops


@tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
def photo_to_records(rgb: tf.Tensor):
  """What ingestion stores for one decoded photo: uint8 sRGB [H, W, 3] ->
  quantized L [256, 256] and ab [256, 256, 2], the embedding network's input
  [299, 299, 3] and the crop's colourfulness."""
  square = scaling.at_model_size(center_crop_square(rgb))          # [256, 256, 3]
  lab = colour_space.rgb_to_lab(square)
  l_q = scaling.quantize_l(lab[..., 0])                            # [256, 256]
  ab_q = scaling.quantize_ab(lab[..., 1:])                         # [256, 256, 2]
  gray = scaling.embedding_input(scaling.dequantize_l(l_q)[..., None])  # [299, 299, 3]
  return {
      'l': l_q,
      'ab': ab_q,
      'embedding_input': gray,
      'colourfulness': colour_space.colourfulness(square * 255.0),
  }
