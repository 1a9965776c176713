import pytest

from cronwarden import __version__
from cronwarden.cli import main


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cronwarden {__version__}"


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: cronwarden" in capsys.readouterr().out


def test_shards_must_be_between_1_and_256(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "257"):
        with pytest.raises(SystemExit):
            main(["run", "--namespace", "a", "--shards", bad])
        assert f"--shards must be between 1 and 256, not {bad}" in capsys.readouterr().err


def test_shards_imply_leader_election(monkeypatch: pytest.MonkeyPatch) -> None:
    import cronwarden.runtime.runner as runner
    from cronwarden.settings import Settings

    got: list[Settings] = []
    monkeypatch.setattr(runner, "run", lambda s: got.append(s) or 0)
    assert main(["run", "--namespace", "a", "--shards", "2", "--shard-filter", "client"]) == 0
    assert got[0].shards == 2
    assert got[0].leader_election
    assert got[0].shard_filter == "client"
    assert main(["run", "--namespace", "a"]) == 0
    assert got[1].shards == 1
    assert not got[1].leader_election


def test_a_bad_shard_filter_from_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CRONWARDEN_SHARD_FILTER", "server")
    with pytest.raises(SystemExit):
        main(["run", "--namespace", "a", "--shards", "2"])
    assert "--shard-filter must be one of auto, client, not 'server'" in capsys.readouterr().err
