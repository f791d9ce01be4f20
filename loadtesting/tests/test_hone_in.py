"""hone_in.py's run record: what it starts beside a search is stopped, whenever the search stops."""

from types import SimpleNamespace

import hone_in


def test_a_record_closed_while_it_starts_leaves_nothing_running(tmp_path, monkeypatch):
    options = SimpleNamespace(hone_results_dir=str(tmp_path), hone_sar="on", hone_time_limit=5)
    record = hone_in.RunRecord(SimpleNamespace(parsed_options=options, host="http://127.0.0.1:9"))

    def close_meanwhile(server_here):
        # What `close` does first, from the test_stop that came while this record was starting (a Ctrl-C at once).
        record.closed = True
        return {}

    monkeypatch.setattr(hone_in, "pinning", close_meanwhile)
    record.start()
    assert record.sadc is not None, "sadc should have started before close came"
    assert record.watch is None, "nothing starts once close has run"
    assert record.sadc.process is None, "the sadc started before close was left running"
