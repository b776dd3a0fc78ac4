"""Push a store to a Hugging Face dataset repo, and pull one back as a store.

A store folder already has the Hub's layout (``README.md`` with YAML configs, ``data/<version>/*.parquet``,
``versions/<version>.json``), so a push is one commit of those files (and of the card's score histogram,
``images/<version>-scores.png``) plus one git tag per version: consumers pin a version with
``load_dataset(repo, revision="v2")`` or ``hf://datasets/<repo>@v2/...``. ``.prefgen/`` (lock, drafts) never leaves
the machine. The token is whatever huggingface_hub finds itself (``HF_TOKEN``, ``hf auth login``):
prefgen never reads, passes or prints it.

Damage never travels: a push hashes every file it uploads against its manifest before any network call, and a pull
checks every downloaded file before the store appears. The Hub commits atomically, so a push interrupted anywhere
(an error, a kill) leaves the repo with all of a commit or none of it, plus the tags made so far; running the same
push again commits what is missing (a commit of unchanged files is a no-op on the Hub) and adds the missing tags.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from huggingface_hub import CommitOperationAdd, HfApi

from prefgen.core.errors import PrefgenError
from prefgen.core.fs import folder_beside
from prefgen.store.card import SCORE_COLUMNS, read_score_columns, render_card, score_histogram_png
from prefgen.store.folder import Store
from prefgen.store.manifest import Manifest
from prefgen.store.verify import verify_store

REPO_TYPE = "dataset"
PULL_PATTERNS = ["README.md", "data/**", "versions/**", "rejects/**"]  # images/ (card figures) stay on the Hub
_LOGIN_HINT = "set HF_TOKEN or run `hf auth login`"


@dataclass
class PushResult:
    repo: str
    version: str
    commit: str | None  # commit id created, None when nothing changed
    tagged: list[str]  # tags created by this push

    def summary(self) -> str:
        if self.commit is None:
            return f"{self.version} is already on {self.repo} (tag {self.version}); nothing to do"
        tags = f", tagged {', '.join(self.tagged)}" if self.tagged else ""
        return f"pushed {self.version} to {self.repo} at {self.commit[:8]}{tags}"


def push(
    store: Store, repo: str, *, version: str | None = None, private: bool = False, api: HfApi | None = None
) -> PushResult:
    """Publish ``version`` (default: the latest) and every version before it to ``repo`` in one commit, and tag
    each version that has no tag yet at that commit. Pushing a version the Hub already has is a no-op."""
    version = store.manifest(version).version  # resolves None and fails early on an unknown version
    manifests = store.manifests()
    # Only versions up to `version` in publish order: the card must never name a config whose data is not pushed.
    included = manifests[: [m.version for m in manifests].index(version) + 1]
    _refuse_damage(store, included)  # every byte against its manifest, before any network call
    operations = _operations(store, repo, included)
    api = api or HfApi()
    with _hub_errors(repo):
        api.create_repo(repo, repo_type=REPO_TYPE, private=private, exist_ok=True)
        tags = {ref.name for ref in api.list_repo_refs(repo, repo_type=REPO_TYPE).tags}
        # A tag is a published version: it must hold exactly what we have, or the push would rewrite history.
        for m in included:
            if m.version in tags and _remote_manifest(api, repo, m.version) != m:
                raise PrefgenError(
                    f"{repo} already has a different {m.version}; versions are immutable, so publish "
                    "your changes as a new version (or push to another repo)"
                )
        if version in tags:
            return PushResult(repo, version, commit=None, tagged=[])
        info = api.create_commit(repo, operations, commit_message=f"prefgen: publish {version}", repo_type=REPO_TYPE)
        tagged = []
        for m in included:
            if m.version not in tags:
                # Tag the commit id, not `main`: someone else may push between our commit and our tag.
                api.create_tag(
                    repo,
                    tag=m.version,
                    revision=info.oid,
                    repo_type=REPO_TYPE,
                    tag_message=f"prefgen {m.version}: {m.rows} rows",
                )
                tagged.append(m.version)
    return PushResult(repo, version, commit=info.oid, tagged=tagged)


def pull(repo: str, dest: Path, *, revision: str | None = None, api: HfApi | None = None) -> Store:
    """Download ``repo`` at ``revision`` (a tag such as ``v1``, a branch or a commit) as a new store at ``dest``.

    The files land in a hidden folder beside ``dest`` and are checked against their manifests (sha256, sizes,
    rows) before that folder is renamed to ``dest``: an interrupted, damaged or invalid pull leaves ``dest`` as it
    was."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PrefgenError(f"{dest} already exists and is not empty; pull into a new folder")
    where = f"{repo}@{revision}" if revision else repo
    with folder_beside(dest) as tmp:
        with _hub_errors(repo, revision):
            (api or HfApi()).snapshot_download(
                repo_id=repo, repo_type=REPO_TYPE, revision=revision, local_dir=tmp, allow_patterns=PULL_PATTERNS
            )
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's download bookkeeping, not data
        if not list((tmp / "versions").glob("*.json")):
            raise PrefgenError(f"{where} is not a prefgen store: it has no versions/*.json")
        problems = verify_store(Store(tmp)).problems
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise PrefgenError(f"{where} does not match its manifests, nothing was kept: {problems[0]}{more}")
    return Store(dest)


def _refuse_damage(store: Store, included: list[Manifest]) -> None:
    """Refuse to publish a version whose files differ from its manifest, naming each problem on its own line."""
    problems = [p for m in included for p in verify_store(store, m.version).problems]
    if problems:
        lines = "\n".join(str(p) for p in problems)
        raise PrefgenError(
            f"not pushing: {store.root} does not match its manifests (run `prefgen verify {store.root}`)\n{lines}"
        )


def _operations(store: Store, repo: str, included: list[Manifest]) -> list[CommitOperationAdd]:
    latest = included[-1]
    scores = read_score_columns(store.data_files(latest.version), [c for c in SCORE_COLUMNS if c in latest.columns])
    figure = f"images/{latest.version}-scores.png" if any(scores.values()) else None
    card = render_card(repo, included, scores=scores, figure=figure).encode("utf-8")
    ops = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card)]
    if figure:  # the card's score histogram, beside the data (the Hub page shows it)
        title = f"{repo} {latest.version}: {latest.rows} pairs"
        ops.append(CommitOperationAdd(path_in_repo=figure, path_or_fileobj=score_histogram_png(scores, title)))
    for m in included:
        ops.append(CommitOperationAdd(f"versions/{m.version}.json", store.root / "versions" / f"{m.version}.json"))
        ops += [CommitOperationAdd(f"data/{m.version}/{f.name}", f) for f in store.data_files(m.version)]
        rejects = store.rejects_file(m.version)
        if rejects is not None:
            ops.append(CommitOperationAdd(f"rejects/{m.version}.parquet", rejects))
    return ops


def _remote_manifest(api: HfApi, repo: str, version: str) -> Manifest | None:
    with tempfile.TemporaryDirectory() as tmp:  # not the shared cache: this is a one-off comparison
        path = api.hf_hub_download(
            repo, f"versions/{version}.json", repo_type=REPO_TYPE, revision=version, local_dir=tmp
        )
        try:
            return Manifest.model_validate_json(Path(path).read_bytes())
        except ValueError:  # pydantic's ValidationError is a ValueError: an unreadable manifest is "different"
            return None


@contextmanager
def _hub_errors(repo: str, revision: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub's errors into one actionable line. Messages are ours: the library's own are multi-line
    and carry URLs; none of them ever carries the token."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub import errors as e

    try:
        yield
    except (e.OfflineModeIsEnabled, e.LocalEntryNotFoundError, httpx2.TransportError) as exc:
        if constants.is_offline_mode():
            raise PrefgenError("cannot reach the Hub: HF_HUB_OFFLINE is set; unset it to push or pull") from None
        raise PrefgenError(f"cannot reach the Hub ({type(exc).__name__}): check your network connection") from None
    except e.LocalTokenNotFoundError:
        raise PrefgenError(f"not logged in to the Hub: {_LOGIN_HINT}") from None
    except e.HFValidationError:
        raise PrefgenError(f"invalid repo id {repo!r}: use `user/name`") from None
    except e.RevisionNotFoundError:
        raise PrefgenError(f"{repo} has no revision {revision!r} (use one of its tags, e.g. v1)") from None
    except e.RepositoryNotFoundError:
        raise PrefgenError(
            f"dataset repo {repo} not found, or your token cannot see it: check the id, or {_LOGIN_HINT}"
        ) from None
    except e.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            raise PrefgenError(f"not logged in to the Hub: {_LOGIN_HINT}") from None
        if status == 403:
            raise PrefgenError(f"your token cannot write to {repo}: use a token with write access") from None
        detail = next(iter((exc.server_message or str(exc)).strip().splitlines()), "no details")
        raise PrefgenError(f"the Hub refused the request for {repo} (HTTP {status}): {detail}") from None
