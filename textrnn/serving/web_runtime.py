"""The JavaScript a static web export needs, pinned: onnxruntime-web and Hugging Face's tokenizers.js.

Both come from the npm registry, fetched once per machine into one folder laid out as
``npm install --prefix DIR`` lays it out, so either way of getting them works::

    textrnn fetch-web                      # Python only: downloads the two tarballs, checks their sha512
    npm install --prefix ~/.cache/textrnn/web onnxruntime-web@1.31.1 @huggingface/tokenizers@0.2.0

The folder is ``--web-runtime``, else ``$TEXTRNN_WEB_RUNTIME``, else ``web`` in textrnn's cache
(:func:`textrnn.data.cache.cache_root`). The export copies the few files the page uses
(``PACKAGES``) next to the model, so the site needs no network when it is viewed.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Optional, Union

from ..core.errors import TextRNNError
from ..data.cache import cache_root

RUNTIME_ENV = "TEXTRNN_WEB_RUNTIME"
REGISTRY_ENV = "TEXTRNN_NPM_REGISTRY"
REGISTRY = "https://registry.npmjs.org"


@dataclasses.dataclass(frozen=True)
class Package:
    """One npm package: its pinned version, the registry's sha512 of its tarball, and the files the page uses."""

    name: str
    version: str
    integrity: str
    files: tuple[str, ...]

    def tarball_url(self, registry: str) -> str:
        """Where the registry keeps the tarball (``/NAME/-/BASENAME-VERSION.tgz``)."""
        return f"{registry.rstrip('/')}/{self.name}/-/{self.name.split('/')[-1]}-{self.version}.tgz"


PACKAGES = (
    Package("onnxruntime-web", "1.31.1",
            "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw==",
            ("dist/ort.wasm.bundle.min.mjs", "dist/ort-wasm-simd-threaded.wasm", "package.json")),
    Package("@huggingface/tokenizers", "0.2.0",
            "sha512-LidMHe1FpcSYH4vcSjXooda34pC0M8m1gmDOv7SQi6Iv+ib1zX7J3sHBCC9/3FPCkn2k1b55FneVqMRxrr99pg==",
            ("dist/tokenizers.min.mjs", "LICENSE", "package.json")),
)


def npm_command(folder: Union[str, os.PathLike, None] = None) -> str:
    """The npm line that installs the pinned packages into ``folder``."""
    pins = " ".join(f"{p.name}@{p.version}" for p in PACKAGES)
    return f"npm install --prefix {folder or runtime_dir()} {pins}"


def runtime_dir(setting: Optional[Union[str, os.PathLike]] = None) -> Path:
    """The runtime folder: ``setting``, ``$TEXTRNN_WEB_RUNTIME``, else ``web`` under textrnn's cache."""
    if setting:
        return Path(os.path.expanduser(str(setting)))
    if os.environ.get(RUNTIME_ENV):
        return Path(os.environ[RUNTIME_ENV])
    return cache_root() / "web"


def expected_files(folder: Union[str, os.PathLike, None] = None) -> dict[str, Path]:
    """Each file the page needs (``PACKAGE/PATH``) and where it should be."""
    root = runtime_dir(folder)
    return {f"{p.name}/{f}": root / "node_modules" / p.name / f for p in PACKAGES for f in p.files}


def runtime_files(folder: Union[str, os.PathLike, None] = None) -> dict[str, Path]:
    """Each file the page needs (``PACKAGE/PATH``) and where it is; a one-line error names what is missing."""
    root, found = runtime_dir(folder), expected_files(folder)
    missing = [name for name, path in found.items() if not path.is_file()]
    if missing:
        raise TextRNNError(f"the web export needs onnxruntime-web and tokenizers.js, and {root} lacks {missing[0]}: "
                           f"run `textrnn fetch-web` once (no Node needed), or `{npm_command(root)}`")
    return found


def vendor_name(key: str) -> str:
    """The name a runtime file (``PACKAGE/PATH``) gets in a site's ``vendor/``: a ``dist/`` file keeps its
    name (the scripts import it so); a licence or manifest is prefixed with its package."""
    package = next(p.name for p in PACKAGES if key.startswith(p.name + "/"))
    inner = key[len(package) + 1:]
    return inner.rsplit("/", 1)[-1] if inner.startswith("dist/") else f"{package.lstrip('@').replace('/', '-')}.{inner}"


def check_integrity(data: bytes, package: Package) -> None:
    """The registry's ``sha512-BASE64`` of the tarball must match, else a one-line error."""
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != package.integrity:
        raise TextRNNError(f"{package.name}@{package.version} downloaded with sha512 {digest[:27]}..., expected "
                           f"{package.integrity[:27]}...: the download is damaged or not the pinned release; retry")


def download(package: Package, registry: str, root: Optional[Path] = None) -> bytes:
    """The package's tarball from ``registry`` (any URL urllib reads, file:// included), integrity checked."""
    url = package.tarball_url(registry)
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
    except OSError as exc:
        raise TextRNNError(f"could not download {url} ({exc}); check the network, or set ${REGISTRY_ENV} "
                           f"to an npm mirror, or install with `{npm_command(root)}`") from None
    check_integrity(data, package)
    return data


def unpack(data: bytes, package: Package, target: Path) -> None:
    """Write the page's files of one tarball (members ``package/PATH``) under ``target/node_modules/NAME``."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for name in package.files:
            try:
                member = archive.extractfile(f"package/{name}")
            except KeyError:
                member = None
            if member is None:
                raise TextRNNError(f"{package.name}@{package.version} has no file {name}; please report this")
            path = target / "node_modules" / package.name / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(member.read())


def fetch_runtime(folder: Union[str, os.PathLike, None] = None, registry: Optional[str] = None) -> Path:
    """Download the pinned packages into ``folder`` (default :func:`runtime_dir`); returns the folder.

    Everything is downloaded and checked into a temporary folder first, so a failed fetch leaves
    the previous files as they were.
    """
    root = runtime_dir(folder)
    registry = registry or os.environ.get(REGISTRY_ENV) or REGISTRY
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=root))
    try:
        for package in PACKAGES:
            unpack(download(package, registry, root), package, staging)
        for package in PACKAGES:
            for name in package.files:
                path = root / "node_modules" / package.name / name
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / "node_modules" / package.name / name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root
