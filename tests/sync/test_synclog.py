"""The sync log read from its end: the last lines only, a line still being written left out."""

from __future__ import annotations

from toolkit.sync import synclog


def test_tail_log_reads_the_last_lines_and_leaves_a_line_being_written(tmp_path):
    path = tmp_path / "state" / "pipe-sync.log"
    log = synclog.SyncLog(path, "pipe")
    for n in range(5000):
        log.write(synclog.CHANGE_APPLIED, dn=f"uid=u{n}", change_number=n)
    log.close()
    with open(path, "a") as out:
        out.write('{"type": "change-applied", "dn": "uid=half')  # no newline yet
    last = synclog.tail_log(path, max_lines=10, chunk=256)
    assert [line["change_number"] for line in last] == list(range(4990, 5000))
    assert len(synclog.tail_log(path, max_lines=100_000)) == 5000
    assert synclog.tail_log(tmp_path / "missing.log") == []
