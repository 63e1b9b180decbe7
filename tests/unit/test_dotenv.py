""".env loading: the environment wins, each value says which line set it, and for real AWS the
.env.example placeholder keys never shadow a profile."""

from pathlib import Path

import pytest

from stockpipe import dotenv
from stockpipe.settings import Settings, SettingsError, describe_source


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def test_sets_what_the_environment_lacks_and_names_the_line(tmp_path):
    path = write(tmp_path, "# comment\n\nSTREAM_NAME=s1\nexport TABLE_NAME=t1\n  RAW_PREFIX = raw\nTOPIC_NAME=x\n")
    environ = {"TOPIC_NAME": "from-env"}
    loaded = dotenv.load(path, environ)
    assert environ == {"TOPIC_NAME": "from-env", "STREAM_NAME": "s1", "TABLE_NAME": "t1", "RAW_PREFIX": "raw"}
    assert loaded.sources == {"STREAM_NAME": ".env line 3", "TABLE_NAME": ".env line 4", "RAW_PREFIX": ".env line 5"}
    assert describe_source("STREAM_NAME", loaded.sources) == ".env line 3"
    assert describe_source("TOPIC_NAME", loaded.sources) == "environment"
    assert loaded.skipped == {} and loaded.skipped_note() is None


def test_an_empty_environment_value_still_wins(tmp_path):
    # As load_dotenv(override=False): set, even to "", is set.
    environ = {"AWS_ENDPOINT_URL": ""}
    loaded = dotenv.load(write(tmp_path, "AWS_ENDPOINT_URL=http://localhost:4566\n"), environ)
    assert environ == {"AWS_ENDPOINT_URL": ""} and loaded.sources == {}


def test_the_last_definition_wins_and_is_the_line_named(tmp_path):
    environ: dict[str, str] = {}
    loaded = dotenv.load(write(tmp_path, "STREAM_NAME=a\nSTREAM_NAME=b\n"), environ)
    assert environ["STREAM_NAME"] == "b" and loaded.sources["STREAM_NAME"] == ".env line 2"


def test_quoted_and_multiline_values(tmp_path):
    text = 'ALERT_EMAIL="ops@example.com"\nPRODUCER_SYMBOLS="AAPL,\nMSFT"\nSTREAM_NAME=s # trailing comment\n'
    environ: dict[str, str] = {}
    loaded = dotenv.load(write(tmp_path, text), environ)
    assert environ == {"ALERT_EMAIL": "ops@example.com", "PRODUCER_SYMBOLS": "AAPL,\nMSFT", "STREAM_NAME": "s"}
    assert loaded.sources["STREAM_NAME"] == ".env line 4"


def test_a_name_without_a_value_sets_nothing(tmp_path):
    environ: dict[str, str] = {}
    assert dotenv.load(write(tmp_path, "STREAM_NAME\n"), environ).sources == {} and environ == {}


def test_a_byte_order_mark_does_not_become_part_of_a_name(tmp_path):
    path = tmp_path / ".env"
    path.write_text("\ufeffAWS_REGION=eu-west-1\n", encoding="utf-8")
    environ: dict[str, str] = {}
    loaded = dotenv.load(path, environ)
    assert environ == {"AWS_REGION": "eu-west-1"} and loaded.sources == {"AWS_REGION": ".env line 1"}


def test_a_missing_file_sets_nothing(tmp_path):
    environ = {"A": "1"}
    loaded = dotenv.load(tmp_path / ".env", environ)
    assert environ == {"A": "1"} and loaded.sources == {} and loaded.skipped == {}


def test_another_file_is_named_by_its_path(tmp_path):
    path = tmp_path / "staging.env"
    path.write_text("STREAM_NAME=s\n")
    assert dotenv.load(path, {}).sources == {"STREAM_NAME": f"{path} line 1"}


EXAMPLE = ("AWS_ENDPOINT_URL=http://localhost:4566\nAWS_REGION=us-east-1\n"
           "AWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\nAWS_SESSION_TOKEN=tok\n")


def test_on_an_emulator_the_placeholder_keys_are_taken(tmp_path):
    environ = {"AWS_PROFILE": "dev"}
    loaded = dotenv.load(write(tmp_path, EXAMPLE), environ)
    assert environ["AWS_ACCESS_KEY_ID"] == "test" and environ["AWS_SECRET_ACCESS_KEY"] == "test"
    assert loaded.skipped == {}


def test_on_real_aws_a_profile_is_not_shadowed_by_dotenv_keys(tmp_path):
    environ = {"AWS_ENDPOINT_URL": "", "AWS_PROFILE": "dev"}
    loaded = dotenv.load(write(tmp_path, EXAMPLE), environ)
    assert environ == {"AWS_ENDPOINT_URL": "", "AWS_PROFILE": "dev", "AWS_REGION": "us-east-1"}
    assert loaded.sources == {"AWS_REGION": ".env line 2"}
    assert loaded.skipped == {"AWS_ACCESS_KEY_ID": ".env line 3", "AWS_SECRET_ACCESS_KEY": ".env line 4",
                              "AWS_SESSION_TOKEN": ".env line 5"}
    note = loaded.skipped_note()
    assert note and "\n" not in note
    assert note.startswith("not using AWS_ACCESS_KEY_ID (.env line 3), AWS_SECRET_ACCESS_KEY (.env line 4), "
                           "AWS_SESSION_TOKEN (.env line 5) from ")
    assert "AWS_PROFILE=dev" in note


def test_on_real_aws_a_profile_set_in_dotenv_counts_too(tmp_path):
    environ: dict[str, str] = {}
    loaded = dotenv.load(write(tmp_path, "AWS_PROFILE=dev\nAWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\n"),
                         environ)
    assert environ == {"AWS_PROFILE": "dev"} and set(loaded.skipped) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def test_on_real_aws_keys_already_in_the_environment_are_not_mixed_with_dotenv_ones(tmp_path):
    environ = {"AWS_ACCESS_KEY_ID": "AKIAREAL"}
    loaded = dotenv.load(write(tmp_path, "AWS_SECRET_ACCESS_KEY=test\nAWS_SESSION_TOKEN=tok\n"), environ)
    assert environ == {"AWS_ACCESS_KEY_ID": "AKIAREAL"}
    assert set(loaded.skipped) == {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    assert "already has AWS_ACCESS_KEY_ID" in (loaded.skipped_note() or "")


def test_on_real_aws_without_other_credentials_dotenv_keys_are_taken(tmp_path):
    environ: dict[str, str] = {}
    loaded = dotenv.load(write(tmp_path, "AWS_ACCESS_KEY_ID=AKIA1\nAWS_SECRET_ACCESS_KEY=s\n"), environ)
    assert environ == {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s"} and loaded.skipped == {}


def test_a_wrong_value_from_dotenv_is_pointed_at(tmp_path):
    environ: dict[str, str] = {}
    loaded = dotenv.load(write(tmp_path, "# where\nAWS_REGION=us-east-7\n"), environ)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ, sources=loaded.sources)
    assert str(caught.value).startswith("AWS_REGION='us-east-7' is not a region botocore knows")
    assert str(caught.value).endswith(" (set in .env line 2)")
