"""Settings layering, sources, validation errors and secrets, through the public functions and CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codestill.config import explain_settings, load_settings
from codestill.errors import ConfigError

CLI = str(Path(sys.executable).with_name("codestill"))


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("CODESTILL_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray ./codestill.toml
    return monkeypatch


def test_layers_in_order_default_file_env_flag(clean_env, tmp_path):
    (tmp_path / "codestill.toml").write_text(
        '[llm]\nmodel = "openai:a@http://h/v1"\ntimeout_s = 5\ntemperature = 0.9\n[sandbox.limits]\ncpu_s = 3\n')
    clean_env.setenv("CODESTILL_LLM__TIMEOUT_S", "7")
    clean_env.setenv("CODESTILL_LLM__TEMPERATURE", "0.7")
    s = load_settings(flags={"llm.temperature": 0.1})
    assert (s.llm.model, s.llm.timeout_s, s.llm.temperature) == ("openai:a@http://h/v1", 7.0, 0.1)
    assert s.sandbox.limits.cpu_s == 3 and s.llm.max_retries == 4
    sources = {k: src for k, _, src in explain_settings(flags={"llm.temperature": 0.1})}
    assert sources["llm.model"] == "file codestill.toml"
    assert sources["llm.timeout_s"] == "env"
    assert sources["llm.temperature"] == "flag"
    assert sources["sandbox.limits.cpu_s"] == "file codestill.toml"
    assert sources["llm.max_retries"] == "default"


def test_explicit_config_file_wins_over_the_default_one(clean_env, tmp_path):
    (tmp_path / "codestill.toml").write_text('runs_dir = "from-default"\n')
    other = tmp_path / "other.toml"
    other.write_text('runs_dir = "from-other"\n')
    assert load_settings(other).runs_dir == Path("from-other")
    assert load_settings().runs_dir == Path("from-default")


@pytest.mark.parametrize(("toml", "needle"), [
    ("[llm\nmodel=1", "not valid TOML"),
    ('[llm]\nmodle = "x"\n', "llm.modle"),
    ("[llm]\ntimeout_s = -1\n", "llm.timeout_s"),
])
def test_bad_files_name_the_setting_and_the_file(clean_env, tmp_path, toml, needle):
    (tmp_path / "codestill.toml").write_text(toml)
    with pytest.raises(ConfigError, match=r"codestill\.toml") as e:
        load_settings()
    assert needle in str(e.value)


def test_bad_env_names_the_variable(clean_env):
    clean_env.setenv("CODESTILL_LLM__MAX_RETRIES", "many")
    with pytest.raises(ConfigError, match="CODESTILL_LLM__MAX_RETRIES"):
        load_settings()


def test_missing_config_file(clean_env, tmp_path):
    with pytest.raises(ConfigError, match="no such settings file"):
        load_settings(tmp_path / "nope.toml")


def test_secrets_are_masked_and_never_recorded(clean_env):
    clean_env.setenv("CODESTILL_LLM__API_KEY", "sk-very-secret-123")
    s = load_settings()
    assert s.llm.api_key is not None and s.llm.api_key.get_secret_value() == "sk-very-secret-123"
    record = json.dumps(s.record())
    assert "sk-very-secret" not in record and "api_key" not in record
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(explain_settings())
    assert dict((k, v) for k, v, _ in explain_settings())["llm.api_key"] == "******** (set)"


def test_config_show_cli(clean_env, tmp_path):
    (tmp_path / "codestill.toml").write_text('[llm]\nmodel = "openai:m@http://h:1/v1"\n')
    env = {**os.environ, "CODESTILL_LLM__API_KEY": "sk-cli-secret", "CODESTILL_SANDBOX__POOL_SIZE": "3"}
    done = subprocess.run([CLI, "config", "show", "--json", "--set", "llm.temperature=0.5"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = {r["key"]: r for r in json.loads(done.stdout)}
    assert rows["llm.model"]["source"] == "file codestill.toml"
    assert rows["sandbox.pool_size"] == {"key": "sandbox.pool_size", "value": "3", "source": "env"}
    assert rows["llm.temperature"]["source"] == "flag"
    assert "sk-cli-secret" not in done.stdout
    bad = subprocess.run([CLI, "config", "show", "--set", "llm.timeout_s"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "expected KEY=VALUE" in bad.stderr and "Traceback" not in bad.stderr
