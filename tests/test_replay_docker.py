"""Replay for real: a tiny-model session on this machine's Docker engine, exported, replayed on
the same engine (every cell reproduces), refused on a second dockerd whose image under the same
name differs, and replayed there from a bundle that carries its images; `kit diff` of the real
sessions."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from kit.store.folder import load_session
from tests.conftest import TINY, invoke, session_dirs
from tests.engines import another_engine

pytestmark = pytest.mark.docker

STOCK = "kit/tensorflow:stock"
# Longer than the other tests' TINY: the replay's verdicts need steadier numbers.
SIZES = [*TINY[:4], "--num-batches", "30", "--num-warmup-batches", "2"]
# Two sessions a minute apart on a shared 2-core host drift on runs this short: 0.90x [0.81, 0.99]
# was seen, and once 1.29x [1.16, 1.42] (the first session in a slow phase of the host). So the
# replay is judged by its answer (each cell over the baseline, within each round: the drift
# cancels), by placement and by image ids, not by each cell's images/sec.


@pytest.fixture(scope="module")
def recorded(kit_images, docker_client, tmp_path_factory):
    """One real session (stock, two profiles, 3 repeats) and its bundles, with and without
    the image."""
    root = tmp_path_factory.mktemp("replay")
    results = root / "there"
    code, text = invoke(
        "compare", "stock", "-p", "default", "-p", "tuned", *SIZES, "--repeats", "3",
        "--results", str(results),
    )  # fmt: skip
    assert code == 0, text
    (session,) = session_dirs(results)
    plain, full = root / "plain.kit.tar.zst", root / "full.kit.tar.zst"
    for bundle, more in ((plain, []), (full, ["--with-images"])):
        code, text = invoke("export", session.name, "-o", str(bundle), "--results", str(results),
                            *more)  # fmt: skip
        assert code == 0, text
    return {"root": root, "session": session, "plain": plain, "full": full}


def _rows(text: str) -> dict[str, str]:
    """The cells' rows of a comparison (the table before the session's answer)."""
    cells = text.split("the session's answer", maxsplit=1)[0]
    return {line.split()[0]: line for line in cells.splitlines() if line.startswith("stock:")}


def test_a_replay_on_the_same_engine_reproduces_every_cell(recorded, kit_containers):
    from kit.judging.reproduce import round_ratios
    from kit.judging.stats import Verdict, compare

    here = recorded["root"] / "same"
    code, text = invoke("replay", str(recorded["plain"]), "--results", str(here))
    assert code == 0, text
    assert "placement: every run has the placement it had there" in text
    assert set(_rows(text)) == {"stock:default", "stock:tuned"}
    assert "the session's answer: each cell over the baseline" in text
    assert "the two machines' descriptions are the same" in text
    original, replayed = session_dirs(here)
    assert original.name == recorded["session"].name
    runs = load_session(replayed)
    assert len(runs) == 6 and all(r.ok for r in runs)
    there_ids = {r.image_id for r in load_session(original)}
    assert {r.image_id for r in runs} == there_ids
    # The answer, tuned over default within each round, there and here: the same at 99.9% (noise
    # alone fails this once in a thousand; a replay that ran tuned otherwise would show).
    (_, there), (_, again) = round_ratios(load_session(original)), round_ratios(runs)
    moved = compare(again["stock:tuned"], there["stock:tuned"], confidence=0.999)
    assert moved.verdict is Verdict.same, moved
    code, text = invoke("diff", original.name, replayed.name, "--fail-if-slower", "50",
                        "--results", str(here))  # fmt: skip
    assert code == 0, text
    assert set(_rows(text)) == {"stock:default", "stock:tuned"}
    code, text = invoke("history", "--results", str(here), "-f", "json")
    commands = {s["session"]: s["command"] for s in json.loads(text)["sessions"]}
    assert commands[replayed.name] == f"replay of {original.name}", commands


def test_the_bundle_with_images_is_larger_and_holds_one_archive(recorded):
    plain, full = recorded["plain"].stat().st_size, recorded["full"].stat().st_size
    assert plain < 1 * 2**20 < 100 * 2**20 < full


@pytest.fixture(scope="module")
def other(kit_images):
    engine = another_engine("kit-replay", 253)
    yield engine
    engine.remove()


def _impostor(client) -> str:
    """An image that is not kit's, under kit's stock name, on that engine."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    result = client.api.import_image_from_data(data.getvalue(), repository="kit/tensorflow",
                                               tag="stock")  # fmt: skip
    return client.images.get(STOCK).id if result else ""


def test_another_engine_refuses_a_different_image_then_loads_the_bundles(
    recorded, other, docker_client, kit_containers
):
    client = other.client()
    impostor = _impostor(client)
    here = recorded["root"] / "other"
    host = f"other={other.socket_url}"
    code, text = invoke("replay", str(recorded["plain"]), "--host", host, "--results", str(here))
    assert code == 2, text
    assert f"other: {STOCK} is {impostor[:19]}, the session ran" in text
    assert not here.exists() or not session_dirs(here)
    code, text = invoke("replay", str(recorded["full"]), "--host", host,
                        "--results", str(here))  # fmt: skip
    assert code == 0, text
    assert f"loaded {STOCK}" in text and "into other from the bundle" in text
    assert client.images.get(STOCK).id == docker_client.images.get(STOCK).id
    rows = _rows(text)
    assert set(rows) == {"stock:default", "stock:tuned"}
    original, replayed = session_dirs(here)
    runs = load_session(replayed)
    assert {r.engine for r in runs} == {"other"} and all(r.ok for r in runs)
    meta = json.loads((replayed / "session.json").read_text())
    assert meta["replay_of"] == original.name and meta["different_images"] == []


def test_the_sessions_image_under_another_name_is_found_by_its_id(
    recorded, other, docker_client, kit_containers
):
    """After the load above: the session's image is on the other engine, but its name now
    points at another image."""
    client = other.client()
    wanted = docker_client.images.get(STOCK).id
    assert client.images.get(wanted)
    _impostor(client)
    here = recorded["root"] / "found"
    code, text = invoke("replay", str(recorded["plain"]), "--host", f"other={other.socket_url}",
                        "--results", str(here))  # fmt: skip
    assert code == 0, text
    assert f"found the session's image {wanted[:19]}; tagged it {STOCK}" in text
    assert client.images.get(STOCK).id == wanted


def test_another_engine_pulls_the_images_by_their_recorded_digests(
    recorded, other, registry, docker_client, kit_containers
):
    code, text = invoke("images", "push", "stock", "--registry", registry)
    assert code == 0, text
    bundle = recorded["root"] / "digests.kit.tar.zst"
    code, text = invoke("export", recorded["session"].name, "-o", str(bundle),
                        "--results", str(recorded["root"] / "there"))  # fmt: skip
    assert code == 0, text
    client = other.client()
    for image in client.images.list():
        client.images.remove(image.id, force=True)
    here = recorded["root"] / "pulled"
    host = f"other={other.socket_url}"
    code, text = invoke("replay", str(bundle), "--host", host, "--registry", registry,
                        "--results", str(here))  # fmt: skip
    assert code == 0, text
    assert f"pulled {registry}/kit/tensorflow@sha256:" in text and "(id checked)" in text
    assert client.images.get(STOCK).id == docker_client.images.get(STOCK).id
    assert set(_rows(text)) == {"stock:default", "stock:tuned"}
