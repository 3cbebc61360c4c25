"""A loopback, in-memory Hugging Face Hub for tests, and the pytest fixture `hub` that serves it.

The server speaks the part of the Hub protocol that `huggingface_hub` 2.4 uses to create repos, commit files
(regular uploads only: it never asks for LFS or Xet), create branches and tags, list trees and refs, and download
files (`hf_hub_download`, `snapshot_download`). It binds 127.0.0.1 on a free port and nothing else.

Usage in a test::

    def test_push(hub):
        api = HfApi(endpoint=hub.url, token=hub.write_token)
        api.create_repo("tester/model")
        ...
        assert hub.files("tester/model") == {...}

Settings of `huggingface_hub` (`HF_ENDPOINT`, `HF_HUB_OFFLINE`, `HF_HUB_CACHE`, `HF_HOME`) are read once at import,
so in the test process pass `endpoint=hub.url` explicitly; for a subprocess, use `env={**os.environ, **hub.env()}`.
The fixture points `HF_HOME`/`HF_HUB_CACHE` (environment and, if imported, `huggingface_hub.constants`) at a temp
folder and removes `HF_TOKEN`, so a real token is never read or sent.

Only the standard library is used by the server itself; pytest only for the fixture.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import os
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import pytest

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
"""The only address the server ever binds."""

DEFAULT_USER = "tester"
"""Namespace of the fixture's tokens; `create_repo("name")` without a namespace creates `tester/name`."""

LFS_SUFFIXES = (".safetensors",)
"""Files reported with `lfs: {oid: sha256, size, pointerSize}` in tree/paths-info/siblings answers (ETag = sha256).

They are still uploaded as regular files (preupload always answers `regular`), so the client never enters the
LFS/Xet upload protocol; the `lfs` block only mirrors what the real Hub reports for weights files.
"""

_JSON = "application/json; charset=utf-8"
_EMPTY_TREE_OID = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's empty tree


def _now() -> str:
    """The Hub's date format: `2024-01-31T12:00:00.000Z`."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (`git hash-object`): sha1 of `blob <size>\\0<data>`."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class _Blob:
    """A stored file: its bytes and the metadata computed when it was committed.

    `tamper` replaces `data` only, so ETag, oid and sha256 keep describing the bytes that were committed.
    """

    data: bytes
    oid: str  # git oid the Hub reports (of the LFS pointer for LFS files)
    sha256: str
    size: int
    lfs: bool

    @classmethod
    def of(cls, path: str, data: bytes) -> _Blob:
        sha256 = hashlib.sha256(data).hexdigest()
        lfs = path.endswith(LFS_SUFFIXES)
        oid = git_blob_oid(_lfs_pointer(sha256, len(data)) if lfs else data)
        return cls(data=data, oid=oid, sha256=sha256, size=len(data), lfs=lfs)

    @property
    def etag(self) -> str:
        """What the Hub sends as ETag: sha256 for LFS files, git blob oid otherwise (quoted on the wire)."""
        return self.sha256 if self.lfs else self.oid

    def tree_entry(self, path: str) -> dict[str, Any]:
        """The JSON entry of this file in tree / paths-info answers."""
        entry: dict[str, Any] = {"type": "file", "oid": self.oid, "size": self.size, "path": path}
        if self.lfs:
            pointer = _lfs_pointer(self.sha256, self.size)
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(pointer)}
        return entry


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class _Commit:
    oid: str
    parent: str | None
    files: dict[str, _Blob]
    title: str
    message: str
    author: str
    date: str


@dataclass
class _Repo:
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> _Commit | None:
        """A branch, a tag or a full 40-hex commit oid of this repo -> the commit; None when unknown."""
        oid = self.branches.get(revision) or self.tags.get(revision)
        if oid is None and revision in self.commits:
            oid = revision
        return self.commits.get(oid) if oid is not None else None


@dataclass
class _Rule:
    """A failure or delay to inject, for the next `count` matching requests (None = until cleared)."""

    count: int | None
    method: str | None
    path_contains: str | None
    value: float

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path
        )


class HubError(Exception):
    """A deterministic error answer: status, message, and the Hub's `X-Error-Code` when there is one."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = _JSON
    headers: dict[str, str] = field(default_factory=dict)


def _json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(obj).encode(), _JSON, headers or {})


class FakeHub:
    """An in-memory Hub served over HTTP on 127.0.0.1; the handle the `hub` fixture yields.

    Tokens: `write_token` (role write) and `read_token` (role read) belong to `user`; any other bearer token is
    rejected with 401 "Invalid credentials in Authorization header", as the real Hub does. A valid token may read
    every repo and a write token may write to every namespace (no per-namespace rights).
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, user: str = DEFAULT_USER) -> None:
        self.user = user
        self.write_token = "hf_loopback_write_token_0123456789"
        self.read_token = "hf_loopback_read_token_0123456789"
        self.tokens: dict[str, tuple[str, str]] = {self.write_token: (user, "write"), self.read_token: (user, "read")}
        """token -> (user, role); tests may add tokens."""
        self.home = Path(home) if home is not None else None
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request received, path without the query string and still URL-quoted."""
        self.server_errors: list[str] = []
        """Unexpected exceptions raised while answering (answered 400); the fixture fails the test on any."""
        self._repos: dict[str, _Repo] = {}
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self._failures: list[_Rule] = []
        self._delays: list[_Rule] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> FakeHub:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the hub is already running")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wake delayed answers, close open connections, release the port. Never blocks for long."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the server is bound to."""
        if self._server is None:
            raise RuntimeError("the hub is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """Endpoint to pass as `endpoint=` / `HF_ENDPOINT`: `http://127.0.0.1:PORT`."""
        host, port = self.address
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """Environment for a subprocess using `huggingface_hub` against this hub: endpoint, HF_HOME, write token."""
        env = {
            "HF_ENDPOINT": self.url,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_TOKEN": self.write_token,
        }
        if self.home is not None:
            env["HF_HOME"] = str(self.home)
            env["HF_HUB_CACHE"] = str(self.home / "hub")
        return env

    # -- direct state access (no HTTP) ----------------------------------------------------------------------------

    @property
    def repos(self) -> list[str]:
        """Ids of the repos that exist, sorted."""
        with self._lock:
            return sorted(self._repos)

    def create_repo(self, repo_id: str, *, private: bool = False, exist_ok: bool = False) -> None:
        """Create a repo with an initial empty commit on `main`, as the Hub does."""
        _check_repo_id(repo_id)
        with self._lock:
            if repo_id in self._repos:
                if exist_ok:
                    return
                raise ValueError(f"repo {repo_id!r} already exists")
            repo = _Repo(repo_id=repo_id, private=private, created_at=_now())
            self._repos[repo_id] = repo
            self._commit(repo, None, {}, "initial commit", "", self.user)

    def put(
        self,
        repo_id: str,
        files: dict[str, bytes],
        branch: str = "main",
        message: str = "Upload files",
        *,
        private: bool = False,
        replace: bool = False,
    ) -> str:
        """Commit `files` onto `branch` directly and return the commit oid.

        Creates the repo (with `private`) and the branch (from `main`) when missing. The files are added to the
        branch's snapshot, or replace it entirely with `replace=True`.
        """
        with self._lock:
            if repo_id not in self._repos:
                self.create_repo(repo_id, private=private)
            repo = self._repos[repo_id]
            if branch not in repo.branches:
                repo.branches[branch] = repo.branches["main"]
            head = repo.commits[repo.branches[branch]]
            snapshot = {} if replace else dict(head.files)
            snapshot.update({path: _Blob.of(path, bytes(data)) for path, data in files.items()})
            return self._commit(repo, branch, snapshot, message, "", self.user)

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of `repo_id` at `revision` (branch, tag or commit oid): path -> bytes."""
        with self._lock:
            commit = self._resolve_direct(repo_id, revision)
            return {path: blob.data for path, blob in sorted(commit.files.items())}

    def commits(self, repo_id: str, branch: str = "main") -> list[str]:
        """Commit oids reachable from `branch` (or any revision), oldest first, newest last."""
        with self._lock:
            repo = self._repo_direct(repo_id)
            commit: _Commit | None = self._resolve_direct(repo_id, branch)
            chain: list[str] = []
            while commit is not None:
                chain.append(commit.oid)
                commit = repo.commits.get(commit.parent) if commit.parent else None
            return chain[::-1]

    def commit_info(self, repo_id: str, oid: str) -> dict[str, Any]:
        """Title, message, author, date and parent of one commit."""
        with self._lock:
            commit = self._resolve_direct(repo_id, oid)
            return {
                "oid": commit.oid,
                "parent": commit.parent,
                "title": commit.title,
                "message": commit.message,
                "author": commit.author,
                "date": commit.date,
            }

    def branches(self, repo_id: str) -> dict[str, str]:
        """Branch name -> head commit oid."""
        with self._lock:
            return dict(self._repo_direct(repo_id).branches)

    def tags(self, repo_id: str) -> dict[str, str]:
        """Tag name -> commit oid."""
        with self._lock:
            return dict(self._repo_direct(repo_id).tags)

    def is_private(self, repo_id: str) -> bool:
        """Whether the repo is private."""
        with self._lock:
            return self._repo_direct(repo_id).private

    # -- failure knobs --------------------------------------------------------------------------------------------

    def tamper(self, repo_id: str, path: str, data: bytes, revision: str = "main") -> None:
        """Replace the bytes of `path` in the commit `revision` points to, without a new commit.

        The stored metadata (ETag, git oid, `lfs.oid` sha256, reported size) keeps describing the committed bytes,
        like a corrupted blob on a server; the HTTP Content-Length of HEAD/GET follows the new bytes.
        """
        with self._lock:
            commit = self._resolve_direct(repo_id, revision)
            if path not in commit.files:
                raise KeyError(f"{path!r} is not in {repo_id}@{revision}")
            old = commit.files[path]
            commit.files[path] = _Blob(data=bytes(data), oid=old.oid, sha256=old.sha256, size=old.size, lfs=old.lfs)

    def fail_next(
        self, status: int, count: int = 1, *, method: str | None = None, path_contains: str | None = None
    ) -> None:
        """Answer the next `count` matching requests with `status` and a JSON error (no X-Error-Code).

        Note: `huggingface_hub` retries 408, 429, 500, 502, 503 and 504 with back-off (1, 2, 4, 8, 8 s, 5 retries)
        on downloads, pagination and preupload; `HfApi` calls such as `model_info`, `create_repo` and the commit
        POST do not retry. For fast tests use a status it does not retry (e.g. 501), or record the back-off instead
        of sleeping: `monkeypatch.setattr(huggingface_hub.utils._http, "time", SimpleNamespace(sleep=list.append))`
        (that module uses `time` only for `time.sleep`).
        """
        with self._lock:
            self._failures.append(_Rule(count, method.upper() if method else None, path_contains, float(status)))

    def delay(
        self, seconds: float, count: int | None = None, *, method: str | None = None, path_contains: str | None = None
    ) -> None:
        """Wait `seconds` before answering matching requests: the next `count` ones, or all (None) until
        `delay(0)`. The wait ends at once when the hub stops, so teardown is never blocked."""
        with self._lock:
            if seconds <= 0:
                self._delays.clear()
                return
            self._delays.append(_Rule(count, method.upper() if method else None, path_contains, float(seconds)))

    def clear_failures(self) -> None:
        """Drop every pending `fail_next` and `delay` rule."""
        with self._lock:
            self._failures.clear()
            self._delays.clear()

    # -- internals: state -----------------------------------------------------------------------------------------

    def _repo_direct(self, repo_id: str) -> _Repo:
        repo = self._repos.get(repo_id)
        if repo is None:
            raise KeyError(f"no repo {repo_id!r}")
        return repo

    def _resolve_direct(self, repo_id: str, revision: str) -> _Commit:
        commit = self._repo_direct(repo_id).resolve(revision)
        if commit is None:
            raise KeyError(f"no revision {revision!r} in {repo_id!r}")
        return commit

    def _commit(
        self, repo: _Repo, branch: str | None, files: dict[str, _Blob], title: str, message: str, author: str
    ) -> str:
        """Record a commit on `branch` (None: the initial commit on main) and return its oid."""
        branch = branch or "main"
        parent = repo.branches.get(branch)
        digest = hashlib.sha1()
        digest.update(f"{repo.repo_id}\n{parent}\n{next(self._counter)}\n{title}\n{message}\n".encode())
        for path, blob in sorted(files.items()):
            digest.update(f"{path}\0{blob.oid}\n".encode())
        oid = digest.hexdigest()
        repo.commits[oid] = _Commit(oid, parent, dict(files), title, message, author, _now())
        repo.branches[branch] = oid
        return oid

    def _pick(self, rules: list[_Rule], method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in rules:
                if rule.matches(method, path):
                    if rule.count is not None:
                        rule.count -= 1
                        if rule.count <= 0:
                            rules.remove(rule)
                    return rule
        return None

    # -- internals: HTTP --------------------------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        """Answer one request (called on the server's handler thread)."""
        method = handler.command
        raw_path, _, query = handler.path.partition("?")
        self.requests.append((method, raw_path))
        try:
            body = handler.read_body()
        except (ValueError, OSError) as exc:
            handler.close_connection = True
            reply = _json_reply({"error": f"Bad request body: {exc}"}, 400)
            handler.send_reply(reply, head=method == "HEAD")
            return
        delay = self._pick(self._delays, method, raw_path)
        if delay is not None and self._stopping.wait(delay.value):
            handler.close_connection = True
            return
        failure = self._pick(self._failures, method, raw_path)
        if failure is not None:
            status = int(failure.value)
            msg = f"Injected failure: HTTP {status} from the loopback hub"
            reply = _json_reply({"error": msg}, status, {"X-Error-Message": msg})
        else:
            try:
                reply = self._route(handler, method, raw_path, parse_qs(query), body)
            except HubError as err:
                reply = _json_reply({"error": err.message}, err.status, {"X-Error-Message": err.message, **err.headers})
                if err.code:
                    reply.headers["X-Error-Code"] = err.code
            except Exception as exc:  # a bug here must not become a 5xx that the client retries
                logger.exception("loopback hub: error answering %s %s", method, raw_path)
                self.server_errors.append(f"{method} {raw_path}: {exc!r}")
                reply = _json_reply({"error": f"Loopback hub internal error: {exc!r}"}, 400)
        handler.send_reply(reply, head=method == "HEAD")

    def _route(self, handler: _Handler, method: str, raw_path: str, query: dict[str, list[str]], body: bytes) -> _Reply:
        parts = raw_path.strip("/").split("/")
        token = self._auth(handler.headers.get("Authorization"))
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._validate_yaml(body)
        if parts[:2] == ["api", "whoami-v2"] and method == "GET":
            return self._whoami(token)
        if parts[:2] == ["api", "repos"] and len(parts) == 3:
            if parts[2] == "create" and method == "POST":
                return self._create_repo(token, _json_body(body))
            if parts[2] == "delete" and method == "DELETE":
                return self._delete_repo(token, _json_body(body))
        if len(parts) >= 4 and parts[:2] == ["api", "models"]:
            return self._api_model(method, parts, query, body, token)
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve_file(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), token)
        logger.warning("loopback hub: no route for %s %s", method, raw_path)
        raise HubError(404, f"Not found: the loopback hub does not serve {method} {raw_path}")

    def _auth(self, header: str | None) -> tuple[str, str] | None:
        """The (user, role) of the bearer token, None without one; 401 for a token that is not known."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HubError(401, "Invalid credentials in Authorization header")
        identity = self.tokens.get(token.strip())
        if identity is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return identity

    @staticmethod
    def _require_write(token: tuple[str, str] | None) -> str:
        if token is None:
            raise HubError(401, "Authentication required: writing to the Hub needs a token with the 'write' role.")
        user, role = token
        if role != "write":
            raise HubError(403, f"Your token has the '{role}' role: writing to the Hub needs the 'write' role.")
        return user

    def _readable(self, repo_id: str, token: tuple[str, str] | None) -> _Repo:
        """The repo, or RepoNotFound (401 without a token for a private repo, like the real Hub)."""
        repo = self._repos.get(repo_id)
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and token is None:
            raise HubError(401, "Invalid username or password.", "RepoNotFound")
        return repo

    def _revision(self, repo: _Repo, quoted_rev: str) -> _Commit:
        revision = unquote(quoted_rev)
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # -- endpoints --------------------------------------------------------------------------------------------

    def _validate_yaml(self, body: bytes) -> _Reply:
        content = str(_json_body(body).get("content", ""))
        lines = content.splitlines()
        if lines and lines[0].strip() == "---" and not any(line.strip() == "---" for line in lines[1:]):
            msg = "Invalid YAML metadata: the front matter opened by '---' is never closed"
            return _json_reply({"errors": [{"message": msg}], "warnings": []}, 400)
        return _json_reply({"errors": [], "warnings": []})

    def _whoami(self, token: tuple[str, str] | None) -> _Reply:
        if token is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        user, role = token
        return _json_reply(
            {
                "type": "user",
                "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                "name": user,
                "fullname": user,
                "email": None,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "loopback", "role": role}},
            }
        )

    def _create_repo(self, token: tuple[str, str] | None, payload: dict[str, Any]) -> _Reply:
        user = self._require_write(token)
        repo_type = payload.get("type") or "model"
        if repo_type != "model":
            raise HubError(400, f"The loopback hub only serves model repos, not {repo_type!r}")
        name = payload.get("name")
        namespace = payload.get("organization") or user
        if not isinstance(name, str) or not name:
            raise HubError(400, "Missing repo name")
        repo_id = f"{namespace}/{name}"
        try:
            _check_repo_id(repo_id)
        except ValueError as exc:
            raise HubError(400, str(exc)) from None
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        url = f"{self.url}/{repo_id}"
        with self._lock:
            if repo_id in self._repos:
                msg = "You already created this model repo"
                return _json_reply({"error": msg, "url": url}, 409, {"X-Error-Message": msg})
            self.create_repo(repo_id, private=private)
        return _json_reply({"url": url, "name": repo_id, "id": hashlib.sha1(repo_id.encode()).hexdigest()[:24]})

    def _delete_repo(self, token: tuple[str, str] | None, payload: dict[str, Any]) -> _Reply:
        user = self._require_write(token)
        repo_id = f"{payload.get('organization') or user}/{payload.get('name')}"
        with self._lock:
            if repo_id not in self._repos:
                raise HubError(404, "Repository not found", "RepoNotFound")
            del self._repos[repo_id]
        return _Reply(200, b"", "text/plain")

    def _api_model(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: bytes, token: tuple[str, str] | None
    ) -> _Reply:
        repo_id = f"{parts[2]}/{parts[3]}"
        action = parts[4] if len(parts) > 4 else None
        rest = parts[5:]
        with self._lock:
            if action in ("preupload", "commit", "branch", "tag", "settings") and method in ("POST", "PUT", "DELETE"):
                self._require_write(token)
            repo = self._readable(repo_id, token)
            if method == "GET" and action is None:
                return self._model_info(repo, repo.resolve("main"), query)
            if method == "GET" and action == "revision" and len(rest) == 1:
                return self._model_info(repo, self._revision(repo, rest[0]), query)
            if method == "GET" and action == "tree" and rest:
                commit = self._revision(repo, rest[0])
                return self._tree(commit, unquote("/".join(rest[1:])), _flag(query, "recursive"))
            if method == "POST" and action == "paths-info" and len(rest) == 1:
                return self._paths_info(self._revision(repo, rest[0]), body)
            if method == "GET" and action == "refs":
                return self._refs(repo)
            if method == "GET" and action == "commits" and len(rest) == 1:
                return self._commit_list(repo, self._revision(repo, rest[0]))
            if method == "POST" and action == "preupload" and len(rest) == 1:
                return self._preupload(repo, rest[0], query, body)
            if method == "POST" and action == "commit" and len(rest) == 1:
                return self._commit_endpoint(repo, rest[0], query, body, token)
            if action == "branch" and len(rest) == 1 and method in ("POST", "DELETE"):
                return self._branch(repo, method, unquote(rest[0]), body)
            if action == "tag" and len(rest) == 1 and method in ("POST", "DELETE"):
                return self._tag(repo, method, rest[0], body)
            if action == "settings" and method == "PUT":
                return self._settings(repo, body)
        raise HubError(404, f"Not found: the loopback hub does not serve {method} /{'/'.join(parts)}")

    def _model_info(self, repo: _Repo, commit: _Commit | None, query: dict[str, list[str]]) -> _Reply:
        assert commit is not None
        blobs = _flag(query, "blobs")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update({"size": blob.size, "blobId": blob.oid})
                if blob.lfs:
                    pointer = _lfs_pointer(blob.sha256, blob.size)
                    sibling["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": len(pointer)}
            siblings.append(sibling)
        namespace = repo.repo_id.split("/")[0]
        return _json_reply(
            {
                "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": namespace,
                "sha": commit.oid,
                "lastModified": commit.date,
                "createdAt": repo.created_at,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
            }
        )

    def _tree(self, commit: _Commit, prefix: str, recursive: bool) -> _Reply:
        prefix = prefix.strip("/")
        base = f"{prefix}/" if prefix else ""
        under = {path: blob for path, blob in commit.files.items() if path.startswith(base)}
        if prefix and not under:
            raise HubError(404, f"Entry not found: {prefix}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        entries: dict[str, dict[str, Any]] = {}
        for path, blob in sorted(under.items()):
            rel = path[len(base) :].split("/")
            depth = len(rel) if recursive else 1
            for i in range(1, min(depth, len(rel) - 1) + 1):  # folders on the way
                folder = base + "/".join(rel[:i])
                folder_oid = hashlib.sha1(f"tree {folder} {commit.oid}".encode()).hexdigest()
                entries.setdefault(folder, {"type": "directory", "oid": folder_oid, "size": 0, "path": folder})
            if recursive or len(rel) == 1:
                entries[path] = blob.tree_entry(path)
        return _json_reply(list(entries.values()))

    def _paths_info(self, commit: _Commit, body: bytes) -> _Reply:
        form = parse_qs(body.decode("utf-8"))
        out = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.files:
                out.append(commit.files[path].tree_entry(path))
            elif any(p.startswith(path + "/") for p in commit.files):
                folder_oid = hashlib.sha1(f"tree {path} {commit.oid}".encode()).hexdigest()
                out.append({"type": "directory", "oid": folder_oid, "size": 0, "path": path})
        return _json_reply(out)

    def _refs(self, repo: _Repo) -> _Reply:
        def ref(name: str, kind: str, oid: str) -> dict[str, str]:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

        return _json_reply(
            {
                "branches": [ref(n, "heads", o) for n, o in sorted(repo.branches.items())],
                "converts": [],
                "tags": [ref(n, "tags", o) for n, o in sorted(repo.tags.items())],
                "pullRequests": [],
            }
        )

    def _commit_list(self, repo: _Repo, commit: _Commit | None) -> _Reply:
        out = []
        while commit is not None:
            out.append(
                {
                    "id": commit.oid,
                    "authors": [{"user": commit.author}],
                    "date": commit.date,
                    "title": commit.title,
                    "message": commit.message,
                }
            )
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return _json_reply(out)

    def _branch_head(self, repo: _Repo, quoted_rev: str, query: dict[str, list[str]]) -> _Commit:
        """The head commit of the branch a write targets (writes go to branches only)."""
        if _flag(query, "create_pr"):
            raise HubError(400, "The loopback hub does not support pull requests (create_pr)")
        branch = unquote(quoted_rev)
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch} (writes go to an existing branch)", "RevisionNotFound")
        return repo.commits[repo.branches[branch]]

    def _preupload(self, repo: _Repo, quoted_rev: str, query: dict[str, list[str]], body: bytes) -> _Reply:
        head = self._branch_head(repo, quoted_rev, query)
        files = _json_body(body).get("files")
        if not isinstance(files, list):
            raise HubError(400, "preupload: 'files' must be a list")
        out = []
        for item in files:
            path = item.get("path") if isinstance(item, dict) else None
            if not isinstance(path, str):
                raise HubError(400, "preupload: every file needs a 'path'")
            existing = head.files.get(path)
            out.append(
                {
                    "path": path,
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    # the client skips a file whose oid equals git_hash(content) ("unchanged")
                    "oid": git_blob_oid(existing.data) if existing is not None else None,
                }
            )
        return _json_reply({"files": out, "commitOid": head.oid})

    def _commit_endpoint(
        self, repo: _Repo, quoted_rev: str, query: dict[str, list[str]], body: bytes, token: tuple[str, str] | None
    ) -> _Reply:
        head = self._branch_head(repo, quoted_rev, query)
        branch = unquote(quoted_rev)
        header: dict[str, Any] | None = None
        files = dict(head.files)
        for number, line in enumerate(body.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                key, value = item["key"], item["value"]
            except (ValueError, KeyError, TypeError):
                raise HubError(400, f"commit: line {number} is not a {{'key', 'value'}} JSON object") from None
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"commit: unsupported encoding {value.get('encoding')!r}")
                path = str(value["path"]).strip("/")
                files[path] = _Blob.of(path, base64.b64decode(value["content"]))
            elif key == "lfsFile":  # only a same-repo copy of a file the repo already stores sends this
                path = str(value["path"]).strip("/")
                known = self._lfs_object(repo, str(value.get("oid")))
                if known is None:
                    raise HubError(400, f"commit: LFS object {value.get('oid')} for {path!r} was never uploaded")
                files[path] = _Blob.of(path, known.data)
            elif key == "deletedFile":
                path = str(value["path"]).strip("/")
                if path not in files:
                    raise HubError(404, f"commit: cannot delete {path!r}: not in {branch}", "EntryNotFound")
                del files[path]
            elif key == "deletedFolder":
                folder = str(value["path"]).strip("/") + "/"
                files = {p: b for p, b in files.items() if not p.startswith(folder)}
            else:
                raise HubError(400, f"commit: operation {key!r} is not supported by the loopback hub")
        if header is None or not str(header.get("summary", "")).strip():
            raise HubError(400, "commit: the first line must be a header with a non-empty summary")
        parent = header.get("parentCommit")
        if parent and parent != head.oid:
            raise HubError(412, f"A commit has happened since {parent}. Please refresh and try again.")
        assert token is not None
        oid = self._commit(repo, branch, files, str(header["summary"]), str(header.get("description", "")), token[0])
        return _json_reply(
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.url}/{repo.repo_id}/commit/{oid}",
                "hookOutput": "",
            }
        )

    @staticmethod
    def _lfs_object(repo: _Repo, sha256: str) -> _Blob | None:
        """A blob of any commit of `repo` with this sha256 (the repo's LFS object store)."""
        for commit in repo.commits.values():
            for blob in commit.files.values():
                if blob.sha256 == sha256:
                    return blob
        return None

    def _branch(self, repo: _Repo, method: str, branch: str, body: bytes) -> _Reply:
        if method == "DELETE":
            if branch == "main":
                raise HubError(403, "You cannot delete the default branch")
            if branch not in repo.branches:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            del repo.branches[branch]
            return _json_reply({})
        if branch in repo.branches or branch in repo.tags:
            raise HubError(409, f"Reference already exists: {branch}")
        start = _json_body(body).get("startingPoint") if body else None
        commit = self._revision(repo, quote(start, safe="")) if start else repo.commits[repo.branches["main"]]
        repo.branches[branch] = commit.oid
        return _json_reply({})

    def _tag(self, repo: _Repo, method: str, quoted: str, body: bytes) -> _Reply:
        if method == "DELETE":
            tag = unquote(quoted)
            if tag not in repo.tags:
                raise HubError(404, f"Invalid rev id: {tag}", "RevisionNotFound")
            del repo.tags[tag]
            return _json_reply({})
        commit = self._revision(repo, quoted)
        tag = _json_body(body).get("tag")
        if not isinstance(tag, str) or not tag:
            raise HubError(400, "Missing tag name")
        if tag in repo.tags or tag in repo.branches:
            raise HubError(409, f"Reference already exists: {tag}")
        repo.tags[tag] = commit.oid
        return _json_reply({})

    def _settings(self, repo: _Repo, body: bytes) -> _Reply:
        payload = _json_body(body)
        if "visibility" in payload:
            repo.private = payload["visibility"] == "private"
        if "private" in payload:
            repo.private = bool(payload["private"])
        return _json_reply({"private": repo.private})

    def _resolve_file(self, repo_id: str, quoted_rev: str, quoted_path: str, token: tuple[str, str] | None) -> _Reply:
        with self._lock:
            repo = self._readable(repo_id, token)
            commit = self._revision(repo, quoted_rev)
            path = unquote(quoted_path)
            blob = commit.files.get(path)
            if blob is None:
                raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        return _Reply(
            200,
            blob.data,
            "application/octet-stream",
            {"X-Repo-Commit": commit.oid, "ETag": f'"{blob.etag}"', "Accept-Ranges": "none"},
        )


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise HubError(400, "The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise HubError(400, "The request body must be a JSON object")
    return data


def _flag(query: dict[str, list[str]], name: str) -> bool:
    values = query.get(name) or query.get(f"{name}[]") or []
    return any(v.lower() in ("1", "true", "yes") for v in values)


def _check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or any(c in repo_id for c in " ?#%\\"):
        raise ValueError(f"repo id must be 'namespace/name', got {repo_id!r}")


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer on 127.0.0.1:0 that can close its open keep-alive connections on stop."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((HOST, 0), _Handler)

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's socket.getfqdn() (a reverse DNS lookup) and bind the loopback only.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every answer carries Content-Length
    server_version = "LoopbackHub/1.0"
    timeout = 60  # an idle keep-alive connection is dropped after this many seconds
    server: _Server

    def do_GET(self) -> None:
        """Every method goes to the hub's router."""
        self.server.hub._handle(self)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def read_body(self) -> bytes:
        """The request body: Content-Length or chunked transfer encoding."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_reply(self, reply: _Reply, head: bool) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("X-Request-Id", f"loopback-{id(reply):x}")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not head and reply.body:
                self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:  # the client went away (timeout test, or the hub is stopping)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("loopback hub: " + format, *args)


def _isolate_hf_settings(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Point HF_HOME/HF_HUB_CACHE at `home` (env and already-read constants) and drop any token from the env."""
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is None:
        try:
            from huggingface_hub import constants  # type: ignore[no-redef]
        except ImportError:  # the server itself does not need the client
            return
    for name, value in (
        ("HF_HOME", str(home)),
        ("HF_HUB_CACHE", str(home / "hub")),
        ("HUGGINGFACE_HUB_CACHE", str(home / "hub")),
        ("HF_ASSETS_CACHE", str(home / "assets")),
        ("HF_XET_CACHE", str(home / "xet")),
        ("HF_TOKEN_PATH", str(home / "token")),
        ("HF_STORED_TOKENS_PATH", str(home / "stored_tokens")),
        ("HF_HUB_OFFLINE", False),
    ):
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, value)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running loopback Hub (function scope) with HF_HOME/HF_HUB_CACHE in a temp folder; stopped on teardown.

    Fails the test at teardown if the server hit an unexpected internal error.
    """
    home = tmp_path / "hf-home"
    home.mkdir()
    _isolate_hf_settings(monkeypatch, home)
    server = FakeHub(home=home).start()
    try:
        yield server
    finally:
        server.stop()
    if server.server_errors:
        pytest.fail("loopback hub internal errors:\n" + "\n".join(server.server_errors))
