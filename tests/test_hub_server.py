"""The loopback Hub (tests/hub_server.py) against the real `huggingface_hub` client."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2
import pytest
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import _http

if TYPE_CHECKING:
    from hub_server import FakeHub

pytest_plugins = ("hub_server",)  # also registered by tests/conftest.py; registering twice is a no-op

REPO = "tester/dcgan-test"
README = "---\nlicense: mit\ntags:\n- ganzoo\n- gan\nlibrary_name: ganzoo\n---\n# A test model\n"


def _model_folder(root: Path, weights: bytes = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ") -> Path:
    """A model folder like `ganzoo push` uploads: card, weights, config and a sample grid."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text(README)
    (root / "model.safetensors").write_bytes(weights)
    (root / "config.json").write_text(json.dumps({"architecture": "dcgan", "config": {"z_dim": 8}}))
    (root / "samples.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return root


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def api(hub: FakeHub) -> HfApi:
    return HfApi(endpoint=hub.url, token=hub.write_token)


def test_binds_loopback_only(hub: FakeHub) -> None:
    host, port = hub.address
    assert host == "127.0.0.1"
    assert hub.url == f"http://127.0.0.1:{port}"
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    if sys.platform.startswith("linux"):  # all of 127/8 is loopback there: a wildcard bind would accept this
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.2", port), timeout=2).close()


def test_create_repo_and_exist_ok(hub: FakeHub, api: HfApi) -> None:
    url = api.create_repo(REPO)
    assert url.repo_id == REPO and url.startswith(hub.url) and url.endswith("/tester/dcgan-test")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(REPO)
    assert err.value.response.status_code == 409
    assert api.create_repo(REPO, exist_ok=True).repo_id == REPO
    assert api.create_repo("no-namespace").repo_id == "tester/no-namespace"  # the token's user
    assert hub.repos == [REPO, "tester/no-namespace"]
    assert len(hub.commits(REPO)) == 1 and hub.files(REPO) == {}  # the initial empty commit


def test_upload_folder_then_snapshot_download(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model")
    api.create_repo(REPO)
    info = api.upload_folder(repo_id=REPO, folder_path=folder, commit_message="Add model")
    assert info.oid == hub.commits(REPO)[-1] and info.commit_url.endswith(f"/commit/{info.oid}")
    assert hub.files(REPO) == _read_tree(folder)
    assert hub.commit_info(REPO, info.oid)["title"] == "Add model"
    assert ("POST", "/api/validate-yaml") in hub.requests  # the README's front matter was validated

    hub.requests.clear()
    path = snapshot_download(REPO, endpoint=hub.url, cache_dir=tmp_path / "cache")
    assert Path(path).name == info.oid
    assert _read_tree(Path(path)) == _read_tree(folder)
    assert ("GET", f"/api/models/{REPO}/revision/main") in hub.requests
    assert ("GET", f"/api/models/{REPO}/tree/{info.oid}") in hub.requests
    assert not [p for _, p in hub.requests if "xet" in p or "lfs" in p]

    weights = (folder / "model.safetensors").read_bytes()
    (entry,) = [f for f in api.list_repo_tree(REPO, recursive=True) if f.path == "model.safetensors"]
    assert entry.lfs is not None and entry.lfs.sha256 == hashlib.sha256(weights).hexdigest()
    assert entry.size == len(weights)

    # re-uploading identical files makes no commit (preupload answers each file's git oid)
    again = api.upload_folder(repo_id=REPO, folder_path=folder, commit_message="Same again")
    assert again.oid == info.oid and len(hub.commits(REPO)) == 2


def test_invalid_front_matter_is_rejected(api: HfApi) -> None:
    api.create_repo(REPO)
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        api.upload_file(
            path_or_fileobj=b"---\nlicense: mit\n# no closing line\n", path_in_repo="README.md", repo_id=REPO
        )


def test_revision_pinning(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    api.create_repo(REPO)
    first = api.upload_file(path_or_fileobj=b"v1", path_in_repo="model.safetensors", repo_id=REPO, commit_message="1")
    second = api.upload_file(path_or_fileobj=b"v2", path_in_repo="model.safetensors", repo_id=REPO, commit_message="2")
    assert hub.commits(REPO)[-2:] == [first.oid, second.oid]

    def download(revision: str | None, cache: str) -> bytes:
        kwargs = {"endpoint": hub.url, "cache_dir": tmp_path / cache, "revision": revision}
        return Path(hf_hub_download(REPO, "model.safetensors", **kwargs)).read_bytes()

    assert download(first.oid, "a") == b"v1"
    assert download(None, "a") == b"v2"
    assert download(second.oid, "b") == b"v2"
    snap = snapshot_download(REPO, revision=first.oid, endpoint=hub.url, cache_dir=tmp_path / "c")
    assert (Path(snap) / "model.safetensors").read_bytes() == b"v1"
    assert api.model_info(REPO, revision=first.oid).sha == first.oid


def test_branch_and_tag(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    main_oid = hub.put(REPO, {"config.json": b"{}"})
    api.create_branch(REPO, branch="dev")
    api.create_branch(REPO, branch="dev", exist_ok=True)
    info = api.upload_folder(
        repo_id=REPO, folder_path=_model_folder(tmp_path / "m"), revision="dev", commit_message="d"
    )
    assert hub.branches(REPO) == {"main": main_oid, "dev": info.oid}
    assert hub.commits(REPO, "dev")[-2:] == [main_oid, info.oid]
    assert hub.files(REPO) == {"config.json": b"{}"}  # main untouched
    assert {b.name for b in api.list_repo_refs(REPO).branches} == {"main", "dev"}
    path = hf_hub_download(REPO, "samples.png", revision="dev", endpoint=hub.url, cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == hub.files(REPO, "dev")["samples.png"]

    api.create_tag(REPO, tag="v0.1", revision="dev")
    assert hub.tags(REPO) == {"v0.1": info.oid}
    assert api.model_info(REPO, revision="v0.1").sha == info.oid


def test_not_found_errors(hub: FakeHub, tmp_path: Path) -> None:
    hub.put(REPO, {"config.json": b"{}"})
    kwargs = {"endpoint": hub.url, "cache_dir": tmp_path / "cache"}
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("tester/missing", "config.json", **kwargs)
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("tester/missing", **kwargs)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "config.json", revision="no-such-branch", **kwargs)
    with pytest.raises(RevisionNotFoundError):
        snapshot_download(REPO, revision="0" * 40, **kwargs)
    with pytest.raises(EntryNotFoundError) as err:
        hf_hub_download(REPO, "model.safetensors", **kwargs)
    assert isinstance(err.value, RemoteEntryNotFoundError) and err.value.response.status_code == 404


def test_writes_need_a_write_token(hub: FakeHub) -> None:
    hub.put(REPO, {"config.json": b"{}"})
    anonymous = HfApi(endpoint=hub.url, token=False)
    with pytest.raises(HfHubHTTPError, match="Authentication required") as err:
        anonymous.create_repo("tester/other")
    assert err.value.response.status_code == 401 and not isinstance(err.value, RepositoryNotFoundError)
    with pytest.raises(HfHubHTTPError) as err:
        anonymous.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=REPO)
    assert err.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError, match="Invalid credentials") as err:
        HfApi(endpoint=hub.url, token="hf_not_a_token").create_repo("tester/other")
    assert err.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError, match="'read' role") as err:
        HfApi(endpoint=hub.url, token=hub.read_token).upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id=REPO)
    assert err.value.response.status_code == 403
    assert hub.repos == [REPO] and hub.files(REPO) == {"config.json": b"{}"}
    assert anonymous.model_info(REPO).sha == hub.commits(REPO)[-1]  # public reads need no token


def test_private_repo(hub: FakeHub, tmp_path: Path) -> None:
    HfApi(endpoint=hub.url, token=hub.write_token).create_repo("tester/secret", private=True)
    hub.put("tester/secret", {"config.json": b"{}"})
    assert hub.is_private("tester/secret")
    kwargs = {"endpoint": hub.url, "cache_dir": tmp_path / "cache"}
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("tester/secret", "config.json", **kwargs)  # token=None: the fixture left no token around
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("tester/secret", token=False, **kwargs)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url).model_info("tester/secret")
    path = hf_hub_download("tester/secret", "config.json", token=hub.read_token, **kwargs)
    assert Path(path).read_bytes() == b"{}"


def test_offline_uses_the_cache_without_requests(hub: FakeHub, tmp_path: Path, monkeypatch) -> None:
    oid = hub.put(REPO, {"config.json": b"{}", "model.safetensors": b"w"})
    kwargs = {"endpoint": hub.url, "cache_dir": tmp_path / "cache"}
    online = snapshot_download(REPO, **kwargs)
    hub.requests.clear()
    assert snapshot_download(REPO, local_files_only=True, **kwargs) == online
    assert hf_hub_download(REPO, "config.json", local_files_only=True, **kwargs) == str(Path(online) / "config.json")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets at import
    assert snapshot_download(REPO, **kwargs) == online
    assert hub.requests == []
    assert Path(online).name == oid


def test_fail_next(hub: FakeHub, api: HfApi, tmp_path: Path, monkeypatch) -> None:
    hub.put(REPO, {"config.json": b"{}"})
    hub.fail_next(500)
    with pytest.raises(HfHubHTTPError) as err:  # HfApi calls do not retry
        api.model_info(REPO)
    assert err.value.response.status_code == 500
    assert api.model_info(REPO).id == REPO  # count=1: the next request is answered

    hub.fail_next(500, count=1)  # downloads retry a 5xx once more without waiting: recovers
    path = hf_hub_download(REPO, "config.json", endpoint=hub.url, cache_dir=tmp_path / "a")
    assert Path(path).read_bytes() == b"{}"

    sleeps: list[float] = []  # the retry back-off (1, 2, 4, 8, 8 s) is recorded instead of slept
    monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=sleeps.append))
    hub.fail_next(503, count=100, method="HEAD")
    hub.requests.clear()
    with pytest.raises(LocalEntryNotFoundError) as err:
        hf_hub_download(REPO, "config.json", endpoint=hub.url, cache_dir=tmp_path / "b")
    assert isinstance(err.value.__cause__, HfHubHTTPError) and err.value.__cause__.response.status_code == 503
    assert sleeps == [1, 2, 4, 8, 8] and len(hub.requests) == 7  # one try, then 1 + 5 retries


def test_delay_times_out_and_never_blocks_teardown(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    hub.put(REPO, {"config.json": b"{}"})
    cached = hf_hub_download(REPO, "config.json", endpoint=hub.url, cache_dir=tmp_path / "cache")
    hub.delay(5)
    with pytest.raises(httpx2.TimeoutException):
        api.model_info(REPO, timeout=0.2)
    # a HEAD that times out falls back to the cached file
    kwargs = {"endpoint": hub.url, "cache_dir": tmp_path / "cache", "etag_timeout": 0.2}
    assert hf_hub_download(REPO, "config.json", **kwargs) == cached
    hub.delay(0)
    assert api.model_info(REPO).id == REPO

    from hub_server import FakeHub  # imported by pytest_plugins (with assertion rewriting) by now

    with FakeHub() as other:  # stopping wakes a request that waits on a long delay
        other.delay(60)
        caught: list[BaseException] = []

        def call() -> None:
            try:
                HfApi(endpoint=other.url, token=False).model_info("a/b", timeout=30)
            except Exception as exc:
                caught.append(exc)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        while not other.requests:
            time.sleep(0.01)
        started = time.monotonic()
    thread.join(30)
    # woken by the stop, not by the 60 s delay running out (a generous bound: the machine may be loaded)
    assert time.monotonic() - started < 30 and not thread.is_alive() and caught


def test_tamper_changes_bytes_but_not_metadata(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    oid = hub.put(REPO, {"model.safetensors": b"good weights"})
    hub.tamper(REPO, "model.safetensors", b"evil weights")
    assert hub.commits(REPO)[-1] == oid and hub.files(REPO)["model.safetensors"] == b"evil weights"
    path = hf_hub_download(REPO, "model.safetensors", endpoint=hub.url, cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == b"evil weights"
    (entry,) = api.get_paths_info(REPO, ["model.safetensors"])
    assert entry.lfs.sha256 == hashlib.sha256(b"good weights").hexdigest()  # the Hub still vouches for the original


def test_env_for_a_subprocess(hub: FakeHub, tmp_path: Path) -> None:
    hub.put(REPO, {"config.json": b'{"z": 1}'})
    script = """
import json, pathlib
from huggingface_hub import HfApi, constants, snapshot_download
path = snapshot_download("tester/dcgan-test")
info = HfApi().upload_file(path_or_fileobj=b"new", path_in_repo="new.txt", repo_id="tester/dcgan-test")
print(json.dumps({"endpoint": constants.ENDPOINT, "path": path, "user": HfApi().whoami()["name"], "oid": info.oid,
                  "config": pathlib.Path(path, "config.json").read_text()}))
"""
    env = {**os.environ, **hub.env()}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["endpoint"] == hub.url and result["user"] == hub.user
    assert result["config"] == '{"z": 1}'
    assert Path(result["path"]).is_relative_to(Path(hub.env()["HF_HUB_CACHE"]))
    assert result["oid"] == hub.commits(REPO)[-1] and hub.files(REPO)["new.txt"] == b"new"


def test_fixture_isolates_hf_settings(hub: FakeHub) -> None:
    assert hub.home is not None
    assert os.environ["HF_HOME"] == str(hub.home) and "HF_TOKEN" not in os.environ
    assert constants.HF_HUB_CACHE == str(hub.home / "hub") and constants.HF_TOKEN_PATH == str(hub.home / "token")
    hub.put(REPO, {"config.json": b"{}"})
    path = Path(hf_hub_download(REPO, "config.json", endpoint=hub.url))  # no cache_dir: the fixture's cache
    assert path.is_relative_to(hub.home / "hub")
