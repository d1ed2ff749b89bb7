import orjson

from crm_bridge.spool import Spool


def records(*numbers: int) -> list[dict]:
    return [{"linkedid": f"1700000000.{n}", "name": "José Müller", "n": n} for n in numbers]


def read_all(spool: Spool) -> list[dict]:
    return [document for batch in spool.batches(2) for document in batch]


def test_documents_come_back_in_order_in_batches(tmp_path):
    spool = Spool(tmp_path / "spool" / "interactions.jsonl")
    assert not spool.pending() and read_all(spool) == []
    spool.append(records(1, 2, 3))
    spool.append(records(4, 5))
    assert [len(batch) for batch in spool.batches(2)] == [2, 2, 1]
    assert read_all(spool) == records(1, 2, 3, 4, 5)
    spool.clear()
    assert not spool.pending() and read_all(spool) == []


def test_a_torn_last_line_is_cut_before_new_appends(tmp_path):
    path = tmp_path / "interactions.jsonl"
    Spool(path).append(records(1, 2))
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines(keepends=True)[0][:30])  # a crash mid-write
    spool = Spool(path)  # reopened after the crash
    assert path.read_bytes() == whole
    spool.append(records(3))
    assert read_all(spool) == records(1, 2, 3)


def test_a_damaged_line_is_skipped_and_the_rest_kept(tmp_path):
    path = tmp_path / "interactions.jsonl"
    Spool(path).append(records(1, 2, 3))
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"2", b"7")  # bit rot: the checksum no longer matches
    path.write_bytes(b"".join(lines))
    assert read_all(Spool(path)) == records(1, 3)


def test_each_line_is_json_with_a_checksum(tmp_path):
    path = tmp_path / "interactions.jsonl"
    Spool(path).append(records(1))
    line = orjson.loads(path.read_bytes())
    assert set(line) == {"crc32", "record"} and line["record"] == records(1)[0]
