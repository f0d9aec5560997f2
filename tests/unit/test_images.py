"""Image references and resolution rules (emulator/images.py), without Docker or a registry."""

from __future__ import annotations

import pytest

from emulator.images import (
    ImageResolver,
    InvalidImageReference,
    MissingImage,
    ecr_uri,
    parse_image,
    parse_repository_and_tag,
)
from emulator.registry import Manifest, RegistryUnavailable
from emulator.runtime.spec import ImageNotFound

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        (f"{ECR}/team/model:1.0", ECR, "team/model", "1.0", None),
        (f"{ECR}/model", ECR, "model", None, None),
        (f"{ECR}/model@{DIGEST}", ECR, "model", None, DIGEST),
        (f"{ECR}/model:v2@{DIGEST}", ECR, "model", "v2", DIGEST),
        ("python:3.11", None, "python", "3.11", None),
        ("smemu-sample/training:abc", None, "smemu-sample/training", "abc", None),
        ("127.0.0.1:4571/x/y:z", "127.0.0.1:4571", "x/y", "z", None),
        ("localhost/app", "localhost", "app", None, None),
    ],
)
def test_parse_image(text: str, registry: str | None, repository: str, tag: str | None, digest: str | None) -> None:
    ref = parse_image(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_ecr_parts_and_defaults() -> None:
    ref = parse_image(f"{ECR}/team/model")
    assert ref.is_ecr and ref.ecr_account == "123456789012" and ref.ecr_region == "us-east-1"
    assert ref.effective_tag == "latest" and ref.reference == "latest"
    assert ref.in_registry("127.0.0.1:4571") == "127.0.0.1:4571/team/model:latest"
    assert ref.short == "team/model:latest"
    pinned = parse_image(f"{ECR}/m@{DIGEST}")
    assert pinned.effective_tag is None and pinned.reference == DIGEST
    assert pinned.in_registry("127.0.0.1:4571") == f"127.0.0.1:4571/m@{DIGEST}"
    assert parse_image("987654321098.dkr.ecr-fips.us-gov-west-1.amazonaws.com/x:1").ecr_region == "us-gov-west-1"
    assert parse_image("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/x:1").is_ecr
    assert not parse_image("123456789012.dkr.ecr.us-east-1.example.com/x:1").is_ecr
    assert not parse_image("public.ecr.aws/x/y:1").is_ecr


@pytest.mark.parametrize("text", ["", "a b", "/x", "x/", f"{ECR}/Upper:1", "x:bad tag", "x@sha256:zz", "x::1"])
def test_malformed_references(text: str) -> None:
    with pytest.raises(InvalidImageReference):
        parse_image(text)


def test_repository_and_tag_argument() -> None:
    assert parse_repository_and_tag("team/model") == ("team/model", "latest")
    assert parse_repository_and_tag("team/model:v3") == ("team/model", "v3")
    for bad in (f"{ECR}/m:1", f"m@{DIGEST}"):
        with pytest.raises(InvalidImageReference):
            parse_repository_and_tag(bad)


def test_ecr_uri() -> None:
    assert ecr_uri("123456789012", "eu-west-1", "m") == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/m:latest"
    assert ecr_uri("123456789012", "us-east-1", "m", digest=DIGEST) == f"{ECR}/m@{DIGEST}"
    assert ecr_uri("123456789012", "cn-north-1", "m", "1").endswith(".amazonaws.com.cn/m:1")


# -- resolution with fakes --------------------------------------------------------------------------


class FakeEngine:
    """The two LocalEngine calls the resolver makes, over a set of local image names."""

    def __init__(self, *local: str) -> None:
        self.local = set(local)
        self.pulled: list[str] = []

    def image_id(self, image: str) -> str | None:
        return f"sha256:{abs(hash(image)):064x}"[:71] if image in self.local else None

    def pull_image(self, reference: str) -> None:
        self.pulled.append(reference)
        self.local.add(reference)


class FakeRegistry:
    address = "127.0.0.1:4571"

    def __init__(self, images: dict[str, list[str]], broken: bool = False) -> None:
        self.images = images
        self.broken = broken

    def ensure_running(self) -> str:
        if self.broken:
            raise RegistryUnavailable("no image registry is installed: `sudo apt-get install -y docker-registry`")
        return self.address

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        if reference in self.images.get(repository, []):
            return Manifest(repository, reference, DIGEST, "application/vnd.docker.distribution.manifest.v2+json",
                            b'{"layers": [{"size": 10}, {"size": 5}]}')
        return None

    def tags(self, repository: str) -> list[str]:
        return list(self.images.get(repository, []))


def test_local_image_is_used_as_it_is() -> None:
    client = FakeEngine("my-algo:1", f"{ECR}/built-here:1")
    resolver = ImageResolver(client, FakeRegistry({}))
    assert resolver.resolve("my-algo:1") == "my-algo:1"
    assert resolver.resolve(f"{ECR}/built-here:1") == f"{ECR}/built-here:1"
    assert client.pulled == []


def test_ecr_uri_pulls_from_the_local_registry() -> None:
    client = FakeEngine()
    resolver = ImageResolver(client, FakeRegistry({"team/model": ["v1"]}))
    assert resolver.find_missing(f"{ECR}/team/model:v1") is None
    assert client.pulled == []  # checking never pulls
    assert resolver.resolve(f"{ECR}/team/model:v1") == "127.0.0.1:4571/team/model:v1"
    assert client.pulled == ["127.0.0.1:4571/team/model:v1"]


def test_missing_tag_in_an_existing_repository() -> None:
    resolver = ImageResolver(FakeEngine("team/model:v2"), FakeRegistry({"team/model": ["v1"]}))
    image = f"{ECR}/team/model:v2"
    with pytest.raises(MissingImage) as raised:
        resolver.resolve(image)
    error = raised.value
    assert isinstance(error, ImageNotFound)
    assert image in str(error) and "smemu ecr push team/model:v2 team/model:v2" in str(error)
    role = "arn:aws:iam::123456789012:role/R"
    assert error.reason("training", role).startswith(
        f"Cannot find the requested image: {image} with tag: v2 and digest: null. Please check if your ECR image "
        f"exists and role {role} has proper pull permissions for SageMaker: ecr:BatchCheckLayerAvailability, "
        f"ecr:BatchGetImage, ecr:GetDownloadUrlForLayer (smemu: To make {image} available, push it: "
        f"`smemu ecr push team/model:v2 team/model:v2`.)")


def test_missing_repository_and_other_job_kinds() -> None:
    resolver = ImageResolver(FakeEngine(), FakeRegistry({}))
    image = f"{ECR}/nowhere:1"
    error = resolver.find_missing(image)
    assert error is not None and not error.repository_exists
    role = "arn:aws:iam::123456789012:role/R"
    assert error.reason("training", role).startswith(
        f"Cannot find repository: nowhere in registry ID: 123456789012 Please check if your ECR repository exists "
        f"and role {role} has proper pull permissions for SageMaker:")
    assert error.reason("processing").startswith(
        f"API error (404): manifest for {image} not found: manifest unknown: Requested image not found")
    assert error.reason("hosting", variant="AllTraffic").startswith(
        "Please make sure all images included in the model for the production variant AllTraffic exist, and that "
        "the execution role used to create the model has permissions to access them.")
    assert "smemu ecr push LOCAL_IMAGE nowhere:1" in error.reason("hosting", variant="AllTraffic")


def test_non_ecr_images_are_never_pulled() -> None:
    client = FakeEngine()
    resolver = ImageResolver(client, FakeRegistry({"python": ["3.11"]}))
    with pytest.raises(MissingImage) as raised:
        resolver.resolve("python:3.11")
    assert "'python:3.11' does not exist on this machine" in str(raised.value)
    assert "docker build -t python:3.11 ." in str(raised.value)
    assert raised.value.reason("training", "arn:aws:iam::123456789012:role/R") == str(raised.value)
    assert raised.value.reason("hosting", variant="v").startswith("Please make sure all images")
    assert client.pulled == []


def test_registry_unavailable_is_named() -> None:
    resolver = ImageResolver(FakeEngine(), FakeRegistry({}, broken=True))
    error = resolver.find_missing(f"{ECR}/m:1")
    assert error is not None and "apt-get install -y docker-registry" in str(error)


def test_manifest_size_is_the_compressed_layers() -> None:
    manifest = FakeRegistry({"m": ["1"]}).manifest("m", "1")
    assert manifest is not None and manifest.size == 15
