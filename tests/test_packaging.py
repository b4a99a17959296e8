"""The addons as wheels, and their generated READMEs.

Each addon's wheel is built by whool (its ``pyproject.toml``) through
``pip wheel``, from a copy of the files a commit of the tree would hold now
(tracked files and new ones git does not ignore): neither what is not
committed yet nor git's history may change the wheel. The wheels and the
metapackage's are installed with ``--no-deps --no-index`` (Odoo is not on
PyPI) into a fresh virtualenv, whose files and metadata are checked against
the manifests.
"""

import ast
import json
import shutil
import subprocess
import sys
from email.parser import HeaderParser
from pathlib import Path

import pytest
from conftest import REPO
from emboux_setup import readme
from emboux_setup.paths import ADDONS
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from whool import buildapi

METAPACKAGE = "odoo-addons-emboux-mail"
# asked of the new virtualenv's own python: what pip installed, and where
INSPECT = """
import json, sys, sysconfig
from importlib.metadata import distribution
dists = {}
for name in sys.argv[1:]:
    dist = distribution(name)
    dists[name] = {
        "name": dist.metadata["Name"],
        "version": dist.version,
        "requires": dist.requires or [],
    }
print(json.dumps({"purelib": sysconfig.get_paths()["purelib"], "dists": dists}))
"""


def manifest(addon):
    return ast.literal_eval((REPO / addon / "__manifest__.py").read_text())


def dist_name(addon):
    return f"odoo-addon-{addon}"


def committable_files(addon):
    """The files of ``addon`` that a commit of the tree would hold now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO / addon,
        capture_output=True,
        check=True,
    ).stdout.decode()
    # a tracked file deleted from the tree is no longer part of it
    return {name for name in listed.split("\0") if (REPO / addon / name).is_file()}


def run(cmd, **kwargs):
    result = subprocess.run(
        [str(part) for part in cmd], capture_output=True, text=True, **kwargs
    )
    assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def pip_wheel(source, wheels):
    run(
        [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check"]
        + ["--no-deps", "--no-build-isolation", "--no-index", "-q"]
        + ["-w", wheels, source]
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The wheels' folder, and the files each addon's copy held."""
    work = tmp_path_factory.mktemp("packaging")
    wheels = work / "wheels"
    files = {}
    for addon in ADDONS:
        files[addon] = committable_files(addon)
        # whool names the package after the folder: keep the addon's name
        source = work / "src" / addon
        for name in files[addon]:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / addon / name, source / name)
        pip_wheel(source, wheels)
    # setuptools writes its build files beside pyproject.toml: a copy too
    metapackage = work / "src" / "_metapackage"
    shutil.copytree(REPO / "setup" / "_metapackage", metapackage)
    pip_wheel(metapackage, wheels)
    print(f"\nwheels: {', '.join(sorted(path.name for path in wheels.iterdir()))}")
    return wheels, files


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory):
    """What pip installed of the wheels in a fresh virtualenv: its
    ``odoo/addons`` folder and each distribution's metadata."""
    wheels, _files = built
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        + ["--no-deps", "--no-index", "--no-compile", *sorted(wheels.iterdir())]
    )
    names = [*map(dist_name, ADDONS), METAPACKAGE]
    found = json.loads(run([python, "-c", INSPECT, *names]))
    addons_dir = Path(found["purelib"], "odoo", "addons")
    return addons_dir, found["dists"]


def requirement_names(requires):
    return {canonicalize_name(Requirement(line).name) for line in requires}


@pytest.mark.parametrize("addon", ADDONS)
def test_wheel_metadata(installed, addon):
    """Name and version as the manifest says; Requires-Dist holds Odoo, the
    addons it depends on here and its Python external dependencies."""
    _addons_dir, dists = installed
    info, declared = dists[dist_name(addon)], manifest(addon)
    assert info["name"] == dist_name(addon)
    assert info["version"] == declared["version"]
    expected = {"odoo"}
    expected |= {dist_name(dep) for dep in declared["depends"] if dep in ADDONS}
    expected |= set(declared.get("external_dependencies", {}).get("python", []))
    names = requirement_names(info["requires"])
    missing = {canonicalize_name(name) for name in expected} - names
    assert not missing, f"Requires-Dist lacks {missing}: {info['requires']}"
    print(f"{info['name']} {info['version']}: {len(info['requires'])} requirements")


@pytest.mark.parametrize("addon", ADDONS)
def test_installed_files(built, installed, addon):
    """The installed addon holds exactly the files of the tree, among them
    every file its manifest loads and its translations."""
    _wheels, files = built
    addons_dir, _dists = installed
    root = addons_dir / addon
    declared = manifest(addon)
    assert ast.literal_eval((root / "__manifest__.py").read_text()) == declared
    present = {
        str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()
    }
    # whool leaves the build configuration out of the wheel
    assert present == files[addon] - {"pyproject.toml"}
    listed = declared.get("data", []) + declared.get("demo", [])
    absent = [name for name in listed if name not in present]
    assert not absent, f"the manifest loads files the wheel lacks: {absent}"
    for bundle, assets in declared.get("assets", {}).items():
        for asset in assets:
            # ("include", ...) and similar: the path is the last item
            pattern = asset if isinstance(asset, str) else asset[-1]
            assert list(addons_dir.glob(pattern)), f"{bundle}: {pattern} not found"
    print(f"{addon}: {len(present)} files installed")


def test_metapackage(installed):
    """The metapackage requires every addon of the repository, in versions
    the built addons satisfy."""
    _addons_dir, dists = installed
    info = dists[METAPACKAGE]
    requirements = {
        canonicalize_name(req.name): req for req in map(Requirement, info["requires"])
    }
    assert set(requirements) == {canonicalize_name(dist_name(a)) for a in ADDONS}
    for addon in ADDONS:
        version = dists[dist_name(addon)]["version"]
        requirement = requirements[canonicalize_name(dist_name(addon))]
        assert requirement.specifier.contains(version), (requirement, version)
    print(f"{METAPACKAGE} {info['version']}: {sorted(info['requires'])}")


@pytest.mark.parametrize("addon", ADDONS)
def test_version_in_checkout(tmp_path, monkeypatch, addon):
    """Built in place, in this checkout with its history and whatever is
    uncommitted, the version is still the manifest's."""
    monkeypatch.chdir(REPO / addon)
    dist_info = buildapi.prepare_metadata_for_build_wheel(str(tmp_path))
    with (tmp_path / dist_info / "METADATA").open() as metadata:
        version = HeaderParser().parse(metadata)["Version"]
    assert version == manifest(addon)["version"]


@pytest.mark.parametrize("addon", ADDONS)
def test_readme_is_current(addon):
    """README.rst and index.html are what the fragments render now."""
    for path, text in readme.render(REPO / addon).items():
        assert path.is_file() and path.read_text() == text, (
            f"{path.relative_to(REPO)} is not what {addon}/readme/*.md and its "
            "manifest give: run python3 setup/emboux_setup readme"
        )
