"""The Trainer's hyperparameters: defaults, types and allowed values from custom_config."""
import pytest

from model import hyperparameters as hp

pytestmark = pytest.mark.fast


def test_parse_fills_in_the_defaults_and_types_the_values():
  config = hp.parse({hp.BATCH_SIZE: '4', hp.LOSS: hp.RARITY})
  assert config == {**hp.DEFAULTS, hp.BATCH_SIZE: 4, hp.LOSS: hp.RARITY}
  assert hp.parse(None) == hp.DEFAULTS


@pytest.mark.parametrize('custom_config', [
    {hp.LR_SCHEDULE: 'linear'}, {hp.LOSS: 'l1'}, {'batch': 8}])
def test_parse_refuses_unknown_keys_and_values(custom_config):
  with pytest.raises(ValueError):
    hp.parse(custom_config)
