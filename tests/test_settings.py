from __future__ import annotations

from dataclasses import fields

import pytest

from shared.errors import ConfigError
from shared.settings import Settings


def test_env_overrides_and_redis_url_fallback():
    s = Settings.from_env({"REDIS_URL": "redis://h:1/2", "OCR_MAX_BATCH": "4", "OCR_DET_THRESH": "0.4"})
    assert (s.redis_url, s.max_batch, s.det_thresh) == ("redis://h:1/2", 4, 0.4)
    assert Settings.from_env({"REDIS_URL": "redis://a", "OCR_REDIS_URL": "redis://b"}).redis_url == "redis://b"


@pytest.mark.parametrize(
    "env",
    [{"OCR_MAX_BATCH": "eight"}, {"OCR_MAX_BATCH": "0"}, {"OCR_MAX_WAIT_MS": "-1"}, {"OCR_DET_THRESH": "2"},
     {"OCR_REC_MAX_WIDTH": "8"}, {"OCR_API_PORT": "70000"}, {"OCR_DEFAULT_MODEL": "typo"}],
)
def test_bad_values_fail_loudly(env):
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert next(iter(env)) in err.value.message, "the message names the variable to fix"


def test_booleans_are_strict():
    assert Settings.from_env({"OCR_ORT_MEM_ARENA": "off"}).ort_mem_arena is False
    assert Settings.from_env({"OCR_ORT_MEM_ARENA": "1"}).ort_mem_arena is True
    with pytest.raises(ConfigError, match="OCR_ORT_MEM_ARENA"):
        Settings.from_env({"OCR_ORT_MEM_ARENA": "maybe"})


def test_threads_default_to_a_share_of_the_cores():
    one = Settings(workers_per_host=1).threads
    assert Settings(workers_per_host=2).threads == max(1, one // 2)
    assert Settings(intra_op_threads=3).threads == 3


def test_the_s3_secret_never_shows_in_the_settings_repr():
    settings = Settings.from_env({"OCR_S3_SECRET_ACCESS_KEY": "hunter2-secret", "OCR_S3_ACCESS_KEY_ID": "AKIA1"})
    assert settings.s3_secret_access_key == "hunter2-secret"
    assert "hunter2-secret" not in repr(settings)


def test_s3_results_need_a_bucket():
    with pytest.raises(ConfigError, match="OCR_S3_BUCKET"):
        Settings.from_env({"OCR_RESULT_STORE": "s3"})


def test_a_batch_may_not_wait_longer_than_half_a_lease():
    with pytest.raises(ConfigError, match="OCR_MAX_WAIT_MS"):
        Settings.from_env({"OCR_LEASE_S": "2", "OCR_MAX_WAIT_MS": "1500"})


def test_an_empty_variable_is_the_settings_none_value_where_it_has_one():
    """The README: OCR_RATE_LIMIT_SUBMIT="" is no limit (compose passes ${VAR:-} as "")."""
    s = Settings.from_env({"OCR_RATE_LIMIT_SUBMIT": "", "OCR_RATE_LIMIT_READ": " ", "OCR_S3_PREFIX": ""})
    assert (s.rate_limit_submit, s.rate_limit_read, s.s3_prefix) == ("", "", "")


def test_an_empty_variable_is_the_default_where_there_is_no_none_value():
    s = Settings.from_env({"OCR_MAX_BATCH": "", "OCR_LEXICON": " ", "OCR_QUEUE_NAME": "", "OCR_LOG_FORMAT": "",
                           "OCR_DEFAULT_LANG": "", "OCR_API_PORT": "", "REDIS_URL": "", "OCR_REDIS_URL": ""})
    assert s == Settings()


def test_every_variable_empty_at_once_is_no_error():
    everything = {"OCR_" + f.name.upper(): "" for f in fields(Settings)}
    assert Settings.from_env(everything) == Settings(rate_limit_submit="", rate_limit_read="", s3_prefix="")


@pytest.mark.parametrize(("host", "bind", "url"), [
    ("127.0.0.1", "127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("0.0.0.0", "0.0.0.0:8000", "http://127.0.0.1:8000"),
    ("10.1.2.3", "10.1.2.3:8000", "http://10.1.2.3:8000"),
    ("::", "[::]:8000", "http://[::1]:8000"),
    ("::1", "[::1]:8000", "http://[::1]:8000"),
])
def test_the_health_check_url_follows_what_the_api_binds(host, bind, url):
    settings = Settings.from_env({"OCR_API_HOST": host})
    assert (settings.api_bind, settings.api_local_url) == (bind, url)
    assert Settings.from_env({}).api_local_url == "http://127.0.0.1:8000", "the API's own defaults"


def test_admission_and_image_store_settings_are_checked():
    with pytest.raises(ConfigError, match="OCR_IMAGE_STORE=s3 needs OCR_S3_BUCKET"):
        Settings(image_store="s3")
    with pytest.raises(ConfigError, match="OCR_IMAGE_STORE must be one of"):
        Settings(image_store="disk")
    with pytest.raises(ConfigError, match="OCR_MAX_QUEUED_BYTES"):
        Settings(max_queued_bytes=1000)
    with pytest.raises(ConfigError, match="OCR_QUEUE_SHARE_PER_KEY"):
        Settings(queue_share_per_key=0)
    assert Settings.from_env({"OCR_MAX_QUEUED_JOBS": "", "OCR_ALLOW_EVICTING_REDIS": "yes"}).allow_evicting_redis
