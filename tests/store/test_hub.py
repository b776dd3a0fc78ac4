"""prefgen.store.hub against an in-memory Hub.

``FakeHub`` implements the part of ``HfApi`` that prefgen calls, with a git-like history (commits are file snapshots,
tags point at commit ids). It consumes the real ``CommitOperationAdd`` objects prefgen builds, returns the real
``CommitInfo`` / ``GitRefs`` types, and raises the real huggingface_hub errors, produced by
``hf_raise_for_status`` from HTTP responses like the Hub's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx2
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.hf_api import CommitInfo, GitRefInfo, GitRefs
from huggingface_hub.utils import filter_repo_objects, hf_raise_for_status
from PIL import Image

import prefgen.store.hub
from prefgen.cli.main import cli
from prefgen.core.errors import PrefgenError
from prefgen.store.folder import Store
from prefgen.store.hub import pull, push

TOKEN = "hf_secret_test_token"


# ---------------------------------------------------------------------------------------------------- fake Hub


def http_error(status: int, code: str | None = None, message: str | None = None) -> HfHubHTTPError:
    """The exception huggingface_hub raises for such a response from the Hub."""
    headers = {k: v for k, v in {"X-Error-Code": code, "X-Error-Message": message}.items() if v}
    response = httpx2.Response(status, headers=headers, request=httpx2.Request("GET", "https://huggingface.co/api/x"))
    try:
        hf_raise_for_status(response)
    except HfHubHTTPError as exc:
        return exc
    raise AssertionError("hf_raise_for_status did not raise")


class FakeRepo:
    def __init__(self, private: bool):
        self.private = private
        # Like the Hub, a new repo starts with one commit holding .gitattributes.
        self.commits: list[dict] = []  # {"oid", "message", "files": {path: bytes}, "added": [paths]}
        self.tags: dict[str, str] = {}
        self._commit({".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}, "initial commit")

    def _commit(self, added: dict[str, bytes], message: str) -> str:
        files = {**(self.commits[-1]["files"] if self.commits else {}), **added}
        oid = hashlib.sha1(repr((len(self.commits), sorted(files.items()))).encode()).hexdigest()
        self.commits.append({"oid": oid, "message": message, "files": files, "added": sorted(added)})
        return oid

    @property
    def head(self) -> str:
        return self.commits[-1]["oid"]

    def files_at(self, revision: str | None) -> dict[str, bytes]:
        oid = self.head if revision in (None, "main") else self.tags.get(revision, revision)
        for commit in self.commits:
            if commit["oid"] == oid:
                return commit["files"]
        raise http_error(404, "RevisionNotFound")


class FakeHub:
    """The subset of ``HfApi`` that prefgen.store.hub calls."""

    def __init__(self, scratch: Path, fail: Exception | None = None):
        self.repos: dict[str, FakeRepo] = {}
        self.calls: list[tuple[str, dict]] = []
        self.scratch = scratch  # where hf_hub_download puts files when given no local_dir (the "cache")
        self.fail = fail  # raised by every call, to simulate the Hub refusing
        self.fail_once: dict[tuple[str, int], BaseException] = {}  # (method, nth call) -> raised once, then gone
        self.fail_mid_upload: BaseException | None = None  # raised once by create_commit, half-way through its files

    def _call(self, name: str, **kwargs) -> None:
        self.calls.append((name, kwargs))
        assert kwargs.get("repo_type") == "dataset", f"{name} must target a dataset repo"
        if self.fail is not None:
            raise self.fail
        once = self.fail_once.pop((name, self.names().count(name)), None)
        if once is not None:
            raise once

    def _repo(self, repo_id: str) -> FakeRepo:
        if repo_id not in self.repos:
            raise http_error(404, "RepoNotFound")
        return self.repos[repo_id]

    def create_repo(self, repo_id, *, repo_type=None, private=None, exist_ok=False, **kwargs):
        self._call("create_repo", repo_id=repo_id, repo_type=repo_type, private=private, exist_ok=exist_ok, **kwargs)
        if repo_id in self.repos and not exist_ok:
            raise http_error(409, message="You already created this dataset repo")
        self.repos.setdefault(repo_id, FakeRepo(bool(private)))
        return f"https://huggingface.co/datasets/{repo_id}"

    def create_commit(self, repo_id, operations, *, commit_message, repo_type=None, revision=None, **kwargs):
        operations = list(operations)
        self._call(
            "create_commit",
            repo_id=repo_id,
            operations=operations,
            commit_message=commit_message,
            repo_type=repo_type,
            revision=revision,
            **kwargs,
        )
        repo = self._repo(repo_id)
        added = {}
        for i, op in enumerate(operations):
            if self.fail_mid_upload is not None and i == len(operations) // 2:
                # the Hub commits atomically: files uploaded before an interruption are never part of a commit
                exc, self.fail_mid_upload = self.fail_mid_upload, None
                raise exc
            assert isinstance(op, CommitOperationAdd)
            source = op.path_or_fileobj
            if isinstance(source, bytes):
                added[op.path_in_repo] = source
            elif isinstance(source, (str, Path)):
                added[op.path_in_repo] = Path(source).read_bytes()
            else:
                added[op.path_in_repo] = source.read()
        oid = repo._commit(added, commit_message)
        return CommitInfo(
            commit_url=f"https://huggingface.co/datasets/{repo_id}/commit/{oid}",
            commit_message=commit_message,
            commit_description="",
            oid=oid,
        )

    def create_tag(self, repo_id, *, tag, tag_message=None, revision=None, repo_type=None, exist_ok=False, **kwargs):
        self._call(
            "create_tag",
            repo_id=repo_id,
            tag=tag,
            tag_message=tag_message,
            revision=revision,
            repo_type=repo_type,
            **kwargs,
        )
        repo = self._repo(repo_id)
        if tag in repo.tags:
            raise http_error(409, message=f"Tag reference {tag} already exists")
        repo.files_at(revision)  # must exist
        repo.tags[tag] = repo.head if revision in (None, "main") else repo.tags.get(revision, revision)

    def list_repo_refs(self, repo_id, *, repo_type=None, **kwargs):
        self._call("list_repo_refs", repo_id=repo_id, repo_type=repo_type, **kwargs)
        repo = self._repo(repo_id)
        return GitRefs(
            branches=[GitRefInfo(name="main", ref="refs/heads/main", target_commit=repo.head)],
            converts=[],
            tags=[GitRefInfo(name=t, ref=f"refs/tags/{t}", target_commit=oid) for t, oid in repo.tags.items()],
        )

    def hf_hub_download(self, repo_id, filename, *, repo_type=None, revision=None, local_dir=None, **kwargs):
        self._call(
            "hf_hub_download",
            repo_id=repo_id,
            filename=filename,
            repo_type=repo_type,
            revision=revision,
            local_dir=local_dir,
            **kwargs,
        )
        files = self._repo(repo_id).files_at(revision)
        if filename not in files:
            raise http_error(404, "EntryNotFound")
        target = Path(local_dir or self.scratch / (revision or "main")) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[filename])
        return str(target)

    def snapshot_download(
        self, repo_id, *, repo_type=None, revision=None, local_dir=None, allow_patterns=None, **kwargs
    ):
        self._call(
            "snapshot_download",
            repo_id=repo_id,
            repo_type=repo_type,
            revision=revision,
            local_dir=local_dir,
            allow_patterns=allow_patterns,
            **kwargs,
        )
        files = self._repo(repo_id).files_at(revision)
        local_dir = Path(local_dir)
        (local_dir / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)  # as the real one does
        for name in filter_repo_objects(files, allow_patterns=allow_patterns):
            (local_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (local_dir / name).write_bytes(files[name])
        return str(local_dir)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


# ---------------------------------------------------------------------------------------------------- helpers


def rows(prefix: str, n: int, margin: float = 0.5) -> list[dict]:
    return [
        {
            "id": f"{prefix}-{i}",
            "images": [Image.new("RGB", (8, 6), (40 * i % 256, 100, 200))],
            "prompt": [{"role": "user", "content": f"What color is square {prefix}-{i}?"}],
            "chosen": [{"role": "assistant", "content": f"It is blue ({prefix}-{i})."}],
            "rejected": [{"role": "assistant", "content": "It is a dog."}],
            "margin": margin + i,
        }
        for i in range(n)
    ]


def make_store(path: Path, versions: dict[str, list[dict]]) -> Store:
    store = Store.create(path)
    for version, version_rows in versions.items():
        with store.draft(version) as draft:
            draft.write_shard(0, version_rows)
            draft.publish(message=f"build {version}")
    return store


def card_configs(readme: bytes) -> dict[str, list[str]]:
    header = yaml.safe_load(readme.decode().split("---\n")[1])
    return {c["config_name"]: [f["path"] for f in c["data_files"]] for c in header["configs"]}


def table_rows(files: list[Path]) -> list[dict]:
    return [row for f in sorted(files) for row in pq.read_table(f).to_pylist()]


@pytest.fixture
def hub(tmp_path: Path) -> FakeHub:
    return FakeHub(tmp_path / "hub-cache")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return make_store(tmp_path / "pairs", {"v1": rows("a", 3), "v2": rows("b", 2, margin=2.0)})


@pytest.fixture
def store_v1(tmp_path: Path) -> Store:
    return make_store(tmp_path / "pairs1", {"v1": rows("a", 3)})


# ---------------------------------------------------------------------------------------------------- push


def test_first_push_is_one_commit_of_card_manifests_and_data_then_a_tag(store_v1, hub):
    assert (store_v1.root / ".prefgen").is_dir()  # the draft machinery left its folder; it must not be pushed
    result = push(store_v1, "u/d", api=hub)

    repo = hub.repos["u/d"]
    assert hub.names().count("create_commit") == 1
    commit = repo.commits[-1]
    expected = ["README.md", "images/v1-scores.png", "versions/v1.json", "rejects/v1.parquet"] + [
        f"data/v1/{f.name}" for f in store_v1.data_files("v1")
    ]
    assert commit["added"] == sorted(expected)
    assert not any(p.startswith(".prefgen") for p in commit["files"])
    assert commit["message"] == "prefgen: publish v1"
    assert commit["files"]["versions/v1.json"] == (store_v1.root / "versions" / "v1.json").read_bytes()
    for f in store_v1.data_files("v1"):
        assert commit["files"][f"data/v1/{f.name}"] == f.read_bytes()
    assert repo.tags == {"v1": commit["oid"]}
    assert result == prefgen.store.hub.PushResult("u/d", "v1", commit=commit["oid"], tagged=["v1"])
    assert result.summary() == f"pushed v1 to u/d at {commit['oid'][:8]}, tagged v1"


def test_push_creates_the_repo_as_a_private_dataset_when_asked(store_v1, hub):
    push(store_v1, "u/d", private=True, api=hub)
    name, kwargs = hub.calls[0]
    assert name == "create_repo" and kwargs["private"] is True and kwargs["exist_ok"] is True
    assert hub.repos["u/d"].private is True


def test_push_of_v2_after_v1_lists_both_in_the_card_and_leaves_the_v1_tag(store, hub):
    push(store, "u/d", version="v1", api=hub)
    v1_commit = hub.repos["u/d"].tags["v1"]

    result = push(store, "u/d", api=hub)

    repo = hub.repos["u/d"]
    assert result.version == "v2" and result.tagged == ["v2"]
    assert repo.tags == {"v1": v1_commit, "v2": repo.head}
    assert result.commit == repo.head != v1_commit
    configs = card_configs(repo.files_at("v2")["README.md"])
    assert configs == {"default": ["data/v2/*.parquet"], "v2": ["data/v2/*.parquet"], "v1": ["data/v1/*.parquet"]}
    assert card_configs(repo.files_at("v1")["README.md"]) == {
        "default": ["data/v1/*.parquet"],
        "v1": ["data/v1/*.parquet"],
    }


def test_pushing_the_same_version_twice_changes_nothing(store_v1, hub):
    push(store_v1, "u/d", api=hub)
    commits, tags = len(hub.repos["u/d"].commits), dict(hub.repos["u/d"].tags)

    again = push(store_v1, "u/d", api=hub)

    assert again.commit is None and again.tagged == []
    assert len(hub.repos["u/d"].commits) == commits and hub.repos["u/d"].tags == tags
    assert hub.names().count("create_commit") == 1 and hub.names().count("create_tag") == 1
    assert again.summary() == "v1 is already on u/d (tag v1); nothing to do"


def test_a_different_local_v1_than_the_hubs_is_refused(store_v1, hub, tmp_path):
    push(store_v1, "u/d", api=hub)
    commits = len(hub.repos["u/d"].commits)
    other = make_store(tmp_path / "other", {"v1": rows("z", 4)})

    with pytest.raises(PrefgenError, match="already has a different v1; versions are immutable"):
        push(other, "u/d", api=hub)

    assert len(hub.repos["u/d"].commits) == commits
    assert hub.names().count("create_commit") == 1


def test_push_of_an_older_version_holds_only_that_version(store, hub):
    result = push(store, "u/d", version="v1", api=hub)

    commit = hub.repos["u/d"].commits[-1]
    assert not any(p.startswith(("data/v2", "versions/v2", "rejects/v2")) for p in commit["files"])
    assert {p.split("/")[0] for p in commit["added"]} == {"README.md", "images", "versions", "data", "rejects"}
    assert card_configs(commit["files"]["README.md"]) == {
        "default": ["data/v1/*.parquet"],
        "v1": ["data/v1/*.parquet"],
    }
    assert result.tagged == ["v1"] and hub.repos["u/d"].tags == {"v1": commit["oid"]}


def test_push_tags_every_untagged_version_in_the_commit(store, hub):
    result = push(store, "u/d", api=hub)
    repo = hub.repos["u/d"]
    assert result.tagged == ["v1", "v2"]
    assert repo.tags == {"v1": repo.head, "v2": repo.head}


def test_push_of_an_unknown_version_fails_before_any_hub_call(store_v1, hub):
    with pytest.raises(PrefgenError, match="unknown version 'v9'"):
        push(store_v1, "u/d", version="v9", api=hub)
    assert hub.calls == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            http_error(401, message="Invalid credentials in Authorization header"),
            "not logged in to the Hub: set HF_TOKEN or run `hf auth login`",
        ),
        (http_error(403), "your token cannot write to u/d"),
        (http_error(404, "RepoNotFound"), "dataset repo u/d not found"),
        (http_error(500, message="Internal Error"), "the Hub refused the request for u/d (HTTP 500): Internal Error"),
        (httpx2.ConnectError("[Errno -2] Name or service not known"), "cannot reach the Hub (ConnectError)"),
    ],
)
def test_hub_errors_become_one_line(store_v1, tmp_path, monkeypatch, error, expected):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    with pytest.raises(PrefgenError) as info:
        push(store_v1, "u/d", api=FakeHub(tmp_path, fail=error))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_offline_mode_is_named_in_the_error(store_v1, monkeypatch):
    # The real HfApi: offline mode stops it before any request leaves the machine.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(PrefgenError, match="HF_HUB_OFFLINE is set"):
        push(store_v1, "u/d")


# ---------------------------------------------------------------------------------------------------- pull


def test_pull_at_a_tag_makes_a_store_of_that_version(store, hub, tmp_path):
    push(store, "u/d", version="v1", api=hub)
    push(store, "u/d", api=hub)

    pulled = pull("u/d", tmp_path / "copy", revision="v1", api=hub)

    assert pulled.root == tmp_path / "copy"
    assert pulled.versions() == ["v1"]
    assert pulled.manifest("v1") == store.manifest("v1")
    assert table_rows(pulled.data_files("v1")) == table_rows(store.data_files("v1"))
    assert not (pulled.root / ".cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".copy")) == []  # no temp folder left
    assert hub.calls[-1][1]["allow_patterns"] == ["README.md", "data/**", "versions/**", "rejects/**"]


def test_pull_of_main_gets_every_pushed_version(store, hub, tmp_path):
    push(store, "u/d", api=hub)
    assert pull("u/d", tmp_path / "copy", api=hub).versions() == ["v1", "v2"]


def test_pull_into_a_non_empty_folder_is_refused_and_changes_nothing(store_v1, hub, tmp_path):
    push(store_v1, "u/d", api=hub)
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")

    with pytest.raises(PrefgenError, match="not empty"):
        pull("u/d", dest, api=hub)

    assert [p.name for p in dest.iterdir()] == ["notes.txt"] and (dest / "notes.txt").read_text() == "mine"
    assert "snapshot_download" not in hub.names()


def test_pull_of_an_unknown_revision_is_one_line_and_leaves_nothing(store_v1, hub, tmp_path):
    push(store_v1, "u/d", api=hub)
    with pytest.raises(PrefgenError, match=r"u/d has no revision 'v7'") as info:
        pull("u/d", tmp_path / "copy", revision="v7", api=hub)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "copy").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".copy")]


def test_pull_of_a_repo_that_is_not_a_store_is_refused(hub, tmp_path):
    hub.create_repo("u/plain", repo_type="dataset")
    hub.create_commit("u/plain", [CommitOperationAdd("README.md", b"# hi\n")], commit_message="x", repo_type="dataset")
    with pytest.raises(PrefgenError, match="u/plain is not a prefgen store"):
        pull("u/plain", tmp_path / "copy", api=hub)
    assert not (tmp_path / "copy").exists()


# ---------------------------------------------------------------------------------------- what lands on the Hub


def test_the_pushed_folder_loads_with_datasets_and_duckdb_alone(store, hub, tmp_path, monkeypatch):
    import datasets
    import duckdb

    push(store, "u/d", api=hub)
    commit = hub.repos["u/d"].commits[-1]
    folder = tmp_path / "hub-view"
    for name in commit["added"]:  # exactly the files of the commit, nothing of prefgen
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(commit["files"][name])
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    cache = str(tmp_path / "hf" / "datasets")

    latest = datasets.load_dataset(str(folder), split="train", cache_dir=cache)
    v1 = datasets.load_dataset(str(folder), "v1", split="train", cache_dir=cache)

    assert sorted(latest["id"]) == ["b-0", "b-1"]
    assert sorted(v1["id"]) == ["a-0", "a-1", "a-2"]
    first = next(row for row in v1 if row["id"] == "a-0")
    assert first["images"][0].size == (8, 6)
    assert first["prompt"] == [{"role": "user", "content": "What color is square a-0?"}]

    stats = duckdb.sql(f"SELECT count(*), avg(margin) FROM read_parquet('{folder}/data/v1/*.parquet')").fetchall()
    assert stats == [(3, pytest.approx(1.5))]
    contents = duckdb.sql(f"SELECT prompt[1].content FROM read_parquet('{folder}/data/v2/*.parquet') ORDER BY id")
    assert [r[0] for r in contents.fetchall()] == ["What color is square b-0?", "What color is square b-1?"]


# ---------------------------------------------------------------------------------------------------- CLI


def test_cli_push_never_exposes_the_token(store, hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(prefgen.store.hub, "HfApi", lambda: hub)

    result = CliRunner().invoke(cli, ["push", str(store.root), "--repo", "u/d"])

    assert result.exit_code == 0, result.output
    assert result.output.strip().startswith("pushed v2 to u/d at ")
    assert TOKEN not in result.output
    assert all("token" not in kwargs for _, kwargs in hub.calls)  # huggingface_hub finds the token itself
    pushed = [data for commit in hub.repos["u/d"].commits for data in commit["files"].values()]
    on_disk = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert pushed and on_disk
    assert not any(TOKEN.encode() in data for data in pushed + on_disk)


def test_cli_push_of_a_folder_that_is_not_a_store_is_one_error_line(tmp_path):
    (tmp_path / "nothing").mkdir()
    result = CliRunner().invoke(cli, ["push", str(tmp_path / "nothing"), "--repo", "u/d"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "not a prefgen store" in lines[0]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (http_error(401, message="Invalid credentials in Authorization header"), "error: not logged in to the Hub"),
        (http_error(404, "RepoNotFound"), "error: dataset repo u/d not found"),
    ],
)
def test_cli_hub_errors_are_one_line_without_traceback(store_v1, tmp_path, monkeypatch, error, expected):
    monkeypatch.setattr(prefgen.store.hub, "HfApi", lambda: FakeHub(tmp_path, fail=error))
    result = CliRunner().invoke(cli, ["push", str(store_v1.root), "--repo", "u/d"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected)
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------------- integrity


def assert_hub_matches_local(hub: FakeHub, store: Store, versions: list[str]) -> None:
    """Each tag holds its version's manifest and exactly its data files, byte for byte as the manifest says."""
    repo = hub.repos["u/d"]
    assert sorted(repo.tags) == sorted(versions)
    for version in versions:
        files = repo.files_at(version)
        manifest = store.manifest(version)
        assert files[f"versions/{version}.json"] == (store.root / "versions" / f"{version}.json").read_bytes()
        on_hub = {
            p.removeprefix(f"data/{version}/"): data for p, data in files.items() if p.startswith(f"data/{version}/")
        }
        assert sorted(on_hub) == sorted(f.name for f in manifest.files)
        for f in manifest.files:
            assert hashlib.sha256(on_hub[f.name]).hexdigest() == f.sha256 and len(on_hub[f.name]) == f.bytes


def test_push_refuses_a_damaged_version_before_any_hub_call(store, hub):
    shard = store.root / "data" / "v1" / "train-00000-of-00001.parquet"
    shard.chmod(0o644)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    (store.root / "data" / "v2" / "extra.parquet").write_bytes(b"PAR1")

    with pytest.raises(PrefgenError) as info:
        push(store, "u/d", api=hub)

    assert str(info.value).splitlines() == [
        f"not pushing: {store.root} does not match its manifests (run `prefgen verify {store.root}`)",
        "data/v1/train-00000-of-00001.parquet: sha256 differs from the manifest (its bytes changed after it was "
        "published)",
        "data/v2/extra.parquet: not in the manifest of v2 (a stray file)",
    ]
    assert hub.calls == []


def test_push_checks_only_the_versions_it_uploads(store, hub):
    (store.root / "data" / "v2" / "train-00000-of-00001.parquet").unlink()
    result = push(store, "u/d", version="v1", api=hub)
    assert result.tagged == ["v1"]
    with pytest.raises(PrefgenError, match="data/v2/train-00000-of-00001.parquet: missing"):
        push(store, "u/d", api=hub)


def test_cli_push_of_damage_exits_1_with_the_verify_lines(store, hub, monkeypatch):
    monkeypatch.setattr(prefgen.store.hub, "HfApi", lambda: hub)
    shard = store.root / "data" / "v2" / "train-00000-of-00001.parquet"
    size = shard.stat().st_size
    shard.chmod(0o644)
    shard.write_bytes(shard.read_bytes()[:100])
    result = CliRunner().invoke(cli, ["push", str(store.root), "--repo", "u/d"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: not pushing: {store.root} does not match its manifests (run `prefgen verify {store.root}`)",
        f"data/v2/train-00000-of-00001.parquet: truncated (100 of {size} bytes)",
    ]
    assert hub.calls == []


@pytest.mark.parametrize(
    "interrupt",
    ["mid-upload error", "mid-upload kill", "first tag", "second tag"],
)
def test_an_interrupted_push_rerun_completes_it(store, hub, interrupt):
    error = http_error(500, message="Internal Error")
    if interrupt == "mid-upload error":
        hub.fail_mid_upload = error
    elif interrupt == "mid-upload kill":
        hub.fail_mid_upload = KeyboardInterrupt()
    else:
        hub.fail_once[("create_tag", 1 if interrupt == "first tag" else 2)] = error

    with pytest.raises((PrefgenError, KeyboardInterrupt)):
        push(store, "u/d", api=hub)
    result = push(store, "u/d", api=hub)

    assert result.version == "v2"
    assert result.tagged == (["v2"] if interrupt == "second tag" else ["v1", "v2"])  # what the first push left
    assert_hub_matches_local(hub, store, ["v1", "v2"])
    tag_calls = [kwargs["tag"] for name, kwargs in hub.calls if name == "create_tag"]
    assert sorted(set(tag_calls)) == ["v1", "v2"]
    assert len(tag_calls) == 2 + (interrupt.endswith("tag"))  # only the failed tag call is ever repeated
    assert push(store, "u/d", api=hub).commit is None  # and a third push has nothing left to do


# ---------------------------------------------------------------------------------------------------- pull checks


def corrupt_on_hub(hub: FakeHub, path: str, change) -> None:
    repo = hub.repos["u/d"]
    for commit in repo.commits:
        if path in commit["files"]:
            commit["files"] = {**commit["files"], path: change(commit["files"][path])}


def test_pull_of_a_file_that_differs_from_its_manifest_keeps_nothing(store, hub, tmp_path):
    push(store, "u/d", api=hub)
    name = "data/v1/train-00000-of-00001.parquet"
    corrupt_on_hub(
        hub, name, lambda data: data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1 :]
    )

    with pytest.raises(PrefgenError) as info:
        pull("u/d", tmp_path / "copy", api=hub)

    assert str(info.value) == (
        f"u/d does not match its manifests, nothing was kept: {name}: sha256 differs from the manifest (its bytes "
        "changed after it was published)"
    )
    assert not (tmp_path / "copy").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".copy")]


def test_pull_into_an_existing_empty_folder_leaves_it_unchanged_on_damage(store, hub, tmp_path):
    push(store, "u/d", api=hub)
    corrupt_on_hub(hub, "data/v2/train-00000-of-00001.parquet", lambda data: data[:-10])
    (tmp_path / "copy").mkdir()

    with pytest.raises(PrefgenError, match=r"data/v2/train-00000-of-00001.parquet: truncated \(\d+ of \d+ bytes\)"):
        pull("u/d", tmp_path / "copy", api=hub)

    assert (tmp_path / "copy").is_dir() and list((tmp_path / "copy").iterdir()) == []


def test_cli_pull_of_damage_is_one_line(store, hub, tmp_path, monkeypatch):
    push(store, "u/d", api=hub)
    corrupt_on_hub(hub, "versions/v1.json", lambda data: data.replace(b'"rows":', b'"rows"', 1))
    monkeypatch.setattr(prefgen.store.hub, "HfApi", lambda: hub)
    result = CliRunner().invoke(cli, ["pull", "u/d@v2", str(tmp_path / "copy")])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "error: u/d@v2 does not match its manifests, nothing was kept: versions/v1.json: not valid JSON:"
    )
    assert not (tmp_path / "copy").exists()
