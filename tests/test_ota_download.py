"""Downloading bundles from a real HTTP server on loopback: a transfer cut halfway resumes with
``Range``/``If-Range`` and ends with the same file; the size cap holds; the result installs."""
from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from talkerd.ota.download import fetch
from talkerd.ota.errors import BundleRejected, DownloadFailed

from .ota_helpers import FACE_ENGINE, bundle, installer, key, ota_config, write_trust


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, path: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.path = path
        self.cut_next_at = None
        """Close the connection after this many body bytes of the next reply."""
        self.requests = []


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        data = server.path.read_bytes()
        etag = '"%s"' % hashlib.sha256(data).hexdigest()[:16]
        wanted = self.headers.get("Range")
        server.requests.append((wanted, self.headers.get("If-Range")))
        start = 0
        if wanted and self.headers.get("If-Range") == etag:
            start = int(wanted.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        cut, server.cut_next_at = server.cut_next_at, None
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def served(tmp_path):
    signer, public = key(tmp_path / "keys", "publisher")
    path = bundle(tmp_path / "v1.bundle", 1, [signer], [FACE_ENGINE])
    server = _Server(path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/v1.bundle", public, tmp_path
    server.shutdown()
    server.server_close()


def test_a_download_cut_halfway_resumes_and_ends_with_the_same_file(served):
    server, url, public, tmp = served
    size = server.path.stat().st_size
    server.cut_next_at = size // 2
    lines = []
    got = fetch(url, tmp / "downloads", cap=size, retries=2, progress=lines.append)
    assert got.read_bytes() == server.path.read_bytes()
    assert server.requests[0] == (None, None)
    assert server.requests[1][0] == f"bytes={size // 2}-" and server.requests[1][1]  # resumed, validated
    assert any("resuming" in line for line in lines) and any("downloaded" in line for line in lines)
    cfg = ota_config(tmp, write_trust(tmp / "trust.json", [public]))
    assert installer(cfg).install(got).version == 1


def test_a_partial_download_is_kept_and_the_next_run_resumes(served):
    server, url, public, tmp = served
    size = server.path.stat().st_size
    server.cut_next_at = size // 3
    with pytest.raises(DownloadFailed, match="bytes kept, the next run resumes") as caught:
        fetch(url, tmp / "downloads", cap=size, retries=0)
    assert caught.value.exit_code == 75
    parts = list((tmp / "downloads").glob("*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size == size // 3
    got = fetch(url, tmp / "downloads", cap=size, retries=0)
    assert got.read_bytes() == server.path.read_bytes()
    assert server.requests[-1][0] == f"bytes={size // 3}-"


def test_a_bundle_over_the_cap_is_refused_before_it_is_read(served):
    server, url, public, tmp = served
    with pytest.raises(BundleRejected, match="over the cap") as caught:
        fetch(url, tmp / "downloads", cap=1000)
    assert caught.value.code == "too_large"
    assert not list((tmp / "downloads").glob("*.bundle"))


def test_install_from_a_url_on_the_command_line(served, capsys):
    from talkerd.ota import cli

    server, url, public, tmp = served
    write_trust(tmp / "trust.json", [public])
    config = tmp / "ota.toml"
    config.write_text('root = "store"\ntrust = "trust.json"\nreserve_mb = 0\ntrial_backend = "onnxruntime"\n'
                      '[platform]\ntensorrt = "none"\ncompute_capability = "none"\njetpack = "none"\n')
    server.cut_next_at = server.path.stat().st_size // 2
    assert cli.main(["--config", str(config), "install", url]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and "release 1 committed" in err
    assert (tmp / "store" / "current").resolve().name == "1"
    assert not list((tmp / "ota" / "downloads").iterdir())  # the finished download is not kept
