"""`aura-sicd sandbox build`: an image built from the same inputs is reused, a stale one rebuilt, and a base
image that cannot be pulled is answered with how to use a local one. The Docker client is a recording
fake here; building the real image is what `scripts/test` does before the suite."""

from __future__ import annotations

import json

import docker.errors
import pytest

from bot.cli import main
from sandbox import SandboxSettings
from sandbox.cli import IMAGE_LABEL, image_inputs, stale_reason

TAG = "aura-sicd-check:test"
BASE = "aura-base:bookworm"


class FakeImage:
    def __init__(self, labels: dict[str, str]):
        self.labels = labels


class FakeDocker:
    """Just what the build needs: images by tag, a ping and a streaming build that records its arguments."""

    def __init__(self, images: dict[str, dict[str, str]], build_output: list[dict] | None = None):
        self.images = self
        self.api = self
        self.existing = images
        self.build_output = build_output or [{"stream": "Successfully built 0123abcd\n"}]
        self.builds: list[dict] = []

    def get(self, name: str) -> FakeImage:
        if name not in self.existing:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return FakeImage(self.existing[name])

    def build(self, **kwargs):
        self.builds.append(kwargs)
        yield from self.build_output

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass


@pytest.fixture
def engine(monkeypatch):
    def install(images: dict[str, dict[str, str]], **kwargs) -> FakeDocker:
        fake = FakeDocker(images, **kwargs)
        monkeypatch.setattr("sandbox.docker.docker_client", lambda settings: fake)
        return fake

    monkeypatch.setenv("AURA_SANDBOX_IMAGE", TAG)
    monkeypatch.setenv("AURA_SANDBOX_BASE_IMAGE", BASE)
    return install


def current_labels() -> dict[str, str]:
    return image_inputs(SandboxSettings(), BASE)


def test_an_image_built_from_the_same_inputs_is_reused(engine, capsys):
    fake = engine({TAG: current_labels(), BASE: {}})
    assert main(["sandbox", "build"]) == 0
    assert fake.builds == []
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"reused": TAG}


def test_a_changed_dockerfile_or_base_image_means_a_rebuild(engine, capsys):
    stale = {**current_labels(), f"{IMAGE_LABEL}.dockerfile-sha256": "an older Dockerfile"}
    fake = engine({TAG: stale, BASE: {}})
    assert main(["sandbox", "build"]) == 0
    out = capsys.readouterr().out
    assert f"building {TAG} from {BASE} (its recorded inputs differ (dockerfile-sha256))" in out
    assert json.loads(out.splitlines()[-1]) == {"built": TAG}
    [build] = fake.builds
    assert build["labels"] == current_labels() and build["buildargs"]["BASE_IMAGE"] == BASE
    assert "base-image" in stale_reason(current_labels(), image_inputs(SandboxSettings(), "other:base"))


def test_a_missing_image_or_one_without_recorded_inputs_is_built(engine, capsys):
    assert stale_reason(None, current_labels()) == "it does not exist"
    assert stale_reason({}, current_labels()).startswith("its recorded inputs differ (dockerfile-sha256, base-image")
    fake = engine({BASE: {}})
    assert main(["sandbox", "build"]) == 0
    assert len(fake.builds) == 1


def test_force_rebuilds_an_up_to_date_image(engine, capsys):
    fake = engine({TAG: current_labels(), BASE: {}})
    assert main(["sandbox", "build", "--force"]) == 0
    assert len(fake.builds) == 1
    assert "(--force)" in capsys.readouterr().out


def test_a_base_image_that_cannot_be_pulled_says_how_to_use_a_local_one(engine, capsys):
    pull_error = 'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host'
    engine({}, build_output=[{"error": pull_error}])
    assert main(["sandbox", "build", "--base-image", "python:3.12-slim"]) == 1
    err = capsys.readouterr().err
    assert pull_error in err
    assert "The base image python:3.12-slim is not on this machine and could not be pulled" in err
    assert "--base-image IMAGE" in err and "AURA_SANDBOX_BASE_IMAGE=IMAGE" in err


def test_a_failing_build_from_a_local_base_shows_only_the_error(engine, capsys):
    engine({BASE: {}}, build_output=[{"error": "The command '/bin/sh -c pip install' returned a non-zero code: 1"}])
    assert main(["sandbox", "build"]) == 1
    err = capsys.readouterr().err
    assert "returned a non-zero code: 1" in err and "AURA_SANDBOX_BASE_IMAGE" not in err


def test_an_empty_base_image_setting_is_a_configuration_error(engine, monkeypatch, capsys):
    fake = engine({})
    monkeypatch.setenv("AURA_SANDBOX_BASE_IMAGE", "")
    assert main(["sandbox", "build"]) == 2
    assert "AURA_SANDBOX_BASE_IMAGE is empty" in capsys.readouterr().err and fake.builds == []


def test_a_language_image_has_only_that_toolchain_and_is_reused_by_its_labels(engine, capsys):
    from sandbox.cli import language_image

    fake = engine({BASE: {}})
    assert main(["sandbox", "build", "--language", "go"]) == 0
    [build] = fake.builds
    assert build["tag"] == "aura-sicd-check:go" and build["buildargs"]["LANGUAGES"] == "go"
    assert build["labels"][f"{IMAGE_LABEL}.languages"] == "go"
    settings = SandboxSettings()
    fake.existing["aura-sicd-check:go"] = build["labels"]
    assert language_image(settings, "go") == "aura-sicd-check:go" and len(fake.builds) == 1  # reused
    assert language_image(settings, "python") == "aura-sicd-check:python"
    assert fake.builds[-1]["buildargs"]["LANGUAGES"] == ""  # Python and the tools only
    # the default image keeps every toolchain
    assert main(["sandbox", "build"]) == 0
    assert fake.builds[-1]["buildargs"]["LANGUAGES"] == "go javascript rust java ruby php"
