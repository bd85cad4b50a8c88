"""The exported SavedModel's signatures, on odd inputs, against ingestion's preprocessing."""
import io
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from components import ingest
from conftest import ONE_COLOUR
from model import colour_space
from model import decoding
from model import embedding
from model import metrics
from model import network
from model import records
from model import scaling
from model import serving
from sample_images import colourful_image, encode, yellow_blue_image


@pytest.fixture(scope='module')
def loaded(trained):
  return tf.saved_model.load(trained['serving_dir'])


def answers(loaded, *images):
  outputs = loaded.signatures[serving.SERVING_DEFAULT](image_bytes=tf.constant(list(images)))
  return list(outputs[serving.OUTPUT_KEY].numpy())


def colorize(loaded, *images):
  return [np.asarray(Image.open(io.BytesIO(answer))) for answer in answers(loaded, *images)]


def lightness(rgb_uint8):
  return colour_space.rgb_to_lab(tf.constant(rgb_uint8, tf.float32) / 255.0).numpy()[..., 0]


def with_alpha(rgb):
  alpha = np.full(rgb.shape[:2] + (1,), 128, np.uint8)
  return np.concatenate([rgb, alpha], axis=2)


def test_odd_inputs_come_back_at_their_own_size_in_their_own_format(loaded):
  """JPEG for a JPEG, PNG for anything else (GIF and BMP included)."""
  photo = colourful_image(5, 300, 200)
  gray = np.asarray(Image.fromarray(photo).convert('L'))
  exif = Image.Exif()
  exif[0x0112] = 6  # A phone held upright: stored sideways, shown turned 90° clockwise.
  inputs = {
      'exif-rotated jpeg': (encode(photo, 'JPEG', exif=exif), (300, 200)),
      'tiny png': (encode(colourful_image(1, 33, 40), 'PNG'), (40, 33)),
      'colour jpeg': (encode(photo, 'JPEG', quality=95), (200, 300)),
      'gray png': (encode(gray, 'PNG'), (200, 300)),
      'png with alpha': (encode(with_alpha(photo), 'PNG'), (200, 300)),
      'gif': (encode(photo, 'GIF'), (200, 300)),
      'bmp': (encode(photo, 'BMP'), (200, 300)),
      'huge jpeg': (encode(np.kron(photo, np.ones((12, 12, 1), np.uint8)), 'JPEG'), (2400, 3600)),
  }
  outputs = answers(loaded, *(data for data, _ in inputs.values()))
  for (name, (_, size)), output in zip(inputs.items(), outputs):
    image = Image.open(io.BytesIO(output))
    assert image.format == ('JPEG' if name.endswith('jpeg') else 'PNG'), name
    assert image.mode == 'RGB' and image.size == size[::-1], name


def test_a_jpeg_comes_back_as_a_jpeg_of_quality_95_with_its_luminance(loaded):
  """Tolerance: mean |ΔL| under 1.5 (of 100) against the photo as TensorFlow decodes it:
  what the PNG answer keeps (under 1, below) plus what JPEG at quality 95 adds."""
  gray = np.asarray(Image.fromarray(yellow_blue_image(98, 160)).convert('L'))
  [answer] = answers(loaded, encode(gray[:, :120], 'JPEG', quality=90))
  assert answer.startswith(decoding.JPEG_SIGNATURE)
  image = Image.open(io.BytesIO(answer))
  assert (image.format, image.mode, image.size) == ('JPEG', 'RGB', (120, 160))
  output = np.asarray(image)
  # libjpeg's quantization tables for quality 95, as Pillow makes them.
  quality_95 = Image.open(io.BytesIO(encode(output, 'JPEG', quality=decoding.JPEG_QUALITY)))
  assert image.quantization == quality_95.quantization
  decoded = tf.io.decode_jpeg(encode(gray[:, :120], 'JPEG', quality=90)).numpy()
  difference = np.abs(lightness(output) - lightness(np.repeat(decoded, 3, axis=2)))
  assert difference.mean() < 1.5, difference.mean()
  assert float(colour_space.colourfulness(output)) > 10  # It did colourize.


def test_colourized_output_keeps_the_input_luminance(loaded):
  """Tolerance: mean |ΔL| under 1 and 99% of pixels within 3 (of 100). The output is
  8-bit RGB, and colours outside sRGB are clipped, which moves L a little."""
  gray = np.asarray(Image.fromarray(yellow_blue_image(99, 160)).convert('L'))
  [output] = colorize(loaded, encode(gray, 'PNG'))
  difference = np.abs(lightness(output) - lightness(np.repeat(gray[..., None], 3, axis=2)))
  assert difference.mean() < 1.0
  assert np.percentile(difference, 99) < 3.0
  assert float(colour_space.colourfulness(output)) > 10  # It did colourize.


@pytest.fixture(scope='module')
def sharp(sharp_weights, tmp_path_factory):
  """The Beam ingestion job and a SavedModel, both with `sharp_weights`, over a square
  and a wide photo. Returns (SavedModel, {file name: (bytes, record)})."""
  folder = tmp_path_factory.mktemp('sharp_photos')
  photos = {'square.png': encode(colourful_image(21, 200, 200), 'PNG'),
            'wide.png': encode(colourful_image(22, 300, 200), 'PNG')}
  for name, data in photos.items():
    (folder / name).write_bytes(data)
  out = str(tmp_path_factory.mktemp('sharp_ingested'))
  ingest.ingest(str(folder), out, embedding_weights=sharp_weights.uri, eval_percent=0)
  dataset = tf.data.TFRecordDataset(tf.io.gfile.glob(out + '/Split-*/*'), records.COMPRESSION)
  found = {os.path.basename(record['source'].numpy().decode()): record
           for record in map(records.parse, dataset)}
  model_dir = str(tmp_path_factory.mktemp('sharp_model'))
  serving.export(network.build_colorizer(), sharp_weights, model_dir)
  return tf.saved_model.load(model_dir), {name: (photos[name], found[name]) for name in photos}


def test_serving_sees_the_same_l_and_embedding_as_ingestion(sharp):
  """A square photo, through ingestion (records) and through the SavedModel. The L
  differs by the records' quantization, and so the embedding by up to 2e-3; another
  photo's embedding is over 10 times further off."""
  loaded, photos = sharp
  data, record = photos['square.png']
  served = loaded.signatures[serving.PREPARE_IMAGE](image_bytes=tf.constant([data]))
  difference = np.abs(served['l'][0].numpy() - record['l'].numpy())
  assert difference.max() <= 0.2  # Half of the stored quantization step (100 / 255).
  vector = served['embedding'][0].numpy()
  assert np.abs(vector - record['embedding'].numpy()).max() < 2e-3
  assert np.abs(vector - photos['wide.png'][1]['embedding'].numpy()).max() > 2e-2


def test_serving_squeezes_a_wide_photo_where_ingestion_crops_its_centre(sharp, sharp_weights):
  """The model trains on centred squares; serving colours the whole photo, squeezed to
  a square. For a 3:2 photo the two differ (by design), and serving's L and embedding
  are those of the squeezed photo, the embedding as ingestion's network computes it."""
  loaded, photos = sharp
  data, record = photos['wide.png']
  served = loaded.signatures[serving.PREPARE_IMAGE](image_bytes=tf.constant([data]))
  pixels = tf.constant(np.asarray(Image.open(io.BytesIO(data))))
  squeezed = colour_space.rgb_to_lab(scaling.at_model_size(pixels))[..., :1]
  assert np.abs(served['l'][0].numpy() - squeezed.numpy()).max() < 1e-3
  assert np.abs(served['l'][0].numpy() - record['l'].numpy()).mean() > 5  # Not the crop.
  embedder = embedding.build_embedder(sharp_weights)
  expected = embedder(scaling.embedding_input(squeezed[None]), training=False).numpy()[0]
  assert np.abs(served['embedding'][0].numpy() - expected).max() < 1e-4


def eval_records(trained, count):
  files = tf.io.gfile.glob(os.path.join(records.split_dir(trained['examples'].uri, 'eval'), '*'))
  return [r.numpy() for r in tf.data.TFRecordDataset(files, records.COMPRESSION)][:count]


def test_the_evaluators_statistics_are_the_metrics_of_the_records_and_from_examples(
    loaded, trained):
  """evaluation_statistics (the model's) and gray_statistics (gray's): each example's
  statistics as model.metrics computes them from the records' own L and ab and
  `from_examples`' prediction, taken one example at a time."""
  examples = tf.constant(eval_records(trained, 3))
  lab = records.quantized_lab(tf.io.parse_example(examples, records.FEATURES))
  # One example at a time, as the signature runs them: the network on a batch of 3 moved
  # a within-t count by a pixel (3,587 against 3,586).
  expected = np.concatenate([metrics.statistics(
      lab[i:i + 1], loaded.signatures[serving.FROM_EXAMPLES](examples=examples[i:i + 1])['ab'],
      False) for i in range(3)])
  model = loaded.signatures[serving.EVALUATION_STATISTICS](examples=examples)['statistics']
  gray = loaded.signatures[serving.GRAY_STATISTICS](examples=examples)['gray_statistics']
  assert model.shape == gray.shape == (3, metrics.STATISTICS) and model.dtype == tf.float32
  np.testing.assert_allclose(model, expected, rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(gray, metrics.statistics(lab, None, True), rtol=1e-5)


def constant_record(l, a, b):
  size = scaling.IMAGE_SIZE
  return records.make_example(
      l=np.full((size, size), round(l * 2.55), np.uint8),
      ab=np.broadcast_to(np.array([a + 128, b + 128], np.uint8), (size, size, 2)),
      embedding=np.zeros(scaling.EMBEDDING_DIM, np.float32), source='constant',
      content_sha256='0', height=size, width=size).SerializeToString()


def test_the_evaluators_statistics_on_a_known_answer(one_colour_model):
  """Records of L 60 and ab (30, -40) everywhere, which one_colour_model colours
  ONE_COLOUR (12, 18): 60.7 Lab units off at every pixel, gray 50."""
  loaded = tf.saved_model.load(one_colour_model)
  examples = tf.constant([constant_record(60, 30, -40)] * 2)
  model = loaded.signatures[serving.EVALUATION_STATISTICS](examples=examples)['statistics']
  gray = loaded.signatures[serving.GRAY_STATISTICS](examples=examples)['gray_statistics']
  pixels = scaling.IMAGE_SIZE ** 2
  for statistics, (a, b) in ((model.numpy(), ONE_COLOUR), (gray.numpy(), (0, 0))):
    squared = (a - 30) ** 2 + (b + 40) ** 2
    np.testing.assert_allclose(statistics[:, metrics.SQUARED_AB_ERROR],
                               pixels * squared / 128 ** 2, rtol=1e-4)
    within = statistics[:, metrics.WITHIN:metrics.WITHIN + metrics.AUC_MAX_DISTANCE + 1]
    off = int(np.ceil(np.sqrt(squared)))  # 61 and 50
    assert (within[:, :off] == 0).all() and (within[:, off:] == pixels).all()
    assert (statistics[:, -1] == pixels).all()
  lab = records.quantized_lab(tf.io.parse_example(examples, records.FEATURES))
  size = scaling.IMAGE_SIZE  # PSNR and colourfulness, as test_metrics checks them
  predicted = np.broadcast_to(np.float32(ONE_COLOUR) / scaling.AB_SCALE, (2, size, size, 2))
  np.testing.assert_allclose(model, metrics.statistics(lab, predicted, False), rtol=1e-5)


def test_undecodable_bytes_are_an_error_not_a_crash(loaded):
  with pytest.raises(tf.errors.InvalidArgumentError):
    loaded.signatures[serving.SERVING_DEFAULT](image_bytes=tf.constant([b'not an image']))


def test_latest_version_picks_the_highest_number(tmp_path, trained):
  for version in ('3', '12', 'tmp-99'):
    (tmp_path / version).mkdir()
    (tmp_path / version / 'saved_model.pb').write_bytes(b'graph')
  assert serving.latest_version(str(tmp_path)) == str(tmp_path / '12')
  assert serving.latest_version(trained['serving_dir']) == trained['serving_dir']
  with pytest.raises(ValueError):
    serving.latest_version(str(tmp_path / 'tmp-99' / 'variables'))


@pytest.mark.fast
def test_latest_version_skips_a_push_in_progress_in_a_bucket(bucket):
  """On gs:// the Pusher copies a version file by file, saved_model.pb last but its
  marker: a numbered version without saved_model.pb is a push still in progress, or
  one that died (components/pusher.py)."""
  for version, names in (('100', ('saved_model.pb', 'variables/variables.index')),
                         ('200', ('variables/variables.index',))):
    for name in names:
      with tf.io.gfile.GFile(f'{bucket}/serving/{version}/{name}', 'wb') as f:
        f.write(b'x')
  assert serving.latest_version(f'{bucket}/serving') == f'{bucket}/serving/100'
  with pytest.raises(ValueError, match='neither a SavedModel nor'):
    serving.latest_version(f'{bucket}/serving/200')


def test_the_graph_uses_only_core_tensorflow_ops(trained):
  """TF Serving has no tensorflow-io kernels nor any of ours: every op in the
  SavedModel must be one of TensorFlow's own (or a call of the model's functions)."""
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(trained['serving_dir'], 'saved_model.pb'), 'rb') as f:
    saved_model.ParseFromString(f.read())
  graph = saved_model.meta_graphs[0].graph_def
  functions = {function.signature.name for function in graph.library.function}
  ops = {node.op for node in graph.node}
  ops |= {node.op for function in graph.library.function for node in function.node_def}
  assert {'GatherV2', 'EncodeJpeg', 'EncodePng'} <= ops
  assert not {op for op in ops - functions if not hasattr(tf.raw_ops, op)}
