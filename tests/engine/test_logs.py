"""Third-party output goes to the log file, prefgen's own to the console: Python streams, warnings, logging, C-level
writes to the file descriptors and child processes alike; streams picked up during a capture still work after it."""

import logging
import subprocess
import sys
import textwrap

import pytest

from prefgen.core.errors import PrefgenError
from prefgen.engine.logs import capture, log_path

NOISY = textwrap.dedent(
    """
    import logging, os, subprocess, sys, warnings
    from pathlib import Path
    from prefgen.engine.logs import capture

    with capture(Path(sys.argv[1])) as found:
        print("print to stdout")
        print("print to stderr", file=sys.stderr)
        warnings.warn("a FutureWarning", FutureWarning)
        logging.error("Failed to download weights")  # open_clip's way: the root logger, configured on first use
        os.write(2, b"C++ writes to fd 2\\n")
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('a child process\\\\n')"], check=True)
        print("prefgen's own line", file=found.console)
    print("after: stderr is the console again", file=sys.stderr)
    logging.error("a handler made during the capture writes to the console after it")
    print(found.path)
    """
)


def test_third_party_output_goes_to_the_log_and_prefgen_keeps_the_console(tmp_path):
    log = tmp_path / "logs" / "build.log"
    done = subprocess.run([sys.executable, "-c", NOISY, str(log)], capture_output=True, text=True, check=True)
    assert done.stdout == f"{log}\n"
    assert done.stderr.splitlines() == [
        "prefgen's own line",
        "after: stderr is the console again",
        "ERROR:root:a handler made during the capture writes to the console after it",
    ]
    text = log.read_text()
    for line in (
        "print to stdout",
        "print to stderr",
        "FutureWarning: a FutureWarning",
        "ERROR:root:Failed to download weights",
        "C++ writes to fd 2",
        "a child process",
    ):
        assert line in text, line
    assert "prefgen's own line" not in text


def test_an_empty_log_is_removed_with_the_folders_made_for_it(tmp_path):
    (tmp_path / "store").mkdir()
    with capture(tmp_path / "store" / ".prefgen" / "logs" / "quiet.log") as found:
        pass
    assert found.path is None and list((tmp_path / "store").iterdir()) == []


def test_a_capture_inside_another_writes_to_the_outer_log(tmp_path):
    with capture(tmp_path / "outer.log") as outer:
        with capture(tmp_path / "inner.log") as inner:
            print("from the inner capture")
        assert inner is outer
    assert "from the inner capture" in (tmp_path / "outer.log").read_text()
    assert not (tmp_path / "inner.log").exists()


def test_a_handler_made_during_a_capture_survives_it(tmp_path, capsys):
    logger = logging.getLogger("prefgen-test-late-handler")
    logger.propagate = False
    with capture(tmp_path / "x.log"):
        handler = logging.StreamHandler()  # binds the stand-in that is sys.stderr now
        logger.addHandler(handler)
        logger.warning("during")
    try:
        logger.warning("after")  # the stand-in now writes to the stream it replaced: no closed-file error
    finally:
        logger.removeHandler(handler)
    assert "during" in (tmp_path / "x.log").read_text()
    assert "after" in capsys.readouterr().err


def test_log_paths_are_named_by_kind_and_time(tmp_path):
    path = log_path(tmp_path / ".prefgen" / "logs", "build")
    assert path.parent == tmp_path / ".prefgen" / "logs"
    assert path.name.startswith("build-") and path.suffix == ".log"
    assert log_path(tmp_path, "build") != path


def test_a_folder_that_cannot_be_written_sends_the_log_to_the_temp_folder(tmp_path):
    (tmp_path / "store").write_text("a file where the store's folder should be")
    with capture(tmp_path / "store" / ".prefgen" / "logs" / "build-1.log") as found:
        print("noise")
    assert found.path.parent.name == "prefgen-logs" and found.path.name == "build-1.log"
    assert found.path.read_text() == "noise\n"
    found.path.unlink()


def test_an_error_raised_inside_names_the_log(tmp_path):
    with pytest.raises(PrefgenError) as raised:
        with capture(tmp_path / "x.log"):
            print("what the library said")
            raise PrefgenError("the build failed")
    assert raised.value.log_file == tmp_path / "x.log"
    with pytest.raises(PrefgenError) as quiet:
        with capture(tmp_path / "empty.log"):
            raise PrefgenError("nothing was printed")
    assert not hasattr(quiet.value, "log_file")
