"""Checksummed downloads against a real HTTP server on loopback, and safe tar extraction."""

import contextlib
import hashlib
import http.server
import io
import tarfile
import threading

import numpy as np
import pytest
from test_voc import make_tar, one_error_line, run_script, voc_files, voc_label

from conftest import ROOT
from segaug.data.canonical import ClassTable, read_label, read_split, voc_class_table
from segaug.data.download import download, extract_tar, parse_checksum, verify_checksum
from segaug.data.voc import convert_voc, extract_voc
from segaug.errors import SegaugError

LIST = b"000032\n000039"


class Server:
    """A real http.server in a thread.

    ``fail[path]``: answer that many 500s first; ``truncate[path]``: that many responses
    announce the full length but send half; ``slow[path]``: that many responses wait
    ``delay`` seconds first."""

    def __init__(self, files, delay=0.6):
        self.files, self.fail, self.truncate, self.slow, self.hits = files, {}, {}, {}, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                if outer.slow.get(self.path, 0) > 0:
                    outer.slow[self.path] -= 1
                    threading.Event().wait(delay)  # not time.sleep: tests patch that
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
                if outer.truncate.get(self.path, 0) > 0:
                    outer.truncate[self.path] -= 1
                    data = data[: len(data) // 2]
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    data = make_tar(tmp_path / "src.tar", voc_files()).read_bytes()
    (tmp_path / "src.tar").unlink()
    s = Server({"/VOCtrainval.tar": data, "/list.txt": LIST})
    s.md5 = hashlib.md5(data).hexdigest()
    s.list_sha256 = hashlib.sha256(LIST).hexdigest()
    yield s
    s.close()


@pytest.fixture
def sleeps(monkeypatch):
    """Record the backoff waits instead of sleeping them."""
    waits = []
    monkeypatch.setattr("segaug.data.download.time.sleep", waits.append)
    return waits


def test_download_then_convert_voc(tmp_path, server):
    tar = tmp_path / "raw" / "voc2007.tar"
    assert download(f"{server.url}/VOCtrainval.tar", tar, f"md5:{server.md5}") == tar
    assert verify_checksum(tar, f"md5:{server.md5}")
    year_dir = extract_voc(tar, tmp_path / "x", "2007")
    assert year_dir == tmp_path / "x/VOCdevkit/VOC2007"
    convert_voc(year_dir, tmp_path / "ds")
    ds = tmp_path / "ds"
    assert read_split(ds / "sets/train.txt") == ["000032", "000039"]
    assert read_split(ds / "sets/val.txt") == ["000063"]
    assert ClassTable.load(ds / "classes.json") == voc_class_table()
    src = voc_files()
    for k, i in enumerate(("000032", "000039", "000063")):
        assert (ds / f"images/{i}.jpg").read_bytes() == src[f"VOCdevkit/VOC2007/JPEGImages/{i}.jpg"]
        assert np.array_equal(read_label(ds / f"labels/{i}.png", 21), voc_label(k))
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["voc2007.tar"]  # no temp left
    # already there and valid: kept, nothing fetched again
    download(f"{server.url}/VOCtrainval.tar", tar, f"md5:{server.md5}")
    assert server.hits.count("/VOCtrainval.tar") == 1


def test_scripts_download_and_prepare(tmp_path, server):
    tar = tmp_path / "raw" / "voc2007.tar"
    p = run_script(
        ROOT / "scripts/download.py",
        "--url",
        f"{server.url}/VOCtrainval.tar",
        "--checksum",
        f"md5:{server.md5}",
        "--out",
        tar,
        "--timeout",
        "10",
    )
    assert p.returncode == 0, p.stderr
    p = run_script(
        ROOT / "scripts/prepare_dataset.py",
        "--kind",
        "voc",
        "--year",
        "2007",
        "--voc-tar",
        tar,
        "--out",
        tmp_path / "ds",
    )
    assert p.returncode == 0, p.stderr
    assert len(list((tmp_path / "ds/labels").iterdir())) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "raw"]


def test_wrong_checksum_names_both_digests_and_leaves_nothing(tmp_path, server):
    out = tmp_path / "raw" / "voc2007.tar"
    url = f"{server.url}/VOCtrainval.tar"
    p = run_script(ROOT / "scripts/download.py", "--url", url, "--checksum", "md5:" + "0" * 32, "--out", out)
    line = one_error_line(p)
    assert url in line and f"expected {'0' * 32}, got {server.md5}" in line
    assert "checksum in config" in line and "corrupt" in line
    assert list((tmp_path / "raw").iterdir()) == []  # no file, no temp dir
    with pytest.raises(SegaugError, match=f"expected {'1' * 64}, got {server.list_sha256}"):
        download(f"{server.url}/list.txt", tmp_path / "l.txt", "sha256:" + "1" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_404_fails_at_once(tmp_path, server, sleeps):
    with pytest.raises(SegaugError, match=r"/missing.txt: HTTP 404 .*check the url in config"):
        download(f"{server.url}/missing.txt", tmp_path / "m.txt", f"sha256:{server.list_sha256}")
    assert server.hits.count("/missing.txt") == 1 and sleeps == []
    assert list(tmp_path.iterdir()) == []


def test_500_twice_then_success(tmp_path, server, sleeps):
    server.fail["/list.txt"] = 2
    download(f"{server.url}/list.txt", tmp_path / "l.txt", f"sha256:{server.list_sha256}", retries=3)
    assert server.hits.count("/list.txt") == 3
    assert sleeps == [1, 2]  # exponential backoff
    assert (tmp_path / "l.txt").read_bytes() == LIST
    assert read_split(tmp_path / "l.txt") == ["000032", "000039"]


def test_500_until_retries_run_out(tmp_path, server, sleeps):
    server.fail["/list.txt"] = 5
    with pytest.raises(SegaugError, match=r"download failed after 3 attempts \(HTTP 500"):
        download(f"{server.url}/list.txt", tmp_path / "l.txt", f"sha256:{server.list_sha256}", retries=2)
    assert server.hits.count("/list.txt") == 3 and sleeps == [1, 2]
    assert list(tmp_path.iterdir()) == []


def test_truncated_body_and_timeout_are_retried(tmp_path, server, sleeps):
    server.truncate["/VOCtrainval.tar"] = 1
    download(f"{server.url}/VOCtrainval.tar", tmp_path / "a.tar", f"md5:{server.md5}")
    assert server.hits.count("/VOCtrainval.tar") == 2 and len(sleeps) == 1
    server.slow["/list.txt"] = 1
    download(f"{server.url}/list.txt", tmp_path / "l.txt", f"sha256:{server.list_sha256}", timeout=0.2)
    assert server.hits.count("/list.txt") == 2 and len(sleeps) == 2


def test_connection_refused_is_retried_then_clear(tmp_path, sleeps):
    httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = httpd.server_address[1]
    httpd.server_close()  # nothing listens there now
    with pytest.raises(SegaugError, match="download failed after 2 attempts .*check the network"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", "md5:" + "0" * 32, retries=1)
    assert sleeps == [1]


def test_existing_file(tmp_path, server):
    out = tmp_path / "l.txt"
    out.write_text("mine")
    with pytest.raises(SegaugError, match="not ours to overwrite"):
        download(f"{server.url}/list.txt", out, f"sha256:{server.list_sha256}")
    assert out.read_text() == "mine" and server.hits == []


def test_checksum_syntax():
    assert parse_checksum("MD5:" + "A" * 32) == ("md5", "a" * 32)
    for bad in ("abc", "sha1:" + "0" * 40, "md5:123", "sha256:" + "z" * 64):
        with pytest.raises(SegaugError, match="expected 'md5:<32 hex digits>'"):
            parse_checksum(bad)


# ------------------------------------------------------------------ extraction


def evil_tar(path, name, kind="file", link=""):
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo("ok.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        info = tarfile.TarInfo(name)
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, link
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    return path


@pytest.mark.parametrize(
    "name,kind,link,why",
    [
        ("../escape.txt", "file", "", "'..' in path"),
        ("a/../../escape.txt", "file", "", "'..' in path"),
        ("/tmp/segaug-abs.txt", "file", "", "absolute path"),
        ("link", "symlink", "../../etc/passwd", "outside the archive"),
        ("link", "symlink", "/etc/passwd", "outside the archive"),
    ],
)
def test_extract_tar_refuses_unsafe_members(tmp_path, name, kind, link, why):
    tar = evil_tar(tmp_path / "evil.tar", name, kind, link)
    with pytest.raises(SegaugError, match=f"refusing to extract member .*{why}"):
        extract_tar(tar, tmp_path / "out" / "x")
    assert [p.name for p in tmp_path.iterdir()] == ["evil.tar"]  # nothing extracted anywhere


def test_extract_tar_members_and_corrupt_archive(tmp_path):
    tar = make_tar(tmp_path / "v.tar", voc_files())
    want = ["VOCdevkit/VOC2007/ImageSets/Segmentation/val.txt"]
    extract_tar(tar, tmp_path / "x", want)
    assert [str(p.relative_to(tmp_path / "x")) for p in (tmp_path / "x").rglob("*") if p.is_file()] == want
    with pytest.raises(SegaugError, match="1 requested members are not in the archive"):
        extract_tar(tar, tmp_path / "y", ["nope.txt"])
    assert not (tmp_path / "y").exists()
    (tmp_path / "bad.tar").write_bytes(tar.read_bytes()[:700])
    with pytest.raises(SegaugError, match="bad.tar: .*delete it and download again"):
        extract_tar(tmp_path / "bad.tar", tmp_path / "z")
    assert not (tmp_path / "z").exists()
