"""Issue 5's offline mode: `fathom dissect` on captures from other tools, checked against tshark."""
import json
from conftest import FATHOM, ROOT, run

FIXTURES = ROOT / "Tests" / "FathomDissectTests" / "Fixtures"


def tshark_http(path):
    out = run("tshark", "-r", str(path), "-Y", "http.request", "-T", "fields", "-e", "http.request.method",
              "-e", "http.request.uri").stdout
    return sorted(tuple(line.split("\t")) for line in out.splitlines())


def test_dissect_agrees_with_tshark_on_http(tmp_path):
    result = run(FATHOM, "dissect", str(FIXTURES / "http1.pcap"))
    calls = [json.loads(line) for line in result.stdout.splitlines()]
    # The compact form has no query string: compare method and path against tshark's URI without its query.
    ours = sorted((c["method"], c["path"]) for c in calls)
    theirs = sorted((m, uri.split("?")[0]) for m, uri in tshark_http(FIXTURES / "http1.pcap"))
    assert ours == theirs
    assert "calls" in result.stderr


def test_dissect_into_a_database_and_table_output(tmp_path):
    db = tmp_path / "calls.db"
    run(FATHOM, "dissect", "--out", str(db), str(FIXTURES / "dns.pcap"), str(FIXTURES / "grpc.pcap"))
    assert db.exists() and db.stat().st_size > 0
    table = run(FATHOM, "dissect", "--format", "table", str(FIXTURES / "grpc.pcap")).stdout
    assert "/fathom.Echo/Say" in table and table.splitlines()[0].startswith("TIME")


def test_bad_files_are_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"this is not a capture at all")
    result = run(FATHOM, "dissect", str(garbage), check=False)
    assert result.returncode == 1 and "byte offset 0" in result.stderr and "Usage" not in result.stderr
    torn = tmp_path / "torn.pcap"
    whole = (FIXTURES / "http1.pcap").read_bytes()
    torn.write_bytes(whole[: len(whole) - 7])
    result = run(FATHOM, "dissect", str(torn), check=False)
    assert result.returncode == 0 and "were dissected" in result.stderr
    missing = run(FATHOM, "dissect", str(tmp_path / "nope.pcap"), check=False)
    assert missing.returncode == 1 and "nope.pcap" in missing.stderr
