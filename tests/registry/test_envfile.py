import os
import stat

import pytest

from wilton_core.registry.envfile import merged_environ, read_env_file, write_env_file


def test_write_is_0600_and_merges(tmp_path):
    p = tmp_path / ".env.wilton"
    p.write_text("# comment\nexport OLD=1\nKEEP='quoted value'\n")
    os.chmod(p, 0o644)
    write_env_file(p, {"GROQ_API_KEY": "gsk_secret", "OLD": "2"})
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert read_env_file(p) == {"GROQ_API_KEY": "gsk_secret", "OLD": "2", "KEEP": "quoted value"}
    assert not (tmp_path / ".env.wilton.tmp").exists()


def test_refuses_bad_names_and_multiline_values(tmp_path):
    with pytest.raises(ValueError):
        write_env_file(tmp_path / "e", {"BAD-NAME": "x"})
    with pytest.raises(ValueError):
        write_env_file(tmp_path / "e", {"K": "a\nB=c"})
    assert not (tmp_path / "e").exists()


def test_merged_environ(tmp_path):
    p = tmp_path / "e"
    write_env_file(p, {"A": "file"})
    assert merged_environ(p, {"A": "env", "B": "env"}) == {"A": "file", "B": "env"}
    assert merged_environ(tmp_path / "missing", {"B": "1"}) == {"B": "1"}
    assert read_env_file(tmp_path / "missing") == {}
