"""The Hugging Face Hub and the catalogue: resolve a model name, find and verify its files, publish a model folder.

All Hub traffic and caching go through huggingface_hub. Its settings are read here at call time (endpoint,
offline mode, cache folder, token), so they can change within one process. A name resolves, in order, to:
a local run or model folder; a pretrained catalogue entry declared by a plugin (sha256 of each pinned file); a Hub
repository id (`user/repo`, also written `hf-hub:user/repo`).

A catalogue entry's files come from the first of: the model folder shipped in its plugin's package
(`PretrainedCfg.files`), huggingface_hub's cache, the Hub (at the pinned `revision`). Whatever the source, the
files pass one check, `_verify`, against the entry's `sha256`. A shipped copy that fails it is refused (reinstalling
the distribution is the fix), not silently replaced by a download.

This module turns names into verified folders and folders into Hub commits; it never builds a `GANModel`, and so
never imports `ganzoo.model`, whose `push_to_hub` calls `push`. Loading a folder into a model is `ganzoo.load`'s
job, one layer up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganzoo import __version__
from ganzoo._io import sha256_of
from ganzoo._runlock import check_not_busy
from ganzoo.errors import GanzooError, GanzooUsageError, PluginError, UnknownNameError, WeightsError, unknown_name

if TYPE_CHECKING:

    from ganzoo.interfaces import PretrainedCfg
    from ganzoo.model import GANModel
    from ganzoo.serialization import ModelParts

__all__ = ["Availability", "NotPublishedError", "Source", "availability", "locate", "pull", "push", "repo_files",
           "resolve", "sha256_of"]

logger = logging.getLogger(__name__)

HF_PREFIX = "hf-hub:"
#: how `model.info["source"]` starts for a model loaded from the folder shipped in a plugin's package
SHIPPED_PREFIX = "shipped:"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: what a ganzoo model repository holds; nothing else is downloaded or uploaded
MODEL_FILES = ["config.json", "generator.safetensors", "discriminator.safetensors", "README.md", "samples.png"]
REQUIRED_FILES = ("config.json", "generator.safetensors")
#: the files `load` reads; a shipped copy must pin each one it holds (README.md and samples.png are never read)
LOADED_FILES = ("config.json", "generator.safetensors", "discriminator.safetensors")


class NotPublishedError(GanzooError):
    """A catalogue entry whose weights can be had nowhere yet: neither shipped nor on the Hub."""


@dataclass(frozen=True)
class Source:
    """What a model name points at: kind is 'local', 'catalogue' or 'hub' (nothing is looked up on disk or online)."""

    kind: str
    location: str  # a folder for 'local', a repo id otherwise
    revision: str | None = None
    entry: PretrainedCfg | None = None
    architecture: str | None = None


# ---------------------------------------------------------------------------------------------------------------------
# settings, read when used


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def _offline() -> bool:
    from huggingface_hub import constants

    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or bool(constants.HF_HUB_OFFLINE)


def _timeout() -> float:
    """Seconds to wait for the Hub to answer a metadata request (HF_HUB_ETAG_TIMEOUT, default 10)."""
    from huggingface_hub import constants

    return float(constants.HF_HUB_ETAG_TIMEOUT)


def _cache_dir() -> str | None:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


# ---------------------------------------------------------------------------------------------------------------------
# resolving names


def resolve(name: str, revision: str | None = None) -> Source:
    """Decide what `name` refers to, without downloading anything."""
    path = Path(name).expanduser()
    if path.exists():
        return Source("local", str(path))
    if name.startswith((".", "/", "~")) or name.endswith(("/", os.sep)) or name.count("/") > 1:
        raise GanzooUsageError(f"{name} does not exist; pass a run or model folder, a catalogue name "
                               "(`ganzoo list --pretrained`) or a Hub repo id user/name")
    if name.startswith(HF_PREFIX):
        repo_id = name[len(HF_PREFIX):]
        if not _REPO_ID.match(repo_id):
            raise GanzooUsageError(f"{repo_id!r} is not a Hub repository id; write it as user/name")
        return Source("hub", repo_id, revision)
    from ganzoo.registry import get_pretrained, list_pretrained

    try:
        architecture, entry = get_pretrained(name)
    except UnknownNameError:
        if _REPO_ID.match(name):
            return Source("hub", name, revision)
        raise unknown_name("model", name, list_pretrained(),
                           hint="or a run/model folder, or a Hub repo id user/name") from None
    return Source("catalogue", entry.repo_id, revision or entry.revision, entry, architecture)


def _recipe(entry: PretrainedCfg, architecture: str) -> str:
    return entry.recipe or f"ganzoo train --arch {architecture} --data {entry.dataset or 'DATA'}"


def _how_to_train(entry: PretrainedCfg, architecture: str) -> tuple[str, str]:
    """The command that trains an entry into a run folder, and that folder."""
    how = _recipe(entry, architecture)
    run = f"runs/{entry.name}"
    if " --out " not in f" {how} " and " -o " not in f" {how} ":
        how += f" --out {run}"
    else:
        run = "its run folder"
    return how, run


def _not_published(entry: PretrainedCfg, architecture: str) -> NotPublishedError:
    how, run = _how_to_train(entry, architecture)
    return NotPublishedError(f"{entry.name} is in the catalogue but its weights are not published yet; train it "
                             f"yourself with `{how}`, then load {run}")


# ---------------------------------------------------------------------------------------------------------------------
# files shipped in a plugin's package


def _reinstall(architecture: str) -> str:
    """The command that restores the files of the distribution that registered `architecture`."""
    from ganzoo.registry import plugin_record

    record = plugin_record(architecture)
    pin = f"=={record.version}" if record.version else ""
    return f"`pip install --force-reinstall --no-deps {record.distribution}{pin}`"


def _shipped_folder(entry: PretrainedCfg, architecture: str) -> Path | None:
    """The entry's shipped model folder when the installed package holds it (config.json and the generator).

    None when the entry ships nothing or the files are absent; a malformed `files` is a `PluginError`.
    """
    if not entry.shipped:
        return None
    from ganzoo.registry import package_path

    folder = package_path(architecture, entry.files)
    if folder is None or not all((folder / name).is_file() for name in REQUIRED_FILES):
        return None
    return folder


def _from_package(source: Source) -> Path | None:
    """A catalogue entry's verified shipped folder, or None when the Hub is the place to look (see `locate`)."""
    entry, architecture = source.entry, source.architecture
    if entry is None or architecture is None or not entry.shipped or source.revision != entry.revision:
        return None  # another revision than the pinned one was asked for: only the Hub has it
    folder = _shipped_folder(entry, architecture)
    if folder is not None:
        _verify(folder, entry, copy=f"the shipped copy in {folder}", fix=f"reinstall with {_reinstall(architecture)}",
                complete=True)
        logger.info("%s: using the copy shipped in %s", entry.name, folder)
        return folder
    if not entry.on_hub:
        raise WeightsError(f"{entry.name} ships as {entry.files} in the {architecture} plugin's package, but the "
                           f"installed package lacks it; reinstall with {_reinstall(architecture)}")
    logger.warning("%s: the installed package lacks its shipped copy (%s); using the Hub's pinned revision",
                   entry.name, entry.files)
    return None


@dataclass(frozen=True)
class Availability:
    """Where a catalogue entry's weights can be had, and what loading it needs.

    `where` is 'shipped' (in the installed package), 'hub@REV' (pinned on the Hub), 'not yet', 'missing' (declared
    shipped, not installed, not on the Hub) or 'broken' (the plugin declares its files wrongly); `needs` says what
    loading takes, in words; `folder` is the shipped folder when there is one.
    """

    where: str
    needs: str
    folder: Path | None = None


def availability(name: str) -> Availability:
    """Where the catalogue entry `name` can be had (looks at the installed files; no network, no hashing)."""
    from ganzoo.data import BUILTIN
    from ganzoo.registry import get_pretrained

    architecture, entry = get_pretrained(name)
    try:
        folder = _shipped_folder(entry, architecture)
    except PluginError as exc:
        return Availability("broken", str(exc))
    if folder is not None:
        return Availability("shipped", "nothing: loads offline", folder)
    if entry.shipped:
        fix = f"the installed package lacks its shipped copy: reinstall with {_reinstall(architecture)}"
        if entry.on_hub:
            return Availability(f"hub@{entry.revision[:7]}", f"a download from {entry.repo_id} ({fix})")
        return Availability("missing", fix)
    if entry.on_hub:
        return Availability(f"hub@{entry.revision[:7]}", f"a download from {entry.repo_id}, cached after")
    data = "" if entry.dataset in BUILTIN else f"{entry.dataset or 'its data'} (downloaded) + "
    return Availability("not yet", f"{data}training: {_recipe(entry, architecture)}")


# ---------------------------------------------------------------------------------------------------------------------
# downloading


def _hub_error(exc: Exception, repo_id: str, revision: str | None) -> GanzooError:
    """One-line errors for what huggingface_hub raises."""
    from huggingface_hub import errors

    where = f"{repo_id}@{revision}" if revision else repo_id
    if isinstance(exc, errors.RevisionNotFoundError):
        return GanzooUsageError(f"the Hub repo {repo_id} has no revision {revision!r}; check the branch or commit id")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return GanzooUsageError(f"no local folder or Hub repo named {repo_id!r} (a private repo needs a login: "
                                "`hf auth login` or HF_TOKEN)")
    if isinstance(exc, errors.LocalEntryNotFoundError):
        cause = exc.__cause__ or exc.__context__
        if not _offline() and isinstance(cause, errors.HfHubHTTPError):  # the Hub answered, with an error
            return _hub_error(cause, repo_id, revision)
        if _offline():
            return GanzooError(f"{where} is not in the local cache and offline mode is on (HF_HUB_OFFLINE); "
                               "go online once to download it")
        return GanzooError(f"cannot reach the Hub to download {where} and it is not cached: {_short(exc)}; "
                           "check the network (or HF_ENDPOINT)")
    if isinstance(exc, errors.EntryNotFoundError):
        return WeightsError(f"the Hub repo {where} lacks a file ganzoo needs ({_short(exc)}); "
                            "it was not written by `ganzoo push`")
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        return GanzooError(f"the Hub answered {status} for {where}: {_short(exc)}")
    return GanzooError(f"cannot download {where}: {_short(exc)}; check the network (or HF_ENDPOINT)")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:197] + "...") if len(text) > 200 else text or type(exc).__name__


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Keep huggingface_hub's progress bars off the terminal (the CLI owns it), unless the user asked for them."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") is not None or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


def _is_network_failure(exc: BaseException) -> bool:
    """No answer from the Hub at all (refused, unreachable, timed out), as opposed to an answer that says no."""
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    # huggingface_hub's transport (requests, httpx or httpx2 by version) names its network errors alike
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "ConnectError", "ConnectionError", "TimeoutException", "Timeout"})


def _download(repo_id: str, revision: str | None) -> Path:
    """Download the model files of a repo into the Hub cache (or find them there); returns the snapshot folder.

    File by file rather than `snapshot_download`, so that every request, the repo listing included, has a timeout
    (HF_HUB_ETAG_TIMEOUT for metadata, HF_HUB_DOWNLOAD_TIMEOUT for contents), and only the files a ganzoo model
    holds, under the fixed names of MODEL_FILES, are ever written. When the Hub cannot be reached, a cached copy is
    used.
    """
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    where = f"{repo_id}@{revision}" if revision else repo_id
    offline = _offline()
    names: list[str] = list(MODEL_FILES)
    network_error: Exception | None = None
    logger.info("fetching %s%s", where, " from the cache (offline)" if offline else "")
    try:
        with _no_progress_bars():
            if not offline:
                try:
                    info = HfApi(endpoint=_endpoint(), library_name="ganzoo", library_version=__version__).repo_info(
                        repo_id, revision=revision, timeout=_timeout())
                except Exception as exc:
                    if not _is_network_failure(exc):
                        raise
                    network_error = exc  # try the cache below
                else:  # files are fetched by the revision asked for, so the cache records its ref for offline use
                    listed = {sibling.rfilename for sibling in info.siblings or []}
                    names = [name for name in MODEL_FILES if name in listed]
            folder: Path | None = None
            for name in names:
                try:
                    path = hf_hub_download(repo_id, name, revision=revision, cache_dir=_cache_dir(),
                                           endpoint=_endpoint(), local_files_only=offline or network_error is not None,
                                           etag_timeout=_timeout(), library_name="ganzoo",
                                           library_version=__version__)
                except EntryNotFoundError:  # also raised for a file missing from the cache
                    if name in REQUIRED_FILES:
                        raise
                    continue
                folder = Path(path).parent
    except GanzooError:
        raise
    except Exception as exc:  # huggingface_hub and httpx errors, network failures: one line, no traceback
        if network_error is not None:
            raise GanzooError(f"cannot reach the Hub to download {where} and it is not cached "
                              f"({_short(network_error)}); check the network (or HF_ENDPOINT)") from None
        raise _hub_error(exc, repo_id, revision) from None
    if network_error is not None:
        logger.warning("cannot reach the Hub (%s); using the cached copy of %s", _short(network_error), where)
    for required in REQUIRED_FILES:
        if folder is None or not (folder / required).is_file():
            raise WeightsError(f"the Hub repo {where} has no {required}, so it is not a ganzoo model; "
                               "publish it with `ganzoo push` (or check the repo id and revision)")
    assert folder is not None
    return folder


def _verify(folder: Path, entry: PretrainedCfg, *, copy: str, fix: str, complete: bool = False) -> None:
    """Check a copy of an entry's files against the sha256 the entry pins; the one check for every source.

    `copy` names the copy and `fix` says what restores it, in the one-line error. With `complete`, every file `load`
    reads that the folder holds must be pinned: a shipped copy has nothing else that fixes its bytes, while a Hub
    download is also fixed by the commit id it was fetched at.
    """
    for filename, expected in entry.sha256.items():
        path = folder / filename
        if not path.is_file():
            raise WeightsError(f"{entry.name}: {filename} is missing from {copy}; {fix}")
        actual = sha256_of(path)
        if actual != expected:
            raise WeightsError(f"{entry.name}: sha256 of {filename} is {actual[:12]}..., the catalogue pins "
                               f"{expected[:12]}...; {copy} is corrupt or was changed: {fix}")
    if complete:
        unpinned = [name for name in LOADED_FILES if (folder / name).is_file() and name not in entry.sha256]
        if unpinned:
            raise PluginError(f"{entry.name}: the catalogue entry pins no sha256 for {', '.join(unpinned)} of "
                              f"{copy}; pin every file ganzoo loads (`benchmarks/zoo.py --ship` prints the lines)")


def _cache_rm(repo_id: str) -> str:
    """The command that removes a repo from huggingface_hub's cache (it reads the same HF_HOME/HF_HUB_CACHE)."""
    return f"hf cache rm model/{repo_id} -y"


def _verify_cache(folder: Path, repo_id: str) -> None:
    """Check cached weight files against the sha256 their cache blobs are named after (the Hub's LFS hash)."""
    for path in folder.glob("*.safetensors"):
        blob = Path(os.path.realpath(path)).name
        if path.is_symlink() and re.fullmatch(r"[0-9a-f]{64}", blob) and sha256_of(path) != blob:
            raise WeightsError(f"the cached {path.name} of {repo_id} was changed after it was downloaded (its sha256 "
                               f"differs from the Hub's); remove it with `{_cache_rm(repo_id)}` and pull again")


def _from_hub(source: Source) -> Path:
    """A catalogue entry's or Hub repo's files from huggingface_hub's cache or the Hub, verified; their folder."""
    try:
        folder = _download(source.location, source.revision)
    except GanzooError:
        # an unpublished entry's repo is missing or unreachable (offline, no network): either way the news the user
        # needs is that there is nothing to download yet, and how to train it
        if source.kind == "catalogue" and source.entry is not None and not source.entry.published:
            assert source.architecture is not None
            raise _not_published(source.entry, source.architecture) from None
        raise
    _verify_cache(folder, source.location)
    entry = source.entry
    if source.kind == "catalogue" and entry is not None and entry.on_hub:
        if source.revision == entry.revision:
            _verify(folder, entry, copy="the cached copy", fix=f"remove it with `{_cache_rm(entry.repo_id)}` and pull "
                    "again")
        else:
            logger.warning("%s: revision %s is not the pinned one; checksums not verified", entry.name,
                           source.revision)
    return folder


def _locate(source: Source) -> tuple[Path, str]:
    if source.kind == "local":
        return Path(source.location), source.location
    shipped = _from_package(source)
    if shipped is not None:
        return shipped, f"{SHIPPED_PREFIX}{shipped}"
    where = f"{HF_PREFIX}{source.location}" + (f"@{source.revision}" if source.revision else "")
    return _from_hub(source), where


def locate(name: str | Source, revision: str | None = None) -> tuple[Path, str]:
    """The verified folder `name` (or a `Source` that `resolve` returned) resolves to, and where it came from.

    The second value is what `model.info["source"]` holds: the path itself for a local folder, `shipped:FOLDER` for
    the copy shipped in a plugin's package, `hf-hub:REPO@REVISION` for a download (or a copy in the Hub cache).
    """
    return _locate(name if isinstance(name, Source) else resolve(name, revision))


def pull(name: str, revision: str | None = None) -> Path:
    """The verified folder of a catalogue entry (its shipped copy, else downloaded into the Hub cache) or Hub repo."""
    return locate(name, revision)[0]


# ---------------------------------------------------------------------------------------------------------------------
# publishing


def push(model_or_folder: GANModel | str | os.PathLike[str], repo_id: str, *, private: bool = False,
         branch: str | None = None, message: str | None = None, token: str | None = None) -> dict[str, Any]:
    """Publish a run folder, model folder or model to the Hub in one commit; returns its url and commit id.

    A model (anything with `save_pretrained`, which is how `GANModel.push_to_hub` calls this) is first saved to a
    temporary folder. The token comes from huggingface_hub's usual places (HF_TOKEN, `hf auth login`) unless given,
    and is never logged.
    """
    import tempfile

    from huggingface_hub import CommitOperationAdd, HfApi

    repo_id = _repo_id(repo_id)
    if isinstance(model_or_folder, (str, os.PathLike)):  # not a model that a running training is still writing
        check_not_busy(model_or_folder)
    with tempfile.TemporaryDirectory(prefix="ganzoo-push-") as tmp:
        if not isinstance(model_or_folder, (str, os.PathLike)):
            model_or_folder = model_or_folder.save_pretrained(Path(tmp) / "model")
        files, model = _repo_files(model_or_folder, repo_id)
        operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=content if isinstance(content, bytes)
                                         else str(content)) for name, content in files.items()]
        api = HfApi(endpoint=_endpoint(), token=token, library_name="ganzoo", library_version=__version__)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if branch:
                api.create_branch(repo_id, branch=branch, exist_ok=True)
            info = api.create_commit(repo_id, operations, revision=branch,
                                     commit_message=message or f"Upload {model.architecture} with ganzoo {__version__}")
        except Exception as exc:
            raise _push_error(exc, repo_id) from None
    return {"repo_id": repo_id, "commit": info.oid, "commit_url": info.commit_url, "revision": branch or "main"}


def _repo_id(repo_id: str) -> str:
    repo_id = repo_id[len(HF_PREFIX):] if repo_id.startswith(HF_PREFIX) else repo_id
    if not _REPO_ID.match(repo_id):
        raise GanzooUsageError(f"{repo_id!r} is not a Hub repository id; write it as user/name")
    return repo_id


def _repo_files(folder: str | os.PathLike[str], repo_id: str) -> tuple[dict[str, bytes | Path], ModelParts]:
    from ganzoo.card import model_card
    from ganzoo.serialization import find_model_folder, read_model_folder

    folder = find_model_folder(folder)
    model = read_model_folder(folder)  # validates config and weights before anything is sent or copied
    files: dict[str, bytes | Path] = {
        "README.md": model_card(model, model.info.get("training", {}), repo_id=repo_id).encode("utf-8")}
    files.update({name: folder / name for name in MODEL_FILES if name != "README.md" and (folder / name).is_file()})
    return files, model


def repo_files(folder: str | os.PathLike[str], repo_id: str) -> dict[str, bytes | Path]:
    """What `push` publishes from a run or model folder to `repo_id`, by file name, in upload order.

    The model card is regenerated for `repo_id` (bytes); every other model file is the folder's own (a path). A
    plugin that ships an entry's files copies exactly these, so its shipped copy and the Hub's have one sha256.
    """
    return _repo_files(folder, _repo_id(repo_id))[0]


def _push_error(exc: Exception, repo_id: str) -> GanzooError:
    from huggingface_hub import errors

    if isinstance(exc, errors.HfHubHTTPError) and exc.response is not None and exc.response.status_code in (401, 403):
        return GanzooError(f"the Hub refused to write to {repo_id} ({exc.response.status_code}): log in with a "
                           "write token (`hf auth login` or HF_TOKEN)")
    return _hub_error(exc, repo_id, None)
