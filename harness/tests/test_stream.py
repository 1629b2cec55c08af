from gmemharness.stream import StreamParser


def test_events_split_across_reads_are_joined():
    parser = StreamParser()
    assert parser.feed(b'{"event":"hello","vers') == []
    assert parser.feed(b'ion":1}\n{"event":"start","case":"A.b"}\n') == [
        {"event": "hello", "version": 1}, {"event": "start", "case": "A.b"}]


def test_carriage_returns_and_nuls_from_the_serial_line_are_ignored():
    parser = StreamParser()
    assert parser.feed(b'\0{"event":"done","passed":1,"failed":0,"skipped":0}\r\n') == [
        {"event": "done", "passed": 1, "failed": 0, "skipped": 0}]


def test_lines_that_are_not_protocol_events_are_kept_aside():
    parser = StreamParser()
    assert parser.feed(b'garbage\n[1,2]\n{"no_event":1}\n{"event":"hello"}\n') == [{"event": "hello"}]
    assert parser.garbage == ["garbage", "[1,2]", '{"no_event":1}']


def test_a_last_line_without_newline_counts_when_the_guest_is_gone():
    parser = StreamParser()
    parser.feed(b'{"event":"start","case":"A.b"}')
    assert parser.events == []
    assert parser.finish() == [{"event": "start", "case": "A.b"}]
    assert parser.events == [{"event": "start", "case": "A.b"}]
