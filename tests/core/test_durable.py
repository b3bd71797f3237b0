"""Durable files and folders: a whole new file with the umask's mode; what a killed re-save set aside comes back."""


def test_durable_replace_moves_a_whole_file_with_the_umask_mode(tmp_path):
    import os

    from textrnn.core.durable import default_file_mode, durable_replace

    old = os.umask(0o027)
    try:
        assert default_file_mode() == 0o640
        tmp = tmp_path / "out.tmp"
        tmp.write_text("new")
        os.chmod(tmp, 0o600)
        (tmp_path / "out").write_text("old")
        durable_replace(tmp, tmp_path / "out")
    finally:
        os.umask(old)
    assert (tmp_path / "out").read_text() == "new" and not tmp.exists()
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o640


def test_what_a_killed_re_save_left_aside_is_put_back_and_stale_copies_removed(tmp_path):
    from textrnn.core.durable import restore_set_aside

    (tmp_path / ".step-00000008.old-1a2b3c4d").mkdir()  # killed between the renames: the only copy of step 8
    (tmp_path / ".step-00000008.old-1a2b3c4d" / "config.json").write_text("{}")
    (tmp_path / "step-00000004").mkdir()
    (tmp_path / ".step-00000004.old-5e6f7a8b").mkdir()  # killed after the new folder was in: a stale copy
    assert restore_set_aside(tmp_path) == [tmp_path / "step-00000008"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000004", "step-00000008"]
    assert (tmp_path / "step-00000008" / "config.json").is_file()
