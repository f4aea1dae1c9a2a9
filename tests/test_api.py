"""`api.load_agent` on logdirs that are not (or not yet) a run: one-line errors naming the file."""
from __future__ import annotations

import json

import pytest

from dreamer_jax import api, config as config_lib


def make_logdir(tmp_path, config_text, spec_text):
    (tmp_path / "config.json").write_text(config_text)
    (tmp_path / "spec.json").write_text(spec_text)
    return tmp_path


GOOD_CONFIG = json.dumps(config_lib.to_dict(config_lib.make_config("debug")))
GOOD_SPEC = json.dumps({"obs_shape": [5], "obs_dtype": "float32", "action_dim": 1,
                        "discrete": False})


@pytest.mark.parametrize("config_text, spec_text, error, message", [
    ('{"task": "dmc_cartpole', GOOD_SPEC, config_lib.ConfigError,
     r"config.json is not a dreamer_jax config: JSONDecodeError"),
    ('["a list"]', GOOD_SPEC, config_lib.ConfigError,
     r"config.json is not a dreamer_jax config: TypeError"),
    ('{"no_such_field": 1}', GOOD_SPEC, config_lib.ConfigError, "unknown field.*no_such_field"),
    (GOOD_CONFIG, '{"obs_shape": [5]}', config_lib.ConfigError,
     r"spec.json is not a dreamer_jax spec: KeyError"),
    (GOOD_CONFIG, GOOD_SPEC, FileNotFoundError, "no checkpoint in"),
])
def test_load_agent_names_the_bad_file(tmp_path, config_text, spec_text, error, message):
    logdir = make_logdir(tmp_path, config_text, spec_text)
    with pytest.raises(error, match=message) as info:
        api.load_agent(str(logdir))
    assert "\n" not in str(info.value)


def test_load_agent_of_a_directory_that_is_no_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json not found: is .* a dreamer_jax logdir"):
        api.load_agent(str(tmp_path))
