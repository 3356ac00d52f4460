"""The S3 backend on a real SeaweedFS server: the conformance suite, URLs, credentials and faults."""
from __future__ import annotations

import pytest
from conformance import StorageTests

from snapstore.errors import UsageError
from snapstore.storage import AccessDenied, BucketNotFound, StorageUnavailable, open_storage
from snapstore.storage.s3 import S3Location, S3Options, S3Storage


class TestS3Storage(StorageTests):
    @pytest.fixture
    def storage(self, s3_url):
        store = open_storage(s3_url)
        yield store
        store.close()


def test_urls_follow_restic():
    loc = S3Location.parse("s3:http://127.0.0.1:8333/bucket/some/prefix")
    assert (loc.endpoint, loc.bucket, loc.prefix) == ("http://127.0.0.1:8333", "bucket", "some/prefix")
    loc = S3Location.parse("s3:s3.amazonaws.com/bucket")
    assert (loc.endpoint, loc.bucket, loc.prefix) == ("https://s3.amazonaws.com", "bucket", "")
    assert str(S3Location.parse("s3:https://h/b/p/")) == "s3:https://h/b/p"
    with pytest.raises(UsageError):
        S3Location.parse("s3:http://host-only")


def test_options():
    opts = S3Options.from_pairs({"s3.region": "eu-west-1", "s3.bucket-lookup": "dns", "s3.retries": "2"})
    assert (opts.region, opts.path_style, opts.retries) == ("eu-west-1", False, 2)
    for bad in ({"s3.bucket-lookup": "sideways"}, {"s3.retries": "many"}, {"s3.colour": "red"}):
        with pytest.raises(UsageError):
            S3Options.from_pairs(bad)


def test_wrong_credentials_are_access_denied(s3_url, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(AccessDenied) as info:
        open_storage(s3_url).get("config")
    assert "\n" not in str(info.value) and "access denied" in str(info.value)


def test_missing_bucket(s3_server, s3_env):
    with pytest.raises(BucketNotFound) as info:
        open_storage(f"s3:{s3_server.endpoint}/no-such-bucket/x").get("config")
    assert "no-such-bucket" in str(info.value) and info.value.exit_code == 10


def test_unreachable_server(s3_env):
    store = S3Storage(S3Location.parse("s3:http://127.0.0.1:9/bucket"), S3Options(retries=1, connect_timeout=2))
    with pytest.raises(StorageUnavailable) as info:
        store.get("config")
    assert "127.0.0.1:9" in str(info.value)


def test_profile_credentials(s3_server, s3_url, tmp_path, monkeypatch):
    creds = tmp_path / "credentials"
    creds.write_text(f"[weed]\naws_access_key_id = {s3_server.access_key}\n"
                     f"aws_secret_access_key = {s3_server.secret_key}\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    store = open_storage(s3_url, {"s3.profile": "weed"})
    store.put("config", b"via profile")
    assert store.get("config") == b"via profile"
    with pytest.raises(UsageError):
        open_storage(s3_url, {"s3.profile": "nobody"}).get("config")
