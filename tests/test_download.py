"""The download path against a real HTTP server on loopback."""

import hashlib
import http.server
import subprocess
import sys
import threading

import pytest

from conftest import ROOT
from segaug.data.canonical import read_split
from segaug.data.download import download
from segaug.errors import SegaugError
from test_data import make_tar, voc_files


class Server:
    """A real http.server in a thread; ``fail[path]`` answers that many 500s first."""

    def __init__(self, files):
        self.files, self.fail, self.hits = files, {}, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                if outer.fail.get(self.path, 0) > 0:
                    outer.fail[self.path] -= 1
                    self.send_error(500, "try later")
                    return
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404, "not here")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def voc_server(tmp_path):
    data = make_tar(tmp_path / "src.tar", voc_files()).read_bytes()
    server = Server({"/VOCtrainval.tar": data, "/list.txt": b"000032\n000039"})
    server.md5 = hashlib.md5(data).hexdigest()
    yield server
    server.close()


def run_script(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True)


def test_download_verify_and_prepare(tmp_path, voc_server):
    tar = tmp_path / "raw" / "voc2007.tar"
    p = run_script(ROOT / "scripts/download.py", "--url", f"{voc_server.url}/VOCtrainval.tar",
                   "--checksum", f"md5:{voc_server.md5}", "--out", tar)  # fmt: skip
    assert p.returncode == 0, p.stderr
    p = run_script(ROOT / "scripts/prepare_dataset.py", "--kind", "voc", "--year", "2007",
                   "--voc-tar", tar, "--out", tmp_path / "ds")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert read_split(tmp_path / "ds/sets/val.txt") == ["000063"]
    assert len(list((tmp_path / "ds/labels").iterdir())) == 3
    assert sorted(x.name for x in tmp_path.iterdir() if x.name.startswith(".")) == []  # no temp left
    # present and valid: no second request
    download(f"{voc_server.url}/VOCtrainval.tar", tar, f"md5:{voc_server.md5}")
    assert voc_server.hits.count("/VOCtrainval.tar") == 1


def test_wrong_checksum_is_clear_and_leaves_nothing(tmp_path, voc_server):
    out = tmp_path / "raw" / "voc2007.tar"
    p = run_script(ROOT / "scripts/download.py", "--url", f"{voc_server.url}/VOCtrainval.tar",
                   "--checksum", "md5:" + "0" * 32, "--out", out)  # fmt: skip
    assert p.returncode == 2
    errors = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in p.stderr
    assert f"expected {'0' * 32}, got {voc_server.md5}" in p.stderr
    assert list((tmp_path / "raw").iterdir()) == []


def test_sha256_list_and_404(tmp_path, voc_server):
    digest = hashlib.sha256(b"000032\n000039").hexdigest()
    download(f"{voc_server.url}/list.txt", tmp_path / "l.txt", f"sha256:{digest}")
    assert read_split(tmp_path / "l.txt") == ["000032", "000039"]
    with pytest.raises(SegaugError, match="HTTP 404"):
        download(f"{voc_server.url}/missing.txt", tmp_path / "m.txt", f"sha256:{digest}")
    assert not (tmp_path / "m.txt").exists()


def test_5xx_is_retried_then_succeeds(tmp_path, voc_server, monkeypatch):
    monkeypatch.setattr("segaug.data.download.time.sleep", lambda s: None)
    voc_server.fail["/list.txt"] = 2
    digest = hashlib.sha256(b"000032\n000039").hexdigest()
    download(f"{voc_server.url}/list.txt", tmp_path / "l.txt", f"sha256:{digest}", retries=3)
    assert voc_server.hits.count("/list.txt") == 3
    voc_server.fail["/list.txt"] = 5
    with pytest.raises(SegaugError, match="HTTP 500"):
        download(f"{voc_server.url}/list.txt", tmp_path / "l2.txt", f"sha256:{digest}", retries=2)
    assert not (tmp_path / "l2.txt").exists()


def test_existing_file_with_other_content_is_not_overwritten(tmp_path, voc_server):
    out = tmp_path / "l.txt"
    out.write_text("mine")
    digest = hashlib.sha256(b"000032\n000039").hexdigest()
    with pytest.raises(SegaugError, match="not ours to overwrite"):
        download(f"{voc_server.url}/list.txt", out, f"sha256:{digest}")
    assert out.read_text() == "mine"
