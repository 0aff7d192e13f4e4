"""Progress bars in a batch job's log: the bar redraws at most once a minute where its
stream is not a terminal, so long work does not fill the log with redraws."""
import io
import time

from mlff_tools.progress import LOG_INTERVAL, progress_bar

UPDATES = 50
PAUSE = 0.01        # s between updates: half a second in all, five of a terminal's redraws


class Terminal(io.StringIO):
    def isatty(self):
        return True


def redraws(text: str) -> int:
    return text.count("\r")


def test_a_log_gets_the_first_and_last_state_only():
    log = io.StringIO()
    with progress_bar(total=UPDATES, desc="train", file=log) as bar:
        for _ in range(UPDATES):
            time.sleep(PAUSE)
            bar.update(1)
    text = log.getvalue()
    # the opening draw, the closing one (and tqdm's clearing \r): not one per update
    assert redraws(text) <= 3, f"{redraws(text)} redraws in a log for {UPDATES} updates " \
                               f"over {UPDATES * PAUSE:g} s"
    assert f"{UPDATES}/{UPDATES}" in text.rsplit("\r", 1)[-1], "the log's last state is not final"


def test_a_terminal_redraws_more_often_than_a_log():
    terminal = Terminal()
    with progress_bar(total=UPDATES, file=terminal) as bar:
        assert bar.mininterval < LOG_INTERVAL, "a terminal's bar redraws like a log's"
        bar.update(UPDATES)
    assert f"{UPDATES}/{UPDATES}" in terminal.getvalue()


def test_disabled_bar_writes_nothing():
    log = io.StringIO()
    with progress_bar(total=10, file=log, enabled=False) as bar:
        bar.update(10)
    assert log.getvalue() == "", f"a disabled bar wrote {log.getvalue()!r}"
